"""Kafka security on the native stack, proven against the real broker: the SCRAM users and ACLs
of contracts/security.toml (the same as compose's, applied by the same code), each user allowed
exactly its grants and refused the rest; no login, or a wrong password, gets nothing; the dead
letters' retention is the contract's; the password stays out of Spark's plans and logs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    TopicAuthorizationFailedError,
)
from kafka.structs import OffsetAndMetadata

from tapstack import contracts, credentials, kafka_clients, kafka_security
from tapstack.native import engines as native_engines
from tapstack.native import stack as native_stack

ROLES = tuple(kafka_security.users())
TOPIC_ROLES = ("purchase", "analysis", "dashboard", "dead_letter", "dead_letter_replays")


def _grant(role: str, kind: str) -> set[str]:
    return set(contracts.security()["kafka"]["grants"].get(role, {}).get(kind, []))


def _auth(role: str) -> tuple[str, str]:
    user = kafka_clients.user(role)
    password = credentials.read("kafka", user)
    assert password, f"no stored password for {user}"
    return user, password


def _producer(role: str) -> KafkaProducer:
    return KafkaProducer(
        **kafka_clients.config(_auth(role)), acks="all", max_block_ms=15000, retries=0
    )


def _produce(role: str, topic_role: str) -> None:
    """One record to the topic as role, waited for: raises when the broker refuses it."""
    producer = _producer(role)
    try:
        value = f"security probe {uuid.uuid4()}".encode()
        producer.send(contracts.topic(topic_role), key=b"probe", value=value).get(timeout=30)
    finally:
        producer.close(timeout=5)


def _read_one(role: str, topic_role: str, group: str | None = None) -> bytes:
    """The first record of partition 0 as role (no group unless given, then committed in it):
    raises when the broker refuses the read or the group."""
    topic = contracts.topic(topic_role)
    consumer = KafkaConsumer(
        **kafka_clients.config(_auth(role)),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=15000,
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        # The log's start, not offset 0: earlier tests may have let records expire.
        consumer.seek_to_beginning(partition)
        for _ in range(40):  # polls of up to 0.5 s: a refusal or the record comes well before
            records = consumer.poll(timeout_ms=500).get(partition, [])
            # A user that may not even describe the topic is refused in the metadata answer
            # (TOPIC_AUTHORIZATION_FAILED), which kafka-python keeps rather than raises.
            if topic in consumer._client.cluster.unauthorized_topics:
                raise TopicAuthorizationFailedError(topic)
            if records:
                if group:
                    consumer.commit({partition: OffsetAndMetadata(records[0].offset + 1, "", -1)})
                return records[0].value
        raise AssertionError(f"no record of {topic} partition 0 arrived, nor a refusal")
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def filled(engines):
    """Every flow topic holds a record in partition 0 (written by the admin)."""
    producer = KafkaProducer(**kafka_clients.config(), acks="all")
    try:
        for role in TOPIC_ROLES:
            producer.send(contracts.topic(role), key=b"seed", value=b"seed", partition=0).get(
                timeout=30
            )
    finally:
        producer.close()
    return engines


# -- the broker holds the contract ---------------------------------------------------------------


def test_the_broker_acls_are_exactly_the_contracts(engines):
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        assert kafka_security.present(admin) == kafka_security.wanted()
        users = admin.describe_user_scram_credentials(list(kafka_security.users().values()))
    finally:
        admin.close()
    assert set(users) == set(kafka_security.users().values())


def test_applying_again_changes_nothing_and_removes_a_stray_acl(engines):
    from kafka.admin import (
        ACL,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePattern,
        ResourceType,
    )

    stray = ACL(
        principal=f"User:{kafka_clients.user('viewer')}",
        host="*",
        operation=ACLOperation.WRITE,
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType.TOPIC, contracts.topic("purchase"), ACLResourcePatternType.LITERAL
        ),
    )
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        admin.create_acls([stray])
        assert kafka_security.present(admin) != kafka_security.wanted()
        engines.apply_kafka_security()
        assert kafka_security.present(admin) == kafka_security.wanted()
    finally:
        admin.close()


# -- each user may do its grants, and nothing else -----------------------------------------------


WRITES = [(role, topic) for role in ROLES for topic in TOPIC_ROLES]


@pytest.mark.parametrize(("role", "topic_role"), WRITES)
def test_a_user_writes_exactly_the_topics_it_is_granted(engines, role, topic_role):
    if topic_role in _grant(role, "write"):
        _produce(role, topic_role)
    else:
        with pytest.raises(TopicAuthorizationFailedError):
            _produce(role, topic_role)


READS = [(role, topic) for role in ROLES for topic in TOPIC_ROLES]


@pytest.mark.parametrize(("role", "topic_role"), READS)
def test_a_user_reads_exactly_the_topics_it_is_granted(filled, role, topic_role):
    if topic_role in _grant(role, "read"):
        assert _read_one(role, topic_role)
    else:
        with pytest.raises(TopicAuthorizationFailedError):
            _read_one(role, topic_role)


def _committed(role: str, topic_role: str, group: str) -> int | None:
    """The group's committed offset of partition 0, read as role: needs the group's rights,
    and leaves an active group (the running loader's) undisturbed, unlike a commit."""
    consumer = KafkaConsumer(
        **kafka_clients.config(_auth(role)), group_id=group, enable_auto_commit=False
    )
    try:
        return consumer.committed(TopicPartition(contracts.topic(topic_role), 0))
    finally:
        consumer.close()


def test_the_loader_uses_its_group_and_no_other(filled):
    _committed("loader", "dashboard", contracts.consumer_group("loader"))  # allowed
    with pytest.raises(GroupAuthorizationFailedError):
        _committed("loader", "dashboard", "tap-behaviour-not-the-loaders")


def test_a_spark_job_commits_only_under_its_group_prefix(filled):
    prefix = kafka_clients.group_prefix(kafka_clients.user("process_orders"))
    assert prefix == "tap-process-orders"
    assert _read_one("process_orders", "purchase", group=f"{prefix}-{uuid.uuid4()}")
    with pytest.raises(GroupAuthorizationFailedError):
        _read_one("process_orders", "purchase", group=contracts.consumer_group("loader"))


def _tap_kafka_security(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`tap kafka security` as compose's setup container runs it: its own process and env."""
    return subprocess.run(
        [sys.executable, "-m", "tapstack", "kafka", "security"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=contracts.ROOT,
    )


def test_tap_kafka_security_applies_the_contract_from_password_files(engines, tmp_path):
    """The compose way: every password in a file named by <VARIABLE>_FILE (Docker secrets)."""
    env = dict(os.environ)
    env.pop("TAP_SECRETS_DIR", None)  # nothing from the stack's folder: only the files
    for user, variable in kafka_security.password_variables().items():
        secret = tmp_path / variable
        secret.write_text(credentials.read("kafka", user) + "\n")
        env[f"{variable}_FILE"] = str(secret)
        env.pop(variable, None)
    done = _tap_kafka_security(env)
    assert done.returncode == 0, done.stdout + done.stderr
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        assert kafka_security.present(admin) == kafka_security.wanted()
    finally:
        admin.close()
    _produce("collector", "purchase")  # the passwords were set to the same values


def test_tap_kafka_security_with_a_wrong_admin_password_fails_in_one_line(engines):
    env = {v: "wrong" for v in kafka_security.password_variables().values()}
    env = {**os.environ, **env}
    env.pop("TAP_SECRETS_DIR", None)
    done = _tap_kafka_security(env)
    assert done.returncode == 1
    assert "Could not log in to Kafka" in done.stdout and "Traceback" not in done.stderr


# -- no login, or a wrong one, gets nothing ------------------------------------------------------


def test_a_wrong_password_is_refused(engines):
    user = kafka_clients.user("collector")
    with pytest.raises(KafkaError):
        KafkaProducer(**kafka_clients.config((user, "not-the-password")), max_block_ms=10000)


def test_a_connection_without_sasl_is_refused(engines):
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=contracts.kafka_bootstrap(),
            security_protocol="PLAINTEXT",
            request_timeout_ms=5000,
            api_version_auto_timeout_ms=5000,
        )


def test_the_controller_listener_takes_no_client_without_the_admins_password(engines):
    """Bound to localhost and PLAIN as the admin: the contract users cannot log in there."""
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            bootstrap_servers=f"localhost:{contracts.port('kafka_controller')}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username=kafka_clients.user("collector"),
            sasl_plain_password=_auth("collector")[1],
            request_timeout_ms=5000,
            api_version_auto_timeout_ms=5000,
        )


def test_the_broker_config_file_is_the_owners_alone(engines):
    config = engines.run_dir / "kafka" / "server.properties"
    assert config.stat().st_mode & 0o077 == 0  # it holds the admin's password


# -- retention -----------------------------------------------------------------------------------


def test_every_topic_has_the_contracts_retention_and_dead_letters_no_longer_than_raw(engines):
    hours = contracts.settings()["retention_hours"]
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        names = [contracts.topic(role) for role in hours]
        answer = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        admin.close()
    kept = {
        role: int(answer["topic"][contracts.topic(role)]["retention.ms"]["value"]) for role in hours
    }
    assert kept == {role: value * 3600 * 1000 for role, value in hours.items()}
    assert kept["dead_letter"] <= kept["purchase"]


def test_topics_create_restores_the_contracts_retention_on_an_existing_topic(engines):
    from tapstack.native import kafka as native_kafka

    dead_letter = contracts.topic("dead_letter")
    resource = ConfigResource(ConfigResourceType.TOPIC, dead_letter, {"retention.ms": "-1"})
    admin = KafkaAdminClient(**kafka_clients.config())
    try:
        admin.alter_configs([resource])
        altered = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, dead_letter)])
        assert altered["topic"][dead_letter]["retention.ms"]["value"] == "-1"
        native_kafka.create_topics()
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, dead_letter)])
    finally:
        admin.close()
    hours = contracts.settings()["retention_hours"]["dead_letter"]
    assert int(answer["topic"][dead_letter]["retention.ms"]["value"]) == hours * 3600 * 1000


