"""The compose broker's security, on the real Kafka, without Docker.

compose/scripts/kafka-start runs with the kafka service's environment as Compose resolves it
(listeners moved to this test's ports, the log dir to a temporary folder) against the Kafka
jars the native stack uses: it formats the storage with the admin's SCRAM credential from the
secret file, writes the JAAS file, and starts the broker the way the image would (the image's
wrapper writes server.properties from the KAFKA_* variables: kafka-start --format-properties
does the same mapping). Then `tap kafka security` and `tap topics create` run with the
environment of the kafka-users and topics containers, and the clients log in as the compose
services do. What this cannot show: the apache/kafka image itself (its scripts, its JVM).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, TopicAuthorizationFailedError
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import compose_model as cm  # noqa: E402

from tapstack import contracts  # noqa: E402
from tapstack.cli import app  # noqa: E402
from tapstack.native import engines  # noqa: E402

pytestmark = pytest.mark.engines

KAFKA_START = cm.COMPOSE_DIR / "scripts" / "kafka-start"
KAFKA_LOGIN = Path(__file__).resolve().parent / "tools" / "KafkaLogin.java"
lc = cm.load_module(cm.ROOT / "tests" / "tools" / "logstash_config.py", "tap_logstash_config")
SECURITY = contracts.security()["kafka"]
BASE = int(os.environ.get("TAP_TEST_PORT_BASE", "24000"))
INTERNAL, HOST, CONTROLLER = BASE + 191, BASE + 192, BASE + 193

STORAGE_TOOL = """#!/usr/bin/env bash
# Stands for the image's /opt/kafka/bin/kafka-storage.sh.
exec java -Xmx256m -cp "$TAP_TEST_KAFKA_LIBS/*" kafka.tools.StorageTool "$@"
"""
IMAGE_RUN = """#!/usr/bin/env bash
# Stands for the image's /etc/kafka/docker/run: server.properties from the KAFKA_* variables
# (KafkaDockerWrapper's mapping, reproduced by kafka-start), then the broker.
set -euo pipefail
props="$TAP_KAFKA_CONFIG_DIR/server.properties"
bash "$TAP_TEST_KAFKA_START" --format-properties >"$props"
# shellcheck disable=SC2086  # the options are words
exec java $KAFKA_HEAP_OPTS $KAFKA_OPTS -cp "$TAP_TEST_KAFKA_LIBS/*" kafka.Kafka "$props"
"""


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _broker_env(folder: Path, password_file: Path) -> dict[str, str]:
    service = cm.resolved_model("*")["services"]["kafka"]
    env = {k: str(v) for k, v in service["environment"].items()}
    config = folder / "config"
    config.mkdir()
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    for name, text in (("storage", STORAGE_TOOL), ("run", IMAGE_RUN)):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    env.update(
        KAFKA_LISTENERS=(
            f"INTERNAL://localhost:{INTERNAL},HOST://localhost:{HOST},"
            f"CONTROLLER://localhost:{CONTROLLER}"
        ),
        KAFKA_ADVERTISED_LISTENERS=f"INTERNAL://localhost:{INTERNAL},HOST://localhost:{HOST}",
        KAFKA_CONTROLLER_QUORUM_VOTERS=f"1@localhost:{CONTROLLER}",
        KAFKA_LOG_DIRS=str(folder / "data"),
        KAFKA_OPTS=env["KAFKA_OPTS"].replace("/opt/kafka/config", str(config)),
        CLUSTER_ID=secrets.token_urlsafe(16)[:22],
        PATH=os.environ["PATH"],
        HOME=str(folder),
        TAP_KAFKA_ADMIN_SECRET=str(password_file),
        TAP_KAFKA_CONFIG_DIR=str(config),
        TAP_KAFKA_STORAGE_TOOL=str(bin_dir / "storage"),
        TAP_KAFKA_IMAGE_RUN=str(bin_dir / "run"),
        TAP_TEST_KAFKA_LIBS=str(engines.kafka_dir()),
        TAP_TEST_KAFKA_START=str(KAFKA_START),
    )
    return env


def _login(user: str, password: str, port: int = HOST) -> dict:
    return {
        "bootstrap_servers": f"localhost:{port}",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": SECURITY["mechanism"],
        "sasl_plain_username": user,
        "sasl_plain_password": password,
        "request_timeout_ms": 8000,
    }


def _admin(user: str, password: str, port: int = HOST) -> KafkaAdminClient:
    return KafkaAdminClient(**_login(user, password, port), client_id="tap-compose-test")


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if not (engines.kafka_dir() / ".complete").exists():
        pytest.skip("the Kafka jars are not fetched (`tap stack start` fetches them)")
    for port in (INTERNAL, HOST, CONTROLLER):
        if _port_open(port):
            pytest.skip(f"port {port} is taken (set TAP_TEST_PORT_BASE)")
    folder = tmp_path_factory.mktemp("compose-kafka")
    password = secrets.token_hex(16)
    password_file = folder / "KAFKA_ADMIN_PASSWORD"
    password_file.write_text(password, encoding="utf-8")
    env = _broker_env(folder, password_file)
    log = (folder / "kafka.log").open("w")
    process = subprocess.Popen(
        ["bash", str(KAFKA_START)], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not _port_open(HOST):
            if process.poll() is not None:
                pytest.fail(f"kafka-start exited {process.returncode}:\n{_tail(folder)}")
            if time.monotonic() > deadline:
                pytest.fail(f"the broker did not listen within 180 s:\n{_tail(folder)}")
            time.sleep(0.5)  # polling a port, not a readiness guess
        yield {"password": password, "folder": folder, "env": env}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _tail(folder: Path) -> str:
    return (folder / "kafka.log").read_text(encoding="utf-8", errors="replace")[-4000:]


def _until(check, timeout: float = 60):
    """check() until it returns without a Kafka error (the broker finishing its start)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_the_admin_logs_in_with_the_password_the_storage_was_formatted_with(broker):
    for port in (HOST, INTERNAL):
        admin = _until(lambda p=port: _admin(SECURITY["admin"], broker["password"], p))
        try:
            assert isinstance(admin.list_topics(), list)
        finally:
            admin.close()
    config = broker["folder"] / "config"
    for name in ("tap_jaas.conf", "tap-admin.properties"):
        assert (config / name).stat().st_mode & 0o077 == 0, f"{name} is private"
    assert broker["password"] not in (config / "server.properties").read_text(encoding="utf-8")


