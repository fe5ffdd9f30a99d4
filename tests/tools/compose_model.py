"""Helpers for the compose tests: paths, the settings, and the compose model as Compose sees it.

The model comes from tests/tools/compose-validate (compose-go, the loader of `docker compose`),
built once into .cache/compose-validate by its build.sh, so the tests read the project after
real interpolation, profile selection and validation, not a hand-rolled YAML reading. The real
`docker compose` CLI, built by tests/tools/compose-cli/build.sh into .cache/tools/compose-cli,
runs `config` on the same file as users' Docker will (no engine needed).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"
TAP_COMPOSE = COMPOSE_DIR / "tap-compose"
INIT_ENV = COMPOSE_DIR / "scripts" / "init-env"
VALIDATOR_DIR = ROOT / "tests" / "tools" / "compose-validate"
COMPOSE_CLI_BUILD = ROOT / "tests" / "tools" / "compose-cli" / "build.sh"

# The Kafka listener containers use (compose service name + INTERNAL listener port).
KAFKA_INTERNAL_BOOTSTRAP = "kafka:19092"
STAGES = ("ingest", "processing", "presentation")


@cache
def settings() -> dict[str, Any]:
    return tomllib.loads((ROOT / "contracts" / "settings.toml").read_text(encoding="utf-8"))


@cache
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value
    return values


def load_module(path: Path, name: str) -> ModuleType:
    """Import a file that is not on sys.path (tests/tools, compose/wordpress)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ValidatorUnavailable(RuntimeError):
    """Go is not installed and the validator was never built."""


