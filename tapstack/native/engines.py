"""Fetch the engines from Maven Central with `mvn` into .cache/engines (outside git).

- Apache Kafka: the kafka_<scala> server jar and its runtime dependencies, plus a Log4j 2 backend.
- Spark's Kafka connector for the pinned PySpark (same Scala suffix), with its dependencies.
- Elasticsearch: the integ-test-zip distribution (no bundled JDK; runs on the machine's Java).

Versions come from contracts/settings.toml. Each fetch is skipped when its folder is complete.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tapstack.contracts import ROOT, version
from tapstack.native.errors import StackError

CACHE = ROOT / ".cache" / "engines"
LOG4J_VERSION = "2.24.3"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tap.native</groupId><artifactId>{name}</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>{deps}</dependencies>
</project>
"""
_DEP = (
    "<dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>"
)


@dataclass(frozen=True)
class Engines:
    kafka_libs: Path
    spark_kafka_jars: Path
    elasticsearch_home: Path


def kafka_dir() -> Path:
    return CACHE / f"kafka_{version('scala')}-{version('kafka')}"


def spark_kafka_dir() -> Path:
    return CACHE / f"spark-sql-kafka-0-10_{version('scala')}-{version('spark')}"


def elasticsearch_dir() -> Path:
    return CACHE / f"elasticsearch-{version('elasticsearch')}"


def installed() -> Engines | None:
    """The engines if all three are already fetched."""
    engines = Engines(kafka_dir(), spark_kafka_dir(), elasticsearch_dir())
    done = all((path / ".complete").exists() for path in engines.__dict__.values())
    return engines if done else None


def fetch(say=print) -> Engines:
    """Fetch whatever is missing; return the three engine folders."""
    _require_tools()
    scala = version("scala")
    if not (kafka_dir() / ".complete").exists():
        say(f"Fetching Apache Kafka {version('kafka')} from Maven Central (mvn)...")
        _copy_dependencies(
            kafka_dir(),
            [
                ("org.apache.kafka", f"kafka_{scala}", version("kafka")),
                ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
                (
                    "org.apache.logging.log4j",
                    "log4j-slf4j-impl",
                    LOG4J_VERSION,
                ),  # Kafka uses SLF4J 1.7
            ],
        )
    if not (spark_kafka_dir() / ".complete").exists():
        say(f"Fetching Spark's Kafka connector for Spark {version('spark')} (Scala {scala})...")
        _copy_dependencies(
            spark_kafka_dir(),
            [("org.apache.spark", f"spark-sql-kafka-0-10_{scala}", version("spark"))],
            # Only what PySpark does not ship already: two copies of Hadoop or Scala clash.
            only=[
                f"spark-sql-kafka-0-10_{scala}",
                f"spark-token-provider-kafka-0-10_{scala}",
                "kafka-clients",
                "commons-pool2",
            ],
        )
    if not (elasticsearch_dir() / ".complete").exists():
        say(f"Fetching Elasticsearch {version('elasticsearch')} (integ-test-zip)...")
        _fetch_elasticsearch(elasticsearch_dir())
    engines = installed()
    assert engines is not None
    return engines


def _require_tools() -> None:
    if shutil.which("mvn") is None:
        raise StackError(
            "Maven (mvn) is not installed: on Debian/Ubuntu run `apt-get install maven`."
        )


def _mvn(args: list[str], cwd: Path) -> None:
    result = subprocess.run(
        ["mvn", "-B", "-q", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        hint = ""
        if "resolve" in tail.lower() or "transfer" in tail.lower() or "unknownhost" in tail.lower():
            hint = "\nIs Maven Central reachable from this machine (proxy, offline mode)?"
        raise StackError(f"mvn {' '.join(args[:1])} failed:\n{tail}{hint}")


def _copy_dependencies(
    target: Path, artifacts: list[tuple[str, str, str]], only: list[str] | None = None
) -> None:
    """Resolve artifacts and their runtime dependencies into target/ with mvn."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    deps = "".join(_DEP.format(*artifact) for artifact in artifacts)
    with tempfile.TemporaryDirectory() as work:
        Path(work, "pom.xml").write_text(_POM.format(name=target.name, deps=deps))
        _mvn(
            [
                "dependency:copy-dependencies",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
                *([f"-DincludeArtifactIds={','.join(only)}"] if only else []),
            ],
            Path(work),
        )
    (target / ".complete").touch()


def _fetch_elasticsearch(target: Path) -> None:
    group = "org.elasticsearch.distribution.integ-test-zip"
    coordinate = f"{group}:elasticsearch:{version('elasticsearch')}:zip"
    shutil.rmtree(target, ignore_errors=True)
    with tempfile.TemporaryDirectory() as work:
        _mvn(
            ["dependency:copy", f"-Dartifact={coordinate}", f"-DoutputDirectory={work}"],
            Path(work),
        )
        archive = next(Path(work).glob("*.zip"))
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(work)
        unpacked = next(
            p for p in Path(work).iterdir() if p.is_dir() and p.name.startswith("elastic")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(unpacked), target)
    # zipfile drops the executable bits.
    for script in (target / "bin").iterdir():
        script.chmod(0o755)
    (target / ".complete").touch()