def test_a_wrong_password_or_no_login_is_refused(broker):
    _until(lambda: _admin(SECURITY["admin"], broker["password"]).close())
    with pytest.raises(KafkaError):
        _admin(SECURITY["admin"], "not-the-password").list_topics()
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=f"localhost:{HOST}", request_timeout_ms=5000
        ).list_topics()


def _setup_env(broker, service: str, passwords: dict[str, str]) -> dict[str, str]:
    """A setup container's environment as secrets-env leaves it: compose's variables plus each
    secret file as the variable its target names."""
    model = cm.resolved_model("*")["services"][service]
    env = {k: str(v) for k, v in model["environment"].items()}
    env.update({target: passwords[source] for target, source in cm.secret_files(model).items()})
    env["TAP_KAFKA_BOOTSTRAP"] = f"localhost:{HOST}"
    env["TAP_SECRETS_DIR"] = str(broker["folder"] / "no-native-secrets")
    return env


@pytest.fixture(scope="module")
def provisioned(broker) -> dict[str, str]:
    """kafka-users (`tap kafka security`) and topics (`tap topics create`) run once, with the
    environment of their compose containers; returns the passwords by variable name."""
    pytest.importorskip("tapstack.kafka_security")
    variables = SECURITY["password_variables"]
    passwords = {variable: secrets.token_hex(12) for variable in variables.values()}
    passwords[variables["admin"]] = broker["password"]
    _until(lambda: _admin(SECURITY["admin"], broker["password"]).close())
    runner = CliRunner()
    for service, argv in (("kafka-users", ["kafka", "security"]), ("topics", ["topics", "create"])):
        result = runner.invoke(app, argv, env=_setup_env(broker, service, passwords))
        assert result.exit_code == 0, f"{service}: {result.output}"
    return passwords


def test_the_setup_containers_give_each_client_only_its_grants(provisioned):
    """The collector may write Topic_Purchase, but neither read it nor write the dead letters;
    Kafka UI's viewer may read Topic_Purchase but not the dead letters."""
    variables = SECURITY["password_variables"]
    passwords = provisioned
    topics = contracts.settings()["topics"]
    collector = SECURITY["users"]["collector"]
    producer = KafkaProducer(**_login(collector, passwords[variables["collector"]]), acks="all")
    try:
        producer.send(topics["purchase"], b'{"probe": true}').get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topics["dead_letter"], b"a raw line").get(timeout=30)
    finally:
        producer.close()
    with pytest.raises(TopicAuthorizationFailedError):
        _read(collector, passwords[variables["collector"]], topics["purchase"], None)

    viewer = SECURITY["users"]["viewer"]
    viewer_password = passwords[variables["viewer"]]
    assert b'{"probe": true}' in _read(viewer, viewer_password, topics["purchase"], None)
    # The dead letter is there, yet the viewer gets nothing: the broker does not even describe
    # the topic to it (metadata leaves out a topic the principal may not DESCRIBE).
    assert _read(viewer, viewer_password, topics["dead_letter"], None) == []
    consumer = KafkaConsumer(**_login(viewer, viewer_password))
    try:
        visible = consumer.topics()
    finally:
        consumer.close()
    assert topics["purchase"] in visible and topics["dead_letter"] not in visible


