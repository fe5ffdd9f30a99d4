"""The native stack: one run folder holding every process's data, logs, pids and checkpoints.

.run/<name>/
  kafka/ elasticsearch/        engine config and data
  logs/<process>.log           every process's output
  pids/<process>.json          what runs
  shop/orders.log              the orders log (the plugin's, here the simulator's)
  collector/                   the tailer's persisted offsets
  checkpoints/<query>/         Spark checkpoints
  ready/<process>              written by a pipeline process once it is serving
  secrets/customer_key         the HMAC key for customer ids (generated, 0600)
  secrets/elasticsearch/<user> each Elasticsearch user's password (generated, 0600)
  secrets/kafka/<user>         each Kafka user's password, the admin's too (generated, 0600)

The run folder and its secrets folder are 0700. Commands run by hand against the stack find
its secrets through TAP_SECRETS_DIR (tapstack.credentials), which the stack sets for its own
process; each pipeline process gets only the credentials of its stage.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tapstack import contracts, credentials, kafka_clients, kafka_security, model_registry
from tapstack.elastic import security, templates
from tapstack.elastic.client import connect
from tapstack.native import elasticsearch, engines, kafka, processes
from tapstack.native.errors import StackError

RUN_ROOT = contracts.ROOT / ".run"
ENGINES = ("kafka", "elasticsearch")
PIPELINE = ("tailer", "process_orders", "behaviour", "loader")
SUPERVISOR = "supervisor"
# Managed like the pipeline, without a ready marker: they act on a schedule.
SCHEDULED = ("model_drift",)
# Pipeline process -> its Kafka user's role key.
KAFKA_ROLES = {
    "tailer": "collector",
    "process_orders": "process_orders",
    "behaviour": "behaviour",
    "loader": "loader",
}
# Process -> its Elasticsearch user's role key.
ES_ROLES = {"loader": "writer", "model_drift": "model"}


@dataclass
class Stack:
    name: str = "demo"

    def __post_init__(self) -> None:
        # Clients built in this process (templates, summary, tests) find this stack's secrets.
        os.environ.setdefault("TAP_SECRETS_DIR", str(self.secrets_dir))

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.name

    @property
    def secrets_dir(self) -> Path:
        return self.run_dir / "secrets"

    @property
    def log_path(self) -> Path:
        return self.run_dir / "shop" / contracts.settings()["shop"]["log_name"]

    @property
    def model_dir(self) -> Path:
        """The model the behaviour stage starts with: TAP_MODEL_DIR, else the registry's
        promoted version (`tap model promote`), else what `tap model train` wrote last."""
        if os.environ.get("TAP_MODEL_DIR"):
            return Path(os.environ["TAP_MODEL_DIR"])
        return model_registry.promoted_dir() or RUN_ROOT / "model"

    # -- engines -------------------------------------------------------------------------

    def _make_private(self) -> None:
        """The run folder and its folders are the owner's alone (0700): they hold logs,
        secrets and raw orders. Narrowed on every start, for a run folder made before."""
        credentials.private_dir(self.run_dir)
        for child in self.run_dir.iterdir():
            if child.is_dir() and not child.is_symlink():  # the node's folder has its own user
                child.chmod(0o700)

    def start_engines(self, say=print, timeout: float = 180) -> None:
        """Fetch if needed, start Kafka and Elasticsearch, wait for health, create topics and
        install the index templates."""
        found = engines.fetch(say=say)
        self._make_private()
        say(f"Starting Kafka (KRaft) on port {contracts.port('kafka')}...")
        kafka.start(self.run_dir, found.kafka_libs, self.kafka_password(kafka_clients.admin_user()))
        say(f"Starting Elasticsearch on port {contracts.port('elasticsearch')}...")
        self.start_elasticsearch(found.elasticsearch_home)
        self._wait_healthy("kafka", kafka.healthy, timeout)
        self.apply_kafka_security()
        say(f"Kafka is up; topics created: {', '.join(kafka.create_topics()) or 'all existed'}.")
        self._wait_healthy("elasticsearch", self.elasticsearch_healthy, timeout)
        created = templates.install(connect(role="setup"))
        say(
            f"Elasticsearch is up (security on; users {', '.join(security.users())}); index "
            f"templates installed, indices created: {', '.join(created) or 'all existed'}."
        )

    def kafka_password(self, user: str) -> str:
        return credentials.ensure("kafka", user, self.secrets_dir)

    def kafka_auth(self, role: str) -> tuple[str, str]:
        user = kafka_clients.user(role)
        return user, self.kafka_password(user)

    def apply_kafka_security(self) -> list[str]:
        """The contract's Kafka users (this stack's passwords) and ACLs, as compose's
        `tap kafka security` applies them."""
        passwords = {user: self.kafka_password(user) for user in kafka_security.users().values()}
        client = kafka.admin()
        try:
            return kafka_security.apply(client, passwords)
        finally:
            client.close()

    def _password(self, user: str) -> str:
        return credentials.ensure("elasticsearch", user, self.secrets_dir)

    def es_auth(self, role: str) -> tuple[str, str]:
        user = contracts.es_user(role)
        return user, self._password(user)

    def start_elasticsearch(self, es_home: Path | None = None) -> None:
        """Start the node with the contract's users and roles, each user with this stack's
        password for it."""
        users = {user: (self._password(user), held) for user, held in security.users().items()}
        elasticsearch.start(
            self.run_dir,
            es_home or engines.elasticsearch_dir(),
            self.es_auth("admin")[1],
            users,
            security.roles(),
        )

    def elasticsearch_healthy(self) -> bool:
        return elasticsearch.healthy(self.es_auth("admin"))

    def _wait_healthy(self, name: str, check, timeout: float) -> None:
        def ready():
            if processes.find(self.run_dir, name) is None:
                log = self.run_dir / "logs" / f"{name}.log"
                tail = (
                    "\n".join(log.read_text(errors="replace").splitlines()[-20:])
                    if log.exists()
                    else ""
                )
                raise StackError(f"{name} exited during start-up. Last lines of {log}:\n{tail}")
            return check()

        try:
            processes.wait_until(ready, timeout=timeout, interval=1, what=f"{name} health")
        except TimeoutError as exc:
            raise StackError(f"{exc}; see {self.run_dir / 'logs'}") from exc

    # -- pipeline ------------------------------------------------------------------------

    def customer_key(self) -> str:
        """The HMAC key for customer ids: TAP_CUSTOMER_KEY, else one generated per run folder."""
        if os.environ.get("TAP_CUSTOMER_KEY"):
            return os.environ["TAP_CUSTOMER_KEY"]
        path = self.secrets_dir / "customer_key"
        if not path.exists():
            credentials.write_secret(path, secrets.token_hex(32))
        return path.read_text().strip()

    def pipeline_env(self, process: str) -> dict[str, str | None]:
        """The environment of one pipeline process: what every stage needs, plus the secrets
        of that stage only (None removes a variable inherited from this process)."""
        env: dict[str, str | None] = {
            "TAP_KAFKA_BOOTSTRAP": contracts.kafka_bootstrap(),
            "TAP_ES_URL": contracts.elasticsearch_url(),
            "TAP_CHECKPOINT_DIR": str(self.run_dir / "checkpoints"),
            "TAP_SPARK_JARS": str(engines.spark_kafka_dir()),
            "TAP_MODEL_DIR": str(self.model_dir),
            "TAP_READY_DIR": str(self.run_dir / "ready"),
            "PYTHONUNBUFFERED": "1",
            "TAP_SECRETS_DIR": None,
            "TAP_CUSTOMER_KEY": None,
            "TAP_ES_USER": None,
            "TAP_ES_PASSWORD": None,
            "TAP_KAFKA_USER": None,
            "TAP_KAFKA_PASSWORD": None,
        }
        # Each process logs in to Kafka as its own user (contracts/security.toml [kafka]).
        role = KAFKA_ROLES.get(process)
        if role:
            env["TAP_KAFKA_USER"], env["TAP_KAFKA_PASSWORD"] = self.kafka_auth(role)
        if process == "process_orders":
            env["TAP_CUSTOMER_KEY"] = self.customer_key()
        es_role = ES_ROLES.get(process)
        if es_role:
            env["TAP_ES_USER"], env["TAP_ES_PASSWORD"] = self.es_auth(es_role)
        return env

    def command(self, process: str) -> list[str]:
        py = sys.executable
        model = contracts.settings()["model"]
        return {
            "tailer": [
                py,
                "-m",
                "tapstack",
                "collect",
                "--log",
                str(self.log_path),
                "--state",
                str(self.run_dir / "collector" / "offsets.json"),
            ],
            "process_orders": [py, "-m", "tap_spark.process_orders"],
            "behaviour": [py, "-m", "tap_spark.behaviour"],
            "loader": [py, "-m", "tapstack", "load"],
            "model_drift": [
                py,
                "-m",
                "tapstack",
                "model",
                "drift",
                "--model",
                str(self.model_dir),
                "--since",
                model["drift_window"],
                "--every",
                model["drift_every"],
                "--record",
            ],
        }[process]

    def start_process(self, process: str, unless_held: bool = False) -> processes.Managed | None:
        """Start a pipeline process unless it runs (or, with unless_held, was stopped)."""
        if processes.find(self.run_dir, process) is None:
            (self.run_dir / "ready" / process).unlink(missing_ok=True)
        return processes.start(
            self.run_dir,
            process,
            self.command(process),
            env=self.pipeline_env(process),
            cwd=contracts.ROOT,
            unless_held=unless_held,
        )

    def restart_process(self, process: str, timeout: float = 240) -> None:
        """Stop a pipeline process cleanly and start it again, with the settings of now (the
        behaviour stage: the model promoted since). Records it had read but not checkpointed
        are read again; downstream they are replays (the loader keeps an order id's first
        version by fingerprint, and a label is not part of the fingerprint)."""
        processes.stop(self.run_dir, process)
        self.start_process(process)
        self.wait_pipeline_ready(timeout=timeout, processes_=(process,))
        if process == "behaviour" and processes.find(self.run_dir, "model_drift"):
            self.measure_drift_now()  # measured against the model in use

    def measure_drift_now(self) -> None:
        """Have the scheduled drift process measure the window ending now: it records once as
        it starts, then at its interval (the demo's orders arrive after its first window)."""
        processes.stop(self.run_dir, "model_drift")
        self.start_process("model_drift")

    def supervise(self, interval: float = 1.0, should_stop=lambda: False) -> None:
        """Restart pipeline processes that died (not those stopped on purpose), like compose's
        `restart: unless-stopped`; back off when one keeps dying."""
        log = logging.getLogger("tap.supervisor")
        restarts: dict[str, list[float]] = {name: [] for name in (*PIPELINE, *SCHEDULED)}
        while not should_stop():
            for name in restarts:
                if processes.find(self.run_dir, name) or processes.held(self.run_dir, name):
                    continue
                recent = [t for t in restarts[name] if time.monotonic() - t < 60]
                if recent and time.monotonic() - recent[-1] < min(2 ** len(recent), 30):
                    continue
                if self.start_process(name, unless_held=True):
                    log.warning("%s was not running; restarted it", name)
                    restarts[name] = [*recent, time.monotonic()]
            time.sleep(interval)

    def start_pipeline(self, say=print) -> None:
        if not (self.model_dir / "tap_model.json").exists():
            raise StackError(
                f"No behaviour model in {self.model_dir}: run `tap model train` first."
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        for process in (*PIPELINE, *SCHEDULED):
            say(f"Starting {process}...")
            self.start_process(process)
        processes.start(
            self.run_dir,
            SUPERVISOR,
            [sys.executable, "-m", "tapstack", "stack", "supervise", "--name", self.name],
            cwd=contracts.ROOT,
        )

    def wait_pipeline_ready(self, timeout: float = 240, processes_: tuple = PIPELINE) -> None:
        """Wait for the ready markers; a process stopped on purpose, or one still down when
        time runs out, fails with the tail of its log."""

        def ready():
            for process in processes_:
                if processes.held(self.run_dir, process):
                    raise StackError(f"{process} is stopped.\n{self._log_tail(process)}")
            return all((self.run_dir / "ready" / p).exists() for p in processes_)

        try:
            processes.wait_until(ready, timeout=timeout, interval=0.5, what="the pipeline")
        except TimeoutError as exc:
            waiting = [p for p in processes_ if not (self.run_dir / "ready" / p).exists()]
            tails = "\n".join(self._log_tail(p) for p in waiting)
            raise StackError(f"{exc}; not ready: {', '.join(waiting)}\n{tails}") from exc

    def _log_tail(self, process: str, lines: int = 25) -> str:
        log = self.run_dir / "logs" / f"{process}.log"
        if not log.exists():
            return f"(no log at {log})"
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        return f"Last lines of {log}:\n{tail}"

    # -- status and stop -----------------------------------------------------------------

    def status(self) -> list[dict]:
        rows = []
        for name in (*ENGINES, *PIPELINE, *SCHEDULED, SUPERVISOR):
            managed = processes.find(self.run_dir, name)
            rows.append(
                {
                    "process": name,
                    "running": managed is not None,
                    "pid": managed.pid if managed else None,
                    "rss_mib": processes.rss_bytes(self.run_dir, name) / 2**20 if managed else 0,
                    "ready": (self.run_dir / "ready" / name).exists() if name in PIPELINE else None,
                }
            )
        return rows

    def stop(self, say=print, purge: bool = False) -> None:
        """Stop the pipeline first (so nothing writes to a stopped broker), then the engines."""
        for name in (SUPERVISOR, *SCHEDULED, *PIPELINE, *reversed(ENGINES)):
            if processes.stop(self.run_dir, name):
                say(f"Stopped {name}.")
        for name in processes.registered(self.run_dir):
            processes.stop(self.run_dir, name)
        if purge:
            elasticsearch.purge(self.run_dir)
            kafka.purge(self.run_dir)
            shutil.rmtree(self.run_dir, ignore_errors=True)
