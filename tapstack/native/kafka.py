"""A single-node Apache Kafka broker in KRaft mode, started from the jars in .cache/engines.

Started by root, the broker runs as the system user `tap-kafka` with its own group, its jars,
config, metadata and log in /var/lib/tap-kafka (tapstack.native.service_user); otherwise as
the user who started it, in the run folder.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import uuid
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tapstack import contracts, credentials, kafka_clients
from tapstack.native import processes
from tapstack.native.errors import StackError
from tapstack.native.service_user import ServiceUser

NAME = "kafka"
SERVICE = ServiceUser("tap-kafka", NAME, "TAP_KAFKA_SERVICE_HOME")
_PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
HEAP = "-Xms256m -Xmx768m"

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


def server_properties(data_dir: Path, admin_user: str, admin_password: str) -> str:
    """Broker + controller in one process; topics only by explicit creation.

    Clients: SASL_PLAINTEXT with SCRAM (contracts/security.toml [kafka]), the credentials in
    the metadata log; the StandardAuthorizer denies what no ACL allows, the admin alone is a
    super user. The controller listener is bound to localhost and authenticates with PLAIN as
    the admin too: KRaft cannot use SCRAM there, since the controller serves the very metadata
    SCRAM credentials live in (Kafka's listener docs, "controller listener"; KAFKA-15513). So
    no one on this machine reaches the controller without the admin's password, which is only
    in this file (0600, in the 0700 run folder) and the stack's secrets folder.
    """
    port, controller = contracts.port("kafka"), contracts.port("kafka_controller")
    partitions = contracts.settings()["topics"]["partitions"]
    mechanism = kafka_clients.mechanism()
    scram = kafka_clients.jaas_config(admin_user, admin_password)
    plain = (
        f"{_PLAIN_LOGIN} required username={kafka_clients._quoted(admin_user)} "
        f"password={kafka_clients._quoted(admin_password)} "
        f"user_{admin_user}={kafka_clients._quoted(admin_password)};"
    )
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@localhost:{controller}",
            f"listeners=SASL_PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller}",
            f"advertised.listeners=SASL_PLAINTEXT://localhost:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            f"sasl.enabled.mechanisms={mechanism}",
            f"sasl.mechanism.inter.broker.protocol={mechanism}",
            f"listener.name.sasl_plaintext.sasl.enabled.mechanisms={mechanism}",
            f"listener.name.sasl_plaintext.{mechanism.lower()}.sasl.jaas.config={scram}",
            "sasl.mechanism.controller.protocol=PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
            f"listener.name.controller.plain.sasl.jaas.config={plain}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:{admin_user}",
            "allow.everyone.if.no.acl.found=false",
            f"log.dirs={data_dir}",
            f"num.partitions={partitions}",
            "auto.create.topics.enable=false",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "log.retention.hours=168",
            # Retention is applied every 5 minutes by default; each 10 s here, so a topic given
            # a tiny retention.ms (the past-retention tests and fault rows) expires promptly.
            "log.retention.check.interval.ms=10000",
            "",
        ]
    )


def _write_private(path: Path, text: str) -> None:
    """Rewrite a file that holds a password with mode 0600 from its creation on."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _java(libs: Path, main: str, *args: str, heap: str = HEAP, log4j: Path | None = None):
    argv = ["java", *heap.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true"]
    if log4j:
        argv.append(f"-Dlog4j2.configurationFile={log4j}")
    return [*argv, "-cp", f"{libs}/*", main, *args]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def node_home(run_dir: Path) -> Path:
    """Where the broker's config, metadata and log live."""
    return SERVICE.node_home(run_dir)


def purge(run_dir: Path) -> None:
    """Delete the broker's files kept outside the run folder."""
    SERVICE.purge(run_dir)


def start(run_dir: Path, libs: Path, admin_password: str) -> processes.Managed:
    """Format the storage on first start (with the admin's SCRAM credential), then start the
    broker."""
    if processes.find(run_dir, NAME):
        return processes.find(run_dir, NAME)
    for port_name in ("kafka", "kafka_controller"):
        if port_open(contracts.port(port_name)):
            raise StackError(
                f"Port {contracts.port(port_name)} ({port_name}) is taken by another program. "
                f"Stop it, or choose another port with TAP_PORT_{port_name.upper()}=..."
            )
    user = SERVICE.ensure()
    libs, home = SERVICE.prepare(run_dir, libs)
    credentials.private_dir(home)
    data = home / "data"
    config = home / "server.properties"
    log4j = home / "log4j2.properties"
    admin_user = kafka_clients.admin_user()
    _write_private(config, server_properties(data, admin_user, admin_password))
    # The broker's own log beside its data: its user may not enter the run folder.
    (home / "logs").mkdir(mode=0o700, exist_ok=True)
    _write_private(log4j, _LOG4J2.format(log=home / "logs" / "kafka-server.log"))
    SERVICE.hand_over(home)
    marker = data / ".tap-scram"  # formatted with the admin's credential (older stacks were not)
    if (data / "meta.properties").exists() and not marker.exists():
        raise StackError(
            f"Kafka's data in {data} predates its users: "
            "run `tap stack stop --purge` (it holds only replayable pipeline data), then start."
        )
    if not (data / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            _java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                # One argument: an id from urlsafe base64 may begin with "-", which a separate
                # value after -t would be read as an option (1 start in 64).
                f"--cluster-id={cluster_id}",
                "-c",
                str(config),
                # The admin's credential goes into the first metadata records: with no ACL and
                # no user yet, no one could log in to create it later. StorageTool's option
                # (apache/kafka core/src/main/scala/kafka/tools/StorageTool.scala, 4.1:
                # `--add-scram`, "A SCRAM_CREDENTIAL to add to the __cluster_metadata log"; KIP-900,
                # cwiki.apache.org/confluence/display/KAFKA/KIP-900). It is in this argv for the
                # second the tool runs, as in every KRaft set-up with SCRAM.
                "--add-scram",
                f"{kafka_clients.mechanism()}=[name={admin_user},password={admin_password}]",
                heap="-Xmx256m",
                log4j=log4j,
            ),
            capture_output=True,
            text=True,
            check=False,
            umask=processes.PRIVATE_UMASK,  # its log and the metadata it writes: owner-only
            **SERVICE.identity(),
        )
        if result.returncode != 0:
            said = (result.stdout + result.stderr).replace(admin_password, "***")
            raise StackError(f"Formatting Kafka storage failed:\n{said}")
        marker.touch(mode=0o600)
        SERVICE.hand_over(home)
    broker = _java(libs, "kafka.Kafka", str(config), log4j=log4j)
    return processes.start(run_dir, NAME, broker, cwd=home, user=user)


def admin(timeout_ms: int = 10000) -> KafkaAdminClient:
    return KafkaAdminClient(
        **kafka_clients.config(),
        client_id="tap-admin",
        request_timeout_ms=timeout_ms,
    )


def healthy() -> bool:
    """The broker answers a metadata request."""
    try:
        client = admin(timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        client.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        client.close()


def topic_configs(name: str) -> dict[str, str]:
    """A topic's explicit settings from the contract: its retention ([retention_hours])."""
    hours = contracts.settings()["retention_hours"]
    role = next((r for r in hours if contracts.topic(r) == name), None)
    return {"retention.ms": str(hours[role] * 3600 * 1000)} if role else {}


def create_topics() -> list[str]:
    """Create every topic of the settings; return the ones that were new. A topic that exists
    gets the contract's retention set (a stack made before it had one)."""
    topics = contracts.settings()["topics"]
    client = admin()
    created = []
    try:
        existing = set(client.list_topics())
        for name in contracts.all_topics():
            if name in existing:
                if topic_configs(name):
                    client.alter_configs(
                        [ConfigResource(ConfigResourceType.TOPIC, name, topic_configs(name))]
                    )
                continue
            try:
                configs = topic_configs(name)
                if name == contracts.topic("dead_letter"):
                    # Whole oversized lines are kept here (see tapstack.collector.tailer).
                    configs["max.message.bytes"] = str(16 * 2**20)
                if name == contracts.topic("dead_letter_replays"):
                    # `tap deadletter replay`'s ledger: the latest entry per key, kept forever.
                    configs["cleanup.policy"] = "compact"
                client.create_topics(
                    [
                        NewTopic(
                            name,
                            topics["partitions"],
                            topics["replication_factor"],
                            topic_configs=configs,
                        )
                    ]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        client.close()
    return created
