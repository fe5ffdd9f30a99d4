"""A single-node Elasticsearch from the integ-test-zip, run as a dedicated non-root user.

Elasticsearch refuses to run as root. When the stack is started by root, the node runs as the
system user `tap-es`, its engine and node files in /var/lib/tap-es (see
tapstack.native.service_user). Run as another user, the node lives in the run folder itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import requests

from tapstack import contracts
from tapstack.native import processes
from tapstack.native.errors import StackError
from tapstack.native.kafka import port_open
from tapstack.native.service_user import ServiceUser

NAME = "elasticsearch"
# Elasticsearch refuses to run as root: started by root, the node runs as tap-es.
SERVICE = ServiceUser("tap-es", NAME, "TAP_ES_SERVICE_HOME")
SERVICE_USER = SERVICE.name
HEAP = "-Xms512m -Xmx512m"


def java_home() -> Path:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java is not installed: install a JDK 17 or newer "
            "(apt-get install openjdk-17-jdk-headless)."
        )
    return Path(os.path.realpath(java)).parent.parent


def _config(port: int, data: Path, logs: Path) -> str:
    # Only settings of the server core and x-pack core/security: the integ-test-zip has no more.
    return "\n".join(
        [
            "cluster.name: tap-native",
            "node.name: tap-es-1",
            f"path.data: {data}",
            f"path.logs: {logs}",
            "network.host: 127.0.0.1",
            f"http.port: {port}",
            "transport.port: 9300-9399",
            "discovery.type: single-node",
            # Security on, with the users and roles of compose (contracts/security.toml). No
            # TLS: the node listens on the loopback only, and single-node needs none between
            # nodes.
            "xpack.security.enabled: true",
            "xpack.security.http.ssl.enabled: false",
            "xpack.security.transport.ssl.enabled: false",
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "action.destructive_requires_name: true",
            "",
        ]
    )


def node_home(run_dir: Path) -> Path:
    """Where the node's config, data and logs live (tapstack.native.service_user)."""
    return SERVICE.node_home(run_dir)


def purge(run_dir: Path) -> None:
    """Delete the node's files (the run folder itself is deleted by the stack)."""
    SERVICE.purge(run_dir)


def _tool(es_home: Path, env: dict[str, str], user: str | None, name: str, *args, stdin=None):
    """Run one of the distribution's CLI tools (as the node's user, on the node's config)."""
    identity = SERVICE.identity() if user else {}
    done = subprocess.run(
        [str(es_home / "bin" / name), *args],
        input=stdin,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
        **identity,
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise StackError(f"{name} {args[0]} failed: {' '.join(detail)}")


def _bootstrap_password(es_home: Path, config: Path, env: dict[str, str], user, password):
    """The elastic user's password, from the node's keystore: with no security index (see
    _file_realm) the reserved realm keeps using it."""
    if (config / "elasticsearch.keystore").exists():
        return
    _tool(es_home, env, user, "elasticsearch-keystore", "create")
    _tool(es_home, env, user, "elasticsearch-keystore", "add", "--stdin", "bootstrap.password",
          stdin=password)  # fmt: skip


def _file_realm_roles(config: Path, roles: Mapping[str, dict]) -> None:
    """roles.yml, and the user files emptied for _file_realm to fill.

    The file realm reads roles.yml one role per top-level line block, so each role is written
    as one line, `name: {JSON}` (a JSON object is a YAML flow mapping)."""
    (config / "roles.yml").write_text("".join(f"{n}: {json.dumps(r)}\n" for n, r in roles.items()))
    for name in ("users", "users_roles"):
        (config / name).write_text("")


def _file_realm(es_home, config, env, user, users: Mapping[str, tuple[str, list[str]]]):
    """TAP's users and roles in the node's file realm.

    The integ-test-zip lacks the analysis module that the security index's mapping needs, so
    users and roles made through the security API (compose's way) cannot be stored here. The
    file realm takes the same definitions from files: roles.yml (_file_realm_roles) and the
    users written by the distribution's own elasticsearch-users tool, passwords on its stdin.
    """
    for name, (password, held) in users.items():
        _tool(es_home, env, user, "elasticsearch-users", "useradd", name, "-r", ",".join(held),
              stdin=f"{password}\n{password}\n")  # fmt: skip


def start(
    run_dir: Path,
    es_home: Path,
    admin_password: str,
    users: Mapping[str, tuple[str, list[str]]],
    roles: Mapping[str, dict],
) -> processes.Managed:
    """Start the node, security on: elastic with admin_password, users (name -> password,
    roles) and roles (name -> role body) in the file realm."""
    running = processes.find(run_dir, NAME)
    if running:
        return running
    port = contracts.port("elasticsearch")
    if port_open(port):
        raise StackError(
            f"Port {port} (elasticsearch) is taken by another program. "
            "Stop it, or choose another port with TAP_PORT_ELASTICSEARCH=..."
        )
    user = SERVICE.ensure()
    es_home, home = SERVICE.prepare(run_dir, es_home)
    config, data, logs, tmp = (home / d for d in ("config", "data", "logs", "tmp"))
    if not config.exists():
        shutil.copytree(es_home / "config", config)
    for folder in (data, logs, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "elasticsearch.yml").write_text(_config(port, data, logs))
    _file_realm_roles(config, roles)
    SERVICE.hand_over(home)
    env = {
        "ES_JAVA_HOME": str(java_home()),
        "ES_PATH_CONF": str(config),
        "ES_TMPDIR": str(tmp),
        "ES_JAVA_OPTS": HEAP,
    }
    _bootstrap_password(es_home, config, env, user, admin_password)
    _file_realm(es_home, config, env, user, users)
    return processes.start(
        run_dir, NAME, [str(es_home / "bin" / "elasticsearch")], env=env, cwd=home, user=user
    )


def healthy(auth: tuple[str, str] | None) -> bool:
    """The cluster answers (to this user) and is at least yellow."""
    try:
        response = requests.get(
            f"{contracts.elasticsearch_url()}/_cluster/health",
            params={"wait_for_status": "yellow", "timeout": "2s"},
            auth=auth,
            timeout=5,
        )
        return response.ok and response.json().get("status") in ("yellow", "green")
    except requests.RequestException:
        return False
