"""A single-node Elasticsearch from the integ-test-zip, run as a dedicated non-root user.

Elasticsearch refuses to run as root. When the stack is started by root, the user `tap-es` is
created (system account, no login) and owns the node's config, data and logs in the run folder.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import requests

from tapstack import contracts
from tapstack.native import processes
from tapstack.native.errors import StackError
from tapstack.native.kafka import port_open

NAME = "elasticsearch"
SERVICE_USER = "tap-es"
HEAP = "-Xms512m -Xmx512m"


def java_home() -> Path:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java is not installed: install a JDK 17 or newer "
            "(apt-get install openjdk-17-jdk-headless)."
        )
    return Path(os.path.realpath(java)).parent.parent


def _service_user() -> str | None:
    """The user to run as: tap-es when we are root (created if missing), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
        )
    return SERVICE_USER


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
            "xpack.security.enabled: false",
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "action.destructive_requires_name: true",
            "",
        ]
    )


def _chown_tree(path: Path, user: str) -> None:
    info = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, info.pw_uid, info.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), info.pw_uid, info.pw_gid)


def start(run_dir: Path, es_home: Path) -> processes.Managed:
    running = processes.find(run_dir, NAME)
    if running:
        return running
    port = contracts.port("elasticsearch")
    if port_open(port):
        raise StackError(
            f"Port {port} (elasticsearch) is taken by another program. "
            "Stop it, or choose another port with TAP_PORT_ELASTICSEARCH=..."
        )
    home = run_dir / "elasticsearch"
    config, data, logs, tmp = (home / d for d in ("config", "data", "logs", "tmp"))
    if not config.exists():
        shutil.copytree(es_home / "config", config)
    for folder in (data, logs, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "elasticsearch.yml").write_text(_config(port, data, logs))
    user = _service_user()
    if user:
        _chown_tree(home, user)
    env = {
        "ES_JAVA_HOME": str(java_home()),
        "ES_PATH_CONF": str(config),
        "ES_TMPDIR": str(tmp),
        "ES_JAVA_OPTS": HEAP,
    }
    return processes.start(
        run_dir, NAME, [str(es_home / "bin" / "elasticsearch")], env=env, cwd=home, user=user
    )


def healthy() -> bool:
    """The cluster answers and is at least yellow."""
    try:
        response = requests.get(
            f"{contracts.elasticsearch_url()}/_cluster/health",
            params={"wait_for_status": "yellow", "timeout": "2s"},
            auth=contracts.elasticsearch_auth(),
            timeout=5,
        )
        return response.ok and response.json().get("status") in ("yellow", "green")
    except requests.RequestException:
        return False
