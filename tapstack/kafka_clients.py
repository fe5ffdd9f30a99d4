"""How every Kafka client connects: the broker, SASL/SCRAM and whose identity, from one place.

A process's identity is TAP_KAFKA_USER / TAP_KAFKA_PASSWORD in its environment (compose, and
each native pipeline process, which the stack hands only its own user). Commands run by hand and
the tests act as the admin of contracts/security.toml, whose password is in the stack's secrets
folder (tapstack.credentials). With neither, the client connects without authentication, which
the secured broker refuses (tests/test_kafka_security.py).
"""

from __future__ import annotations

import os
from typing import Any

from tapstack import contracts, credentials

SASL_PROTOCOL = "SASL_PLAINTEXT"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


def mechanism() -> str:
    return contracts.security()["kafka"]["mechanism"]


def admin_user() -> str:
    return contracts.security()["kafka"]["admin"]


def user(role: str) -> str:
    """Kafka user name by role key (admin, collector, process_orders, behaviour, loader,
    viewer)."""
    section = contracts.security()["kafka"]
    return section["admin"] if role == "admin" else section["users"][role]


def role_of(name: str) -> str | None:
    """The role key of a user name, or None for a name the contract does not know."""
    section = contracts.security()["kafka"]
    if name == section["admin"]:
        return "admin"
    return next((key for key, held in section["users"].items() if held == name), None)


def identity() -> tuple[str, str] | None:
    """(user, password): the process's own from the environment, else the stack's admin."""
    name, password = os.environ.get("TAP_KAFKA_USER"), os.environ.get("TAP_KAFKA_PASSWORD")
    if name and password:
        return name, password
    stored = credentials.read("kafka", admin_user())
    return (admin_user(), stored) if stored else None


def config(auth: tuple[str, str] | None = None) -> dict[str, Any]:
    """kafka-python keyword arguments (KafkaProducer, KafkaConsumer, KafkaAdminClient): the
    bootstrap servers and, given or found, the SCRAM login."""
    found = auth or identity()
    settings: dict[str, Any] = {"bootstrap_servers": contracts.kafka_bootstrap()}
    if found:
        settings.update(
            security_protocol=SASL_PROTOCOL,
            sasl_mechanism=mechanism(),
            sasl_plain_username=found[0],
            sasl_plain_password=found[1],
        )
    return settings


def _quoted(value: str) -> str:
    """A JAAS option value: double-quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def jaas_config(name: str, password: str, module: str = SCRAM_LOGIN) -> str:
    return f"{module} required username={_quoted(name)} password={_quoted(password)};"


_PROVIDERS = "org.apache.kafka.common.config.provider."


def _spark_login() -> tuple[str, str, dict[str, str]] | None:
    """(user, password reference, config-provider options) for a Spark job: the password is
    never a literal in the options, which Spark prints unredacted in a plan's
    StreamingRelationV2 (tests/test_kafka_security.py saw it). The Kafka client resolves the
    reference itself through a config provider (KIP-297; EnvVarConfigProvider since 3.5,
    DirectoryConfigProvider since 2.7, both in kafka-clients 3.9.1 that Spark 4.1 ships)."""
    name, password = os.environ.get("TAP_KAFKA_USER"), os.environ.get("TAP_KAFKA_PASSWORD")
    if name and password:
        return name, "${env:TAP_KAFKA_PASSWORD}", _provider("env", "EnvVarConfigProvider")
    folder = credentials.secrets_dir() / "kafka"
    if (folder / admin_user()).exists():
        reference = f"${{dir:{folder}:{admin_user()}}}"
        return admin_user(), reference, _provider("dir", "DirectoryConfigProvider")
    return None


def _provider(name: str, cls: str) -> dict[str, str]:
    return {
        "kafka.config.providers": name,
        f"kafka.config.providers.{name}.class": _PROVIDERS + cls,
    }


def spark_options() -> dict[str, str]:
    """Options of Spark's Kafka source and sink (the Kafka client's settings, `kafka.`-
    prefixed), logging in as the process's identity (see identity())."""
    options = {"kafka.bootstrap.servers": contracts.kafka_bootstrap()}
    login = _spark_login()
    if login:
        name, reference, providers = login
        options.update(
            {
                "kafka.security.protocol": SASL_PROTOCOL,
                "kafka.sasl.mechanism": mechanism(),
                "kafka.sasl.jaas.config": jaas_config(name, reference),
                **providers,
            }
        )
    return options


def group_prefix(name: str) -> str:
    """The consumer-group prefix the contract grants a user (its "prefix*" group), for Spark's
    groupIdPrefix; a user granted none (the admin may use any) gets "tap-<user>"."""
    grants = contracts.security()["kafka"]["grants"].get(role_of(name) or "", {})
    prefixes = [group[:-1] for group in grants.get("groups", []) if group.endswith("*")]
    return prefixes[0] if prefixes else f"tap-{name}"


def spark_source_options() -> dict[str, str]:
    """spark_options plus the groupIdPrefix of the reading user, so its groups match its grant."""
    login = _spark_login()
    return {
        **spark_options(),
        "groupIdPrefix": group_prefix(login[0] if login else "anonymous"),
    }
