"""A single-node Elasticsearch from the integ-test-zip, run as a dedicated non-root user.

Elasticsearch refuses to run as root. When the stack is started by root, the node runs as the
system user `tap-es` (created if missing, no login, its own group). That user may not be able to
enter the checkout (a `mktemp -d` folder or root's home is 0700), so its files live where it can
reach them: the engine is copied once to /var/lib/tap-es/engines/ (root-owned, readable) and the
node's config, data, logs and tmp to /var/lib/tap-es/nodes/<stack>-<hash of the run folder>/
(owned by tap-es, 0700). The run folder's `elasticsearch` entry links there, and a purge of the
stack removes it. Run as another user, the node lives in the run folder itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import requests

from tapstack import contracts
from tapstack.native import processes
from tapstack.native.errors import StackError
from tapstack.native.kafka import port_open

NAME = "elasticsearch"
SERVICE_USER = "tap-es"
SERVICE_HOME = Path(os.environ.get("TAP_ES_SERVICE_HOME", "/var/lib/tap-es"))
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
        command = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            SERVICE_USER,
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or exc
            raise StackError(
                f"Elasticsearch refuses to run as root, and the user {SERVICE_USER} could not be "
                f"created ({str(detail).strip()}): run `{' '.join(command)}` yourself, or start "
                "TAP as a non-root user."
            ) from exc
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


def _chown_tree(path: Path, user: str) -> None:
    info = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, info.pw_uid, info.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), info.pw_uid, info.pw_gid, follow_symlinks=False)


def _node_key(run_dir: Path) -> str:
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    return f"{run_dir.name}-{digest}"


def node_home(run_dir: Path) -> Path:
    """Where the node's config, data and logs live (see the module docstring)."""
    if os.geteuid() != 0:
        return run_dir / NAME
    return SERVICE_HOME / "nodes" / _node_key(run_dir)


def _service_copy(es_home: Path) -> Path:
    """The engine where the service user can read it (copied once per version)."""
    target = SERVICE_HOME / "engines" / es_home.name
    if (target / ".complete").exists():
        return target
    SERVICE_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
    target.parent.mkdir(mode=0o755, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(es_home, partial, symlinks=True)
    os.chmod(partial, 0o755)
    partial.rename(target)
    (target / ".complete").touch()
    return target


def _link_into_run_dir(run_dir: Path, home: Path) -> None:
    link = run_dir / NAME
    if link.is_symlink() and link.resolve() == home:
        return
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.exists():
        shutil.rmtree(link)
    link.symlink_to(home, target_is_directory=True)


def purge(run_dir: Path) -> None:
    """Delete the node's files (the run folder itself is deleted by the stack)."""
    home = node_home(run_dir)
    if home != run_dir / NAME:
        shutil.rmtree(home, ignore_errors=True)


def _tool(es_home: Path, env: dict[str, str], user: str | None, name: str, *args, stdin=None):
    """Run one of the distribution's CLI tools (as the node's user, on the node's config)."""
    identity = {}
    if user:
        account = pwd.getpwnam(user)
        identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
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
    user = _service_user()
    home = node_home(run_dir)
    if user:
        try:
            es_home = _service_copy(es_home)
            home.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StackError(
                f"Elasticsearch runs as {SERVICE_USER}, whose files go to {SERVICE_HOME}, and "
                f"that failed ({exc}): free or fix that folder, or choose another with "
                "TAP_ES_SERVICE_HOME=..."
            ) from exc
        _link_into_run_dir(run_dir, home)
    config, data, logs, tmp = (home / d for d in ("config", "data", "logs", "tmp"))
    if not config.exists():
        shutil.copytree(es_home / "config", config)
    for folder in (data, logs, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    (config / "elasticsearch.yml").write_text(_config(port, data, logs))
    _file_realm_roles(config, roles)
    if user:
        _chown_tree(home, user)
        home.chmod(0o700)
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