@cache
def validator_binary() -> Path:
    """Build (or reuse) the compose-go validator; its build.sh is a no-op when up to date."""
    built = ROOT / ".cache" / "compose-validate" / "compose-validate"
    if shutil.which("go") is None:
        if built.exists():
            return built
        raise ValidatorUnavailable("go is not installed; run tests/tools/compose-validate/build.sh")
    result = subprocess.run(
        ["bash", str(VALIDATOR_DIR / "build.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building the compose validator failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def validate(env_file: Path, profile: str = "*") -> subprocess.CompletedProcess[str]:
    """Run the validator; the result carries the resolved model (JSON) on stdout."""
    return subprocess.run(
        [
            str(validator_binary()),
            "-f",
            str(COMPOSE_FILE),
            "-env-file",
            str(env_file),
            "-profile",
            profile,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@cache
def resolved_model(profile: str = "*") -> dict[str, Any]:
    """The project resolved with .env.example (all profiles by default)."""
    result = validate(ENV_EXAMPLE, profile)
    if result.returncode != 0:
        raise AssertionError(f"compose project invalid ({profile}):\n{result.stderr}")
    return json.loads(result.stdout)


@cache
def compose_cli_binary() -> Path:
    """Build (or reuse) the real docker compose CLI; its build.sh is a no-op once built and
    exits 2 when Go is missing and nothing was built."""
    result = subprocess.run(
        ["bash", str(COMPOSE_CLI_BUILD)], capture_output=True, text=True, timeout=1800
    )
    if result.returncode == 2:
        raise ValidatorUnavailable(result.stderr.strip())
    if result.returncode != 0:
        raise RuntimeError(f"building the docker compose CLI failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def compose_cli(
    env_file: Path,
    profiles: list[str] | tuple[str, ...],
    *args: str,
    compose_file: Path = COMPOSE_FILE,
) -> subprocess.CompletedProcess[str]:
    """`docker compose ... ARGS` as tap-compose calls it (project directory compose/, the
    file, an env file, profiles), cut off from this machine: no inherited environment (the
    CLI would let it override the env file), an empty DOCKER_CONFIG, and a DOCKER_HOST socket
    that does not exist, so nothing can reach a daemon (`config` needs none)."""
    with tempfile.TemporaryDirectory(prefix="tap-compose-cli-") as home:
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "DOCKER_CONFIG": home,
            "DOCKER_HOST": f"unix://{home}/no-daemon.sock",
        }
        argv = [str(compose_cli_binary()), "--project-directory", str(COMPOSE_DIR)]
        argv += ["-f", str(compose_file), "--env-file", str(env_file)]
        for profile in profiles:
            argv += ["--profile", profile]
        return subprocess.run([*argv, *args], env=env, capture_output=True, text=True, timeout=120)


def is_one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart", "no") == "no"


def profiles_of(service: dict[str, Any]) -> list[str]:
    return list(service.get("profiles") or [])


def mem_bytes(value: Any) -> int:
    """Compose memory values: the resolved model gives bytes; raw YAML gives '512m' etc."""
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    if text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    if text.endswith("b"):
        return mem_bytes(text[:-1])
    return int(text)


# ── what each pinned image ships ─────────────────────────────────────────────────────────
#
# Every program a container of the compose file is asked to run (health checks, entrypoints,
# commands, what tap-compose execs in a container), per image as resolved with .env.example,
# each with where the fact comes from: the image's Dockerfile at the commit the published tag
# was built from (repository, commit or tag, path:line) or its documentation. A version bump
# leaves the new image without an entry, so the facts are checked again before the test passes.
#
# Debian and Ubuntu base images hold every package marked Essential (Debian Policy 3.8,
# https://www.debian.org/doc/debian-policy/ch-binary.html#essential-packages): bash, dash
# (/bin/sh), coreutils (ls, install), grep, sed. Alpine images get /bin/sh (ash), wget and grep
# from BusyBox (alpinelinux/docker-alpine docs/about.adoc:3; alpinelinux/aports
# main/busybox/busyboxconfig: CONFIG_SH_IS_ASH=y, CONFIG_WGET=y, CONFIG_GREP=y).
_DEBIAN_ESSENTIAL = "Essential package of the Debian/Ubuntu base (Debian Policy 3.8)"
_ALPINE_BUSYBOX = "BusyBox applet of the Alpine base (aports main/busybox/busyboxconfig)"
_FLUENT_BIT = "fluent/fluent-bit v4.2.2 (ddfef360) dockerfiles/Dockerfile"
_MARIADB = "MariaDB/mariadb-docker cdffb7d2 (official-images GitCommit of 11.8.3) 11.8/Dockerfile"
_WORDPRESS = "docker-library/wordpress 62130367 (GitCommit of 6.9.4-php8.3-apache)"
_WP_CLI = "docker-library/wordpress b962e97b (GitCommit of cli-2.12.0-php8.3)"
_PHP = "docker-library/php 445bf414 8.3/trixie/apache/Dockerfile"
_KAFKA = (
    "apache/kafka docker/jvm/Dockerfile at trunk 1eb76443 (2024-10, the newest snapshot"
    " reachable here; the 4.1.1 tag was not in it)"
)
_KAFKA_UI = "kafbat/kafka-ui v1.5.0 (afc9c918) api/Dockerfile"
_ELASTIC = "elastic/dockerfiles v8.19.7 (f3f99114, the official-images GitCommit of 8.19.7)"
_SPARK = "apache/spark-docker b0876281 4.1.1/scala2.13-java17-ubuntu/Dockerfile"

IMAGE_BINARIES: dict[str, dict[str, str]] = {
    "mariadb:11.8.3": {
        "healthcheck.sh": f"{_MARIADB}:137 (COPY healthcheck.sh /usr/local/bin/healthcheck.sh);"
        " its tests are functions: connect() 11.8/healthcheck.sh:58,"
        " innodb_initialized() :113, chosen by `--*) test=${1#--}` :371-372",
    },
    "wordpress:6.9.4-php8.3-apache": {
        "/bin/sh": f"{_DEBIAN_ESSENTIAL}; {_WORDPRESS} latest/php8.3/apache/Dockerfile:7"
        f" FROM php:8.3-apache, {_PHP}:7 FROM debian:trixie-slim",
        "install": f"{_DEBIAN_ESSENTIAL} (coreutils)",
        "docker-entrypoint.sh": f"{_WORDPRESS} latest/php8.3/apache/Dockerfile:171"
        " (COPY docker-entrypoint.sh /usr/local/bin/), :175 ENTRYPOINT",
        "apache2-foreground": f"{_PHP}:290 (COPY apache2-foreground /usr/local/bin/);"
        f" {_WORDPRESS} latest/php8.3/apache/Dockerfile:176 CMD",
        "php": f"{_PHP}:239 (make install, prefix /usr/local), :276 (php --version on PATH)",
    },
    "wordpress:cli-2.12.0-php8.3": {
        "/bin/sh": f"{_ALPINE_BUSYBOX}; {_WP_CLI} cli/php8.3/alpine/Dockerfile:7"
        " FROM php:8.3-alpine",
        "wp": f"{_WP_CLI} cli/php8.3/alpine/Dockerfile:116,121 (/usr/local/bin/wp, chmod +x)",
    },
    "fluent/fluent-bit:4.2.2-debug": {
        "/fluent-bit/bin/fluent-bit": f"{_FLUENT_BIT}:103 (install bin/fluent-bit"
        " /fluent-bit/bin/), :271 (COPY --from=builder /fluent-bit into the debug stage)",
        "curl": f"{_FLUENT_BIT}:216 (debug stage FROM debian:trixie-slim), :260 (apt-get"
        " install ... curl); no wget or busybox in :237-268",
        "bash": f"{_FLUENT_BIT}:257",
        "/bin/sh": f"{_DEBIAN_ESSENTIAL}; {_FLUENT_BIT}:216 (debug stage FROM debian:trixie-slim)",
    },
    "apache/kafka:4.1.1": {
        "/bin/sh": f"{_ALPINE_BUSYBOX}; {_KAFKA}:44 FROM eclipse-temurin:21-jre-alpine",
        "bash": f"{_KAFKA}:65 (apk add ... procps bash); the Kafka scripts start with"
        " #!/bin/bash (bin/kafka-run-class.sh:1)",
        **{
            f"/opt/kafka/bin/{tool}": f"{_KAFKA}:69 (the Kafka distribution unpacked into"
            f" /opt/kafka); bin/{tool} in apache/kafka"
            for tool in (
                "kafka-broker-api-versions.sh",
                "kafka-get-offsets.sh",
                "kafka-consumer-groups.sh",
            )
        },
    },
    "kafbat/kafka-ui:v1.5.0": {
        "/bin/sh": f"{_ALPINE_BUSYBOX}; {_KAFKA_UI}:5 FROM azul/zulu-openjdk-alpine, which is"
        " FROM alpine (zulu-openjdk/zulu-openjdk 96ef9859"
        " alpine/24-jre-headless-latest/Dockerfile:1)",
        "wget": f"{_ALPINE_BUSYBOX}; the zulu alpine Dockerfile runs wget before installing"
        " anything (zulu-openjdk/zulu-openjdk alpine/24-jre-headless-latest/Dockerfile:7)",
        "grep": _ALPINE_BUSYBOX,
    },
    "docker.elastic.co/elasticsearch/elasticsearch:8.19.7": {
        "/bin/sh": f"{_DEBIAN_ESSENTIAL}; {_ELASTIC} elasticsearch/Dockerfile:68 FROM"
        " ubuntu:24.04, :71 (/bin/sh made bash)",
        "sh": f"{_DEBIAN_ESSENTIAL}; {_ELASTIC} elasticsearch/Dockerfile:71",
        "/bin/bash": f"{_DEBIAN_ESSENTIAL}; {_ELASTIC} elasticsearch/Dockerfile:99 SHELL=/bin/bash",
        "curl": f"{_ELASTIC} elasticsearch/Dockerfile:77 (apt-get install ... curl)",
        "sed": _DEBIAN_ESSENTIAL,
    },
    "docker.elastic.co/logstash/logstash:8.19.7": {
        "/bin/sh": f"{_DEBIAN_ESSENTIAL}; {_ELASTIC} logstash/Dockerfile:5 FROM ubuntu:24.04",
        "curl": f"{_ELASTIC} logstash/Dockerfile:13 (apt-get install -y curl)",
        "grep": _DEBIAN_ESSENTIAL,
    },
    "docker.elastic.co/kibana/kibana:8.19.7": {
        "/bin/sh": f"{_DEBIAN_ESSENTIAL}; {_ELASTIC} kibana/Dockerfile:71 FROM ubuntu:24.04",
        "curl": f"{_ELASTIC} kibana/Dockerfile:76 (apt-get install ... curl)",
        "grep": _DEBIAN_ESSENTIAL,
    },
    # Built here from spark/Dockerfile on apache/spark:4.1.1-scala2.13-java17-python3-ubuntu.
    "tap-spark:4.1.1": {
        "/bin/sh": f"{_DEBIAN_ESSENTIAL}; {_SPARK}:17 FROM eclipse-temurin:17-jammy (Ubuntu)",
        "ls": f"{_DEBIAN_ESSENTIAL} (coreutils)",
        "pgrep": f"{_SPARK}:26 (apt-get install ... procps)",
        "tap": "spark/Dockerfile: the venv /opt/tap-venv is on PATH and gets the repo installed",
        "python": "spark/Dockerfile: /opt/tap-venv/bin/python, the venv is first on PATH",
    },
}

# Shell words that are builtins of sh/bash, not programs the image must ship.
SHELL_BUILTINS = frozenset(
    {":", ".", "[", "cd", "echo", "exec", "exit", "export", "false", "printf", "read", "set",
     "shift", "test", "true", "unset"}
)  # fmt: skip
_SHELL_OPERATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")"})
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")


def shell_programs(script: str) -> list[str]:
    """The programs a POSIX shell command line runs: the first word of each simple command
    (after variable assignments; `exec X` runs X), builtins left out."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    programs: list[str] = []
    at_start = True
    for token in lexer:
        if token in _SHELL_OPERATORS:
            at_start = True
            continue
        if not at_start or _ASSIGNMENT.fullmatch(token):
            continue
        if token == "exec":
            continue  # the next word is the program
        at_start = False
        if token not in SHELL_BUILTINS:
            programs.append(token)
    return programs


def _command_programs(argv: list[str]) -> list[str]:
    """An exec-form command line: its program, and for `sh -c SCRIPT` the script's too."""
    if not argv:
        return []
    if len(argv) >= 3 and argv[1] == "-c" and Path(argv[0]).name in {"sh", "bash"}:
        return [argv[0], *shell_programs(argv[2])]
    return [argv[0]]


def healthcheck_programs(service: dict[str, Any]) -> list[str]:
    test = (service.get("healthcheck") or {}).get("test") or []
    if not test or test[0] == "NONE":
        return []
    if test[0] == "CMD-SHELL":  # run by the image's /bin/sh -c
        return ["/bin/sh", *shell_programs(" ".join(test[1:]))]
    return _command_programs(test[1:] if test[0] == "CMD" else test)


def service_programs(service: dict[str, Any]) -> dict[str, list[str]]:
    """What a service runs, by where it is set. A command is a program of its own: the
    images' entrypoints run it (tini --, docker-entrypoint.sh's exec "$@")."""
    return {
        "healthcheck": healthcheck_programs(service),
        "entrypoint": _command_programs(service.get("entrypoint") or []),
        "command": _command_programs(service.get("command") or []),
    }


def secret_files(service: dict[str, Any]) -> dict[str, str]:
    """The files compose puts in /run/secrets of a service -> the secret each one holds. The
    resolved model writes a short-syntax secret's target as /run/secrets/NAME and keeps a
    relative long-syntax target as given (both land in /run/secrets)."""
    files = {}
    for secret in service.get("secrets") or []:
        target = secret.get("target") or secret["source"]
        files[target.removeprefix("/run/secrets/")] = secret["source"]
    return files


def missing_programs(service: dict[str, Any], extra: list[str] = ()) -> list[str]:
    """Programs the service runs (and `extra` ones run in its container) that its image is
    not known to ship; an image without an entry in IMAGE_BINARIES ships nothing known."""
    shipped = IMAGE_BINARIES.get(service["image"], {})
    missing = []
    for where, programs in [*service_programs(service).items(), ("exec", list(extra))]:
        missing += [f"{where}: {p}" for p in programs if p not in shipped]
    return missing
