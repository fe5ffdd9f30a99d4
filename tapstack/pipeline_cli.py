"""The long-running pipeline processes and the one-off setup steps, as `tap` commands."""

from __future__ import annotations

import signal
from pathlib import Path

import typer

from tapstack.console import console, friendly_errors, say, setup_logging
from tapstack.readiness import mark_ready


def stop_flag():
    """A should_stop() that turns true on SIGTERM/SIGINT, so a stop finishes the batch."""
    state = {"stop": False}

    def request(*_):
        state["stop"] = True

    signal.signal(signal.SIGTERM, request)
    signal.signal(signal.SIGINT, request)
    return lambda: state["stop"]


def collect(
    log: Path = typer.Option(..., help="The orders log to tail."),
    state: Path = typer.Option(..., help="Where the tail position is kept."),
) -> None:
    """Tail the orders log into Topic_Purchase (the native Fluent Bit)."""
    from tapstack.collector.tailer import Tailer

    setup_logging()
    tailer = Tailer(log, state)
    mark_ready("tailer")
    try:
        tailer.run(should_stop=stop_flag())
    finally:
        tailer.close()


def load() -> None:
    """Load Topic_Dashboard into Elasticsearch (the native Logstash)."""
    from tapstack.loader.es_loader import Loader

    setup_logging()
    loader = Loader()
    mark_ready("loader")
    try:
        loader.run(should_stop=stop_flag())
    finally:
        loader.close()


topics_app = typer.Typer(no_args_is_help=True)
es_app = typer.Typer(no_args_is_help=True)
kafka_app = typer.Typer(no_args_is_help=True)


@topics_app.command("create")
@friendly_errors
def topics_create() -> None:
    """Create the topics of contracts/settings.toml (idempotent)."""
    from tapstack.native import kafka

    created = kafka.create_topics()
    say(f"Topics created: {', '.join(created) or 'all existed'}")


@es_app.command("setup")
@friendly_errors
def es_setup() -> None:
    """Install the index templates and create the indices (idempotent)."""
    from tapstack.elastic import templates
    from tapstack.elastic.client import connect

    created = templates.install(connect(role="setup"))
    say(f"Index templates installed; indices created: {', '.join(created) or 'all existed'}")


@es_app.command("security")
@friendly_errors
def es_security() -> None:
    """Create or update TAP's Elasticsearch roles and users (compose's es-users container).

    Connects as the admin; every password comes from the variable contracts/security.toml
    names for it. The native stack holds the same users and roles in its file realm."""
    import os

    from tapstack import contracts
    from tapstack.elastic import security
    from tapstack.elastic.client import connect
    from tapstack.native.errors import StackError

    variables = security.password_variables()
    missing = sorted(v for v in variables.values() if not os.environ.get(v))
    if missing:
        raise StackError(f"Set {', '.join(missing)} (compose/scripts/init-env makes them).")
    passwords = {user: os.environ[variable] for user, variable in variables.items()}
    admin_user = contracts.es_user("admin")
    admin = connect().options(basic_auth=(admin_user, passwords[admin_user]))
    written = security.apply(admin, passwords)
    say(f"Elasticsearch roles {', '.join(security.roles())} and users {', '.join(written)} set")


@kafka_app.command("security")
@friendly_errors
def kafka_security() -> None:
    """Create or update TAP's Kafka users and make the broker's ACLs the contract's (compose's
    setup container; the native stack runs the same after its broker starts).

    Connects as the admin; each password comes from the variable contracts/security.toml names
    for it, or from the file named by <VARIABLE>_FILE (Docker secrets)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from tapstack import contracts, kafka_clients
    from tapstack import kafka_security as security
    from tapstack.native.errors import StackError

    passwords, missing = security.from_environment()
    if missing:
        raise StackError(f"Set {', '.join(missing)} (or <VARIABLE>_FILE to a file holding it).")
    admin_user = kafka_clients.admin_user()
    try:
        admin = KafkaAdminClient(
            **kafka_clients.config((admin_user, passwords[admin_user])), client_id="tap-security"
        )
    except KafkaError as exc:
        raise StackError(
            f"Could not log in to Kafka at {contracts.kafka_bootstrap()} as {admin_user}: {exc}"
        ) from exc
    try:
        written = security.apply(admin, passwords)
    finally:
        admin.close()
    say(f"Kafka users {', '.join(written)} set; {len(security.wanted())} ACLs, as the contract")


@friendly_errors
def summary() -> None:
    """Print the CEO summary from Elasticsearch."""
    from tapstack.elastic.client import connect
    from tapstack.report.summary import print_summary

    print_summary(connect(role="viewer"), console)
