"""A single-node Apache Kafka broker in KRaft mode, started from the jars in .cache/engines."""

from __future__ import annotations

import base64
import socket
import subprocess
import uuid
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from tapstack import contracts
from tapstack.native import processes
from tapstack.native.errors import StackError

NAME = "kafka"
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


def server_properties(data_dir: Path) -> str:
    """Broker + controller in one process; topics only by explicit creation."""
    port, controller = contracts.port("kafka"), contracts.port("kafka_controller")
    partitions = contracts.settings()["topics"]["partitions"]
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@localhost:{controller}",
            f"listeners=PLAINTEXT://localhost:{port},CONTROLLER://localhost:{controller}",
            f"advertised.listeners=PLAINTEXT://localhost:{port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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


def _java(libs: Path, main: str, *args: str, heap: str = HEAP, log4j: Path | None = None):
    argv = ["java", *heap.split(), "-XX:+UseG1GC", "-Djava.awt.headless=true"]
    if log4j:
        argv.append(f"-Dlog4j2.configurationFile={log4j}")
    return [*argv, "-cp", f"{libs}/*", main, *args]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(run_dir: Path, libs: Path) -> processes.Managed:
    """Format the storage on first start, then start the broker."""
    home = run_dir / "kafka"
    data = home / "data"
    config = home / "server.properties"
    log4j = home / "log4j2.properties"
    if processes.find(run_dir, NAME):
        return processes.find(run_dir, NAME)
    for port_name in ("kafka", "kafka_controller"):
        if port_open(contracts.port(port_name)):
            raise StackError(
                f"Port {contracts.port(port_name)} ({port_name}) is taken by another program. "
                f"Stop it, or choose another port with TAP_PORT_{port_name.upper()}=..."
            )
    home.mkdir(parents=True, exist_ok=True)
    config.write_text(server_properties(data))
    log4j.write_text(_LOG4J2.format(log=run_dir / "logs" / "kafka-server.log"))
    if not (data / "meta.properties").exists():
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            _java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(config),
                heap="-Xmx256m",
                log4j=log4j,
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"Formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
    return processes.start(run_dir, NAME, _java(libs, "kafka.Kafka", str(config), log4j=log4j))


def admin(timeout_ms: int = 10000) -> KafkaAdminClient:
    return KafkaAdminClient(
        bootstrap_servers=contracts.kafka_bootstrap(),
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


def create_topics() -> list[str]:
    """Create every topic of the settings; return the ones that were new."""
    topics = contracts.settings()["topics"]
    client = admin()
    created = []
    try:
        existing = set(client.list_topics())
        for name in contracts.all_topics():
            if name in existing:
                continue
            try:
                configs = {}
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
