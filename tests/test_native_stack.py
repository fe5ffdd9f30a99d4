"""The native stack's engines run unprivileged from a checkout in any folder: started by root,
Elasticsearch and Kafka each run as their own user and group (never root's), from files that
user can reach even when the checkout is a folder only its owner can enter (`mktemp -d`, root's
home)."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import psutil
import pytest

from tapstack.native import elasticsearch, kafka, processes

pytestmark = pytest.mark.engines


def _ids(pid: int) -> dict[str, list[int]]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            fields[key] = [int(v) for v in value.split()]
    return fields


def _java_of(pid: int) -> psutil.Process:
    """The engine's JVM: Elasticsearch's launcher starts it as a child, Kafka is one."""
    group = [p for p in psutil.Process(pid).children(recursive=True) if "java" in p.name()]
    return group[-1] if group else psutil.Process(pid)


ENGINES = pytest.mark.parametrize("engine", [elasticsearch, kafka], ids=["elasticsearch", "kafka"])


@ENGINES
@pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root user the engine runs as that user")
def test_the_engine_runs_as_its_own_user_and_group(engines, engine):
    managed = processes.find(engines.run_dir, engine.NAME)
    assert managed is not None
    account = pwd.getpwnam(engine.SERVICE.name)
    ids = _ids(_java_of(managed.pid).pid)
    assert set(ids["Uid"]) == {account.pw_uid}
    assert set(ids["Gid"]) == {account.pw_gid} and account.pw_gid != 0, "root's group kept"
    assert ids["Groups"] in ([], [account.pw_gid]), f"supplementary groups {ids['Groups']}"


def test_each_engine_has_a_user_of_its_own():
    assert elasticsearch.SERVICE.name != kafka.SERVICE.name


@ENGINES
@pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root user the node is in the run folder")
def test_the_node_is_reachable_by_its_user_wherever_the_checkout_is(engines, engine):
    home = engine.node_home(engines.run_dir)
    account = pwd.getpwnam(engine.SERVICE.name)
    assert engines.run_dir.resolve() not in home.parents, "inside the checkout"
    assert (engines.run_dir / engine.NAME).resolve() == home
    info = home.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (account.pw_uid, 0o700)
    for parent in home.parents:  # every folder above it lets others pass through
        assert parent.stat().st_mode & stat.S_IXOTH, f"{parent} cannot be entered by the node"


@pytest.mark.skipif(os.geteuid() != 0, reason="as a non-root user the broker's files are its own")
def test_the_brokers_files_are_its_users_and_private(engines):
    """The broker reads its config (the admin's password) and writes its metadata and log as
    its own user; nobody else may read them."""
    home = kafka.node_home(engines.run_dir)
    account = pwd.getpwnam(kafka.SERVICE.name)
    for path in [home, *home.rglob("*")]:
        info = path.lstat()
        assert info.st_uid == account.pw_uid, f"{path} is not {account.pw_name}'s"
        assert not stat.S_IMODE(info.st_mode) & 0o077, f"{path} {oct(info.st_mode)}"


def test_every_settings_topic_exists_and_the_replay_ledger_is_compacted(engines):
    from kafka.admin import ConfigResource, ConfigResourceType

    from tapstack import contracts
    from tapstack.native import kafka

    admin = kafka.admin()
    try:
        assert set(contracts.all_topics()) <= set(admin.list_topics())
        ledger = contracts.topic("dead_letter_replays")
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, ledger)])
    finally:
        admin.close()
    # kafka-python 3 answers {"topic": {name: {config: {"value": ...}}}}.
    assert answer["topic"][ledger]["cleanup.policy"]["value"] == "compact"


def _shared_with_others(root: Path) -> list[str]:
    """Paths under root that the group or others may read, write or enter."""
    found = []
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink() and stat.S_IMODE(path.lstat().st_mode) & 0o077:
            found.append(f"{path} {oct(stat.S_IMODE(path.lstat().st_mode))}")
    return found


def test_the_run_folder_and_what_the_engines_write_are_private(engines):
    """The run folder holds logs, secrets and customer data (Kafka's, e-mails included): 0700,
    so nothing below it can be reached by anyone else; the engines' logs, which may quote a
    record or a setting, are owner-only themselves, whatever the umask."""
    assert stat.S_IMODE(engines.run_dir.stat().st_mode) == 0o700
    assert _shared_with_others(engines.run_dir / "logs") == []
    assert _shared_with_others(engines.secrets_dir) == []