# -- each pipeline process logs in as its own user -----------------------------------------------


def test_each_pipeline_process_is_given_only_its_own_kafka_user(tmp_path, monkeypatch):
    monkeypatch.setattr(native_stack, "RUN_ROOT", tmp_path)
    stack = native_stack.Stack("probe")
    given = {process: stack.pipeline_env(process) for process in native_stack.PIPELINE}
    assert {p: env["TAP_KAFKA_USER"] for p, env in given.items()} == {
        "tailer": kafka_clients.user("collector"),
        "process_orders": kafka_clients.user("process_orders"),
        "behaviour": kafka_clients.user("behaviour"),
        "loader": kafka_clients.user("loader"),
    }
    for env in given.values():
        stored = credentials.read("kafka", env["TAP_KAFKA_USER"], stack.secrets_dir)
        assert env["TAP_KAFKA_PASSWORD"] == stored
    passwords = [env["TAP_KAFKA_PASSWORD"] for env in given.values()]
    assert len(set(passwords)) == len(passwords)
    admin = credentials.read("kafka", kafka_clients.admin_user(), stack.secrets_dir)
    assert admin is None or admin not in passwords


# -- the password stays out of Spark's plans and logs --------------------------------------------

# A Spark job reading Topic_Purchase as the collector (which may not read it): the query fails
# in the Kafka source. Plans are printed first, the Kafka clients log their configs at INFO.
_REFUSED_JOB = """
import sys
from tap_spark.kafka_io import read_topic
from tap_spark.session import local_session

spark = local_session("tap-kafka-leak-probe")
frame = read_topic(spark, "{topic}")
frame.explain(True)
query = (
    frame.writeStream.format("console").option("checkpointLocation", sys.argv[1]).start()
)
query.awaitTermination(180)
"""