def _java_login(broker, properties: dict[str, str], topic: str) -> subprocess.CompletedProcess:
    """Kafka's own Java client (tests/tools/KafkaLogin.java) describes TOPIC with PROPERTIES."""
    path = broker["folder"] / f"client-{secrets.token_hex(4)}.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in properties.items()), encoding="utf-8")
    return subprocess.run(
        ["java", "-Xmx128m", "-cp", f"{engines.kafka_dir()}/*", str(KAFKA_LOGIN), str(path), topic],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_the_health_check_logs_in_with_the_file_kafka_start_wrote(broker, provisioned):
    """The kafka service's health check and tap-compose's tools pass --command-config
    /opt/kafka/config/tap-admin.properties: the Java client logs in with that very file."""
    written = (broker["folder"] / "config" / "tap-admin.properties").read_text(encoding="utf-8")
    properties = dict(line.split("=", 1) for line in written.splitlines())
    properties["bootstrap.servers"] = f"localhost:{INTERNAL}"
    result = _java_login(broker, properties, contracts.settings()["topics"]["purchase"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == str(contracts.settings()["topics"]["partitions"])


def test_logstash_and_kafka_ui_log_in_with_their_settings(broker, provisioned):
    """The JAAS strings as Logstash (tap.conf, ${VAR} replaced from its environment) and Kafka UI
    (its KAFKA_CLUSTERS_0_PROPERTIES_*, the Spring placeholder resolved) hand them to the Java
    client; a single-quoted JAAS value is valid (JaasConfig's StreamTokenizer quotes with ' and
    ", apache/kafka clients/.../security/JaasConfig.java:53)."""
    variables = SECURITY["password_variables"]
    topics = contracts.settings()["topics"]
    [kafka_input] = lc.parse_file(cm.ROOT / "logstash" / "pipeline" / "tap.conf").plugins(
        "input", "kafka"
    )
    loader_env = {
        "TAP_KAFKA_USER": SECURITY["users"]["loader"],
        "TAP_KAFKA_PASSWORD": provisioned[variables["loader"]],
    }
    logstash = {
        "bootstrap.servers": f"localhost:{HOST}",
        "security.protocol": kafka_input.get("security_protocol"),
        "sasl.mechanism": kafka_input.get("sasl_mechanism"),
        "sasl.jaas.config": lc.substitute_env(kafka_input.get("sasl_jaas_config"), loader_env),
    }
    result = _java_login(broker, logstash, topics["dashboard"])
    assert result.returncode == 0, result.stdout + result.stderr

    ui = cm.resolved_model("*")["services"]["kafka-ui"]["environment"]
    prefix = "KAFKA_CLUSTERS_0_PROPERTIES_"
    kafka_ui = {
        key.removeprefix(prefix).lower().replace("_", "."): str(value)
        for key, value in ui.items()
        if key.startswith(prefix)
    }
    viewer = variables["viewer"]
    kafka_ui["sasl.jaas.config"] = kafka_ui["sasl.jaas.config"].replace(
        "${" + viewer + "}", provisioned[viewer]
    )
    kafka_ui["bootstrap.servers"] = f"localhost:{HOST}"
    result = _java_login(broker, kafka_ui, topics["purchase"])
    assert result.returncode == 0, result.stdout + result.stderr
    refused = _java_login(broker, kafka_ui, topics["dead_letter"])
    assert refused.returncode == 1
    assert refused.stdout.strip() == "TopicAuthorizationException"


def _read(user: str, password: str, topic: str, group: str | None) -> list[bytes]:
    """Every value of TOPIC from the start, as USER (raises what the broker refuses)."""
    from kafka import TopicPartition

    consumer = KafkaConsumer(
        **_login(user, password), group_id=group, enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )  # fmt: skip
    try:
        partitions = [
            TopicPartition(topic, p) for p in range(contracts.settings()["topics"]["partitions"])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return [record.value for record in consumer]
    finally:
        consumer.close()
