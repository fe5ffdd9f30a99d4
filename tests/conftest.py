"""Session fixtures: the real engines start once per test session and are shared.

The test stack runs in .run/<TAP_TEST_STACK, default "test"> on its own ports (base
TAP_TEST_PORT_BASE, default 19000: Kafka base+92, controller base+93, Elasticsearch base+200), so a
demo stack, or a second test session, can run beside it.
Fixtures:
  engines   Kafka + Elasticsearch up, topics created, index templates installed (a Stack)
  es        an Elasticsearch client on the test stack
  model_dir a trained behaviour model (trained once per session if .run/model has none)
  pipeline  tailer, process_orders, behaviour and loader running on the engines (a Pipeline)
  spark     one local SparkSession in the test process, for batch tests of the Spark code
  clock     the moment the simulated history ends: TAP_TEST_CLOCK (tests/support/clock.py)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Before anything reads the contracts: the test stack's own ports.
_BASE = int(os.environ.get("TAP_TEST_PORT_BASE", "19000"))
STACK_NAME = os.environ.get("TAP_TEST_STACK", "test")
os.environ.update(
    {
        "TAP_PORT_KAFKA": str(_BASE + 92),
        "TAP_PORT_KAFKA_CONTROLLER": str(_BASE + 93),
        "TAP_PORT_ELASTICSEARCH": str(_BASE + 200),
    }
)
os.environ.pop("TAP_KAFKA_BOOTSTRAP", None)
os.environ.pop("TAP_ES_URL", None)
_OWN = (
    "TAP_ES_USER",
    "TAP_ES_PASSWORD",
    "TAP_CUSTOMER_KEY",
    "TAP_KAFKA_USER",
    "TAP_KAFKA_PASSWORD",
)
for _variable in _OWN:
    os.environ.pop(_variable, None)
# The test stack's secrets (its users' passwords): the tests' clients act as its admin.
os.environ["TAP_SECRETS_DIR"] = str(
    Path(__file__).resolve().parents[1] / ".run" / STACK_NAME / "secrets"
)

import pytest  # noqa: E402

from tapstack.elastic.client import connect  # noqa: E402
from tapstack.native.stack import RUN_ROOT, Stack  # noqa: E402
from tests.support import clock as test_clock  # noqa: E402
from tests.support.pipeline import Pipeline  # noqa: E402

_NEEDS = {"engines": "engines", "es": "engines", "pipeline": "engines", "spark": "spark"}


def pytest_collection_modifyitems(config, items):
    """Mark each test by the fixtures it uses, so `-m "not engines and not spark"` (make
    test-fast) leaves out exactly the tests that start a real engine."""
    for item in items:
        for fixture, mark in _NEEDS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(mark)


def pytest_report_header(config):
    return f"test stack clock (TAP_TEST_CLOCK): {test_clock.from_environment().isoformat()}"


@pytest.fixture(scope="session")
def clock():
    return test_clock.from_environment()


@pytest.fixture(scope="session")
def engines():
    stack = Stack(STACK_NAME)
    stack.stop(say=lambda _: None, purge=True)
    stack.start_engines(say=lambda _: None)
    yield stack
    stack.stop(say=lambda _: None)


@pytest.fixture(scope="session")
def es(engines):
    client = connect()
    yield client
    client.close()


def _metadata(model_dir: Path) -> dict:
    try:
        return json.loads((model_dir / "tap_model.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


@pytest.fixture(scope="session")
def model_dir():
    from tap_spark.model import train

    path = RUN_ROOT / "model"
    if "drift_reference" not in _metadata(path):  # none yet, or from before drift was measured
        train(RUN_ROOT.parent / "training_data" / "training_data.csv", path)
    os.environ["TAP_MODEL_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def pipeline(engines, model_dir, clock):
    engines.start_pipeline(say=lambda _: None)
    engines.wait_pipeline_ready()
    yield Pipeline(engines, now=clock)


@pytest.fixture(scope="session")
def spark():
    from tap_spark.session import local_session

    session = local_session("tap-tests")
    yield session
    session.stop()
