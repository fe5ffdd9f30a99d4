"""One local SparkSession for the whole test session.

Import the fixture into a test module (``from spark_fixtures import spark``); pytest then shares
the single session-scoped instance across every module that does so.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

try:  # tap_spark lives in spark/; an editable install may not expose it
    import tap_spark  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(ROOT / "spark"))


@pytest.fixture(scope="session")
def spark():
    from tap_spark.session import local_session

    session = local_session("tap-tests")
    yield session
    session.stop()