def test_a_refused_spark_query_prints_no_password(filled, tmp_path):
    user, password = _auth("collector")
    script = tmp_path / "refused_job.py"
    script.write_text(_REFUSED_JOB.format(topic=contracts.topic("purchase")))
    log = tmp_path / "job.log"
    env = {
        **os.environ,
        "TAP_KAFKA_USER": user,
        "TAP_KAFKA_PASSWORD": password,
        "TAP_SPARK_JARS": str(native_engines.spark_kafka_dir()),
        "TAP_SPARK_LOG_LEVEL": "INFO",
        "PYTHONPATH": os.pathsep.join([str(contracts.ROOT / "spark"), str(contracts.ROOT)]),
    }
    with open(log, "wb") as out:
        finished = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "checkpoint")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=300,
            cwd=Path(contracts.ROOT),
        )
    text = log.read_text(errors="replace")
    assert finished.returncode != 0, text[-2000:]
    # Refused for reading, so it logged in: the password reference was resolved.
    assert "TopicAuthorizationException" in text, text[-3000:]
    assert "== Parsed Logical Plan ==" in text and "kafka.sasl.jaas.config" in text
    assert "sasl.jaas.config" in text, "the clients' configs were not logged: nothing was checked"
    assert password not in text


# -- the contract, read without an engine --------------------------------------------------------


