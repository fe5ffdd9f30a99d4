"""Helpers for the compose tests: paths, the settings, and the compose model as Compose sees it.

The model comes from tests/tools/compose-validate (compose-go, the loader of `docker compose`),
built once into .cache/compose-validate by its build.sh, so the tests read the project after
real interpolation, profile selection and validation, not a hand-rolled YAML reading.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
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