def test_groups_map_to_prefixed_and_literal_acls():
    wanted = kafka_security.wanted()
    loader = f"User:{kafka_clients.user('loader')}"
    orders = f"User:{kafka_clients.user('process_orders')}"
    assert (loader, "GROUP", contracts.consumer_group("loader"), "LITERAL", "READ") in wanted
    assert (orders, "GROUP", "tap-process-orders", "PREFIXED", "READ") in wanted
    assert not any(entry[0] == f"User:{kafka_clients.admin_user()}" for entry in wanted)


def test_passwords_come_from_the_variables_or_their_files(tmp_path):
    variables = kafka_security.password_variables()
    secret = tmp_path / "collector"
    secret.write_text("from-a-file\n")
    environ = {v: f"pw-{v}" for v in variables.values()}
    collector = variables[kafka_clients.user("collector")]
    del environ[collector]
    environ[f"{collector}_FILE"] = str(secret)
    passwords, missing = kafka_security.from_environment(environ)
    assert missing == []
    assert passwords[kafka_clients.user("collector")] == "from-a-file"
    assert passwords[kafka_clients.admin_user()] == f"pw-{variables[kafka_clients.admin_user()]}"
    _, missing = kafka_security.from_environment({})
    assert sorted(missing) == sorted(variables.values())


def test_every_kafka_user_has_a_grant_and_a_password_variable():
    section = contracts.security()["kafka"]
    assert set(section["grants"]) == set(section["users"])
    assert set(section["password_variables"]) == {"admin", *section["users"]}


def test_the_spark_options_carry_the_login_by_reference_and_the_granted_prefix(monkeypatch):
    monkeypatch.setenv("TAP_KAFKA_USER", kafka_clients.user("behaviour"))
    monkeypatch.setenv("TAP_KAFKA_PASSWORD", "the-real-password")
    options = kafka_clients.spark_source_options()
    assert options["kafka.security.protocol"] == "SASL_PLAINTEXT"
    assert options["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert options["kafka.sasl.jaas.config"] == (
        f'{kafka_clients.SCRAM_LOGIN} required username="{kafka_clients.user("behaviour")}" '
        'password="${env:TAP_KAFKA_PASSWORD}";'
    )
    assert "the-real-password" not in repr(options)
    assert options["groupIdPrefix"] == "tap-behaviour"


def test_dead_letters_are_kept_no_longer_than_the_raw_lines():
    hours = contracts.settings()["retention_hours"]
    assert set(hours) == {"purchase", "analysis", "dashboard", "dead_letter"}
    assert hours["dead_letter"] <= hours["purchase"]
