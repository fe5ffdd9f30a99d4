"""The compose stack, checked without Docker.

* The compose file is loaded by compose-go (the loader `docker compose` uses), for all profiles
  and for each stage alone, with .env.example and with a freshly generated .env.
* The real `docker compose` CLI (built from its Go module) runs `config` for every profile and
  for every invocation tap-compose makes, and refuses files with known mistakes.
* Every file compose mounts or builds from exists.
* Topics, group, indices, ports and versions agree with contracts/settings.toml, across the
  compose file, .env.example, the Spark Dockerfile, pyproject.toml and the scripts.
* Health checks, dependency conditions, 127.0.0.1 bindings and the memory budget hold.
* The scripts (init-env, es-setup.sh, tap-compose) behave, driven against stand-ins for
  curl's server and for the docker CLI.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tapstack import contracts
from tapstack.cli import app
from tapstack.elastic import security

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))

import compose_model as cm  # noqa: E402

SETTINGS = cm.settings()
DOCKERFILE = cm.ROOT / "spark" / "Dockerfile"
# The start of a command that runs through compose/scripts/secrets-env.
SECRETS_ENV = ["/bin/sh", "/tap/secrets-env"]
SECRETS_ENV_SCRIPT = cm.COMPOSE_DIR / "scripts" / "secrets-env"
KAFKA_START = cm.COMPOSE_DIR / "scripts" / "kafka-start"


@pytest.fixture(scope="module")
def model() -> dict:
    try:
        return cm.resolved_model("*")
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def services(model) -> dict:
    return model["services"]


def run_init_env(folder: Path) -> subprocess.CompletedProcess[str]:
    """init-env writing FOLDER/.env and FOLDER/secrets/ (the arguments tap-compose leaves to
    their defaults, compose/.env and compose/secrets/)."""
    return subprocess.run(
        [
            "bash",
            str(cm.INIT_ENV),
            str(cm.ENV_EXAMPLE),
            str(folder / ".env"),
            str(folder / "secrets"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def declared_secrets() -> set[str]:
    return set(cm.raw_compose()["secrets"])


@pytest.fixture()
def generated_env(tmp_path) -> Path:
    run_init_env(tmp_path)
    return tmp_path / ".env"


def _stage_services(kind: str, stage: str) -> list[str]:
    script = cm.TAP_COMPOSE.read_text(encoding="utf-8")
    match = re.search(rf'^\s+{kind}:{stage}\) echo "([^"]+)" ;;$', script, flags=re.MULTILINE)
    assert match, f"{kind}:{stage} missing in tap-compose"
    return match.group(1).split()


# ── a real Compose implementation loads the project ──────────────────────────────────────


@pytest.mark.parametrize("profile", ["*", *cm.STAGES, "tools"])
def test_project_is_valid_for_every_stage(profile):
    """Each stage must stand alone: a dependency in a disabled profile is an error."""
    try:
        result = cm.validate(cm.ENV_EXAMPLE, profile)
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["services"]


def test_project_is_valid_with_a_generated_env(generated_env):
    try:
        result = cm.validate(generated_env)
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    holders = {name for name, svc in services.items() if "TAP_CUSTOMER_KEY" in cm.secret_files(svc)}
    assert holders == {"process-orders"}, "the customer key reaches only the stage that needs it"
    assert not any(
        "TAP_CUSTOMER_KEY" in (svc.get("environment") or {}) for svc in services.values()
    )


def test_the_validator_rejects_a_broken_project(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n  a:\n    image: x:1\n    mem_limit: 12q\n"
        "    depends_on:\n      b:\n        condition: service_healthy\n",
        encoding="utf-8",
    )
    env = tmp_path / ".env"
    env.write_text("", encoding="utf-8")
    try:
        binary = cm.validator_binary()
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    result = subprocess.run(
        [str(binary), "-f", str(broken), "-env-file", str(env)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "invalid compose project" in result.stderr


def test_missing_settings_are_refused(tmp_path):
    """Settings init-env makes are `${VAR:?...}`: without compose/.env the project does not load."""
    env = tmp_path / ".env"
    env.write_text(
        "\n".join(
            line
            for line in cm.ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
            if not line.startswith("KAFKA_CLUSTER_ID=")
        ),
        encoding="utf-8",
    )
    try:
        result = cm.validate(env)
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))
    assert result.returncode == 1
    assert "KAFKA_CLUSTER_ID" in result.stderr


# ── the real docker compose CLI ──────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> Path:
    """compose/.env as tap-compose makes it on first use: init-env from .env.example."""
    folder = tmp_path_factory.mktemp("cli")
    run_init_env(folder)
    return folder / ".env"


def _cli(env_file: Path, profiles, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    try:
        return cm.compose_cli(env_file, profiles, *args, **kwargs)
    except cm.ValidatorUnavailable as exc:
        pytest.skip(str(exc))


def _tap_compose_invocations() -> list[tuple[list[str], list[str]]]:
    """(profiles, services) of every compose command tap-compose runs on a project."""
    script = cm.TAP_COMPOSE.read_text(encoding="utf-8")
    every = re.search(r"^ALL_PROFILES=\(([^)]*)\)$", script, flags=re.MULTILINE)
    assert every, "ALL_PROFILES moved in tap-compose: update this test"
    all_profiles = every.group(1).replace("--profile", " ").split()
    invocations = [(all_profiles, [])]  # down, status, logs, config
    for stage in cm.STAGES:
        invocations.append(([stage], _stage_services("up", stage)))  # up STAGE
        invocations.append((all_profiles, _stage_services("stop", stage)))  # stop STAGE
    for profile, service in re.findall(
        r"compose --profile (\w+) (?:run --rm|build) ([\w-]+)", script
    ):  # kibana-import, the shopper bot, build
        invocations.append(([profile], [service]))
    unique = [inv for i, inv in enumerate(invocations) if inv not in invocations[:i]]
    assert len(unique) >= 10, unique
    return unique


@pytest.mark.parametrize("profiles", [[p] for p in (*cm.STAGES, "tools", "*")], ids=",".join)
def test_docker_compose_config_accepts_every_profile(cli_env, profiles):
    result = _cli(cli_env, profiles, "config", "--quiet")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "profiles, services",
    _tap_compose_invocations(),
    ids=lambda v: ",".join(v) if v else "all",
)
def test_docker_compose_config_accepts_what_tap_compose_runs(cli_env, profiles, services):
    result = _cli(cli_env, profiles, "config", "--quiet", *services)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("stage", cm.STAGES)
def test_each_stage_brings_its_services_with_its_profile_alone(cli_env, stage):
    """Naming a service on `up` would start it even outside the profile: the profile itself
    must hold every service the stage waits for."""
    result = _cli(cli_env, [stage], "config", "--services")
    assert result.returncode == 0, result.stderr
    assert set(_stage_services("up", stage)) <= set(result.stdout.split())


def test_docker_compose_and_compose_go_resolve_the_same_project(cli_env):
    """The tests read compose-go's model: it must be the one the compose CLI runs."""
    result = _cli(cli_env, ["*"], "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout.replace("$$", "$"))["services"]  # config escapes $ as $$
    validated = cm.validate(cli_env, "*")
    assert validated.returncode == 0, validated.stderr
    ours = json.loads(validated.stdout)["services"]
    assert set(cli) == set(ours)
    for name in ours:
        for key in ("image", "profiles", "command", "entrypoint", "user", "healthcheck"):
            assert cli[name].get(key) == ours[name].get(key), f"{name}.{key}"
        assert set(cli[name].get("depends_on") or {}) == set(ours[name].get("depends_on") or {})


BROKEN_FILES = {
    "undefined dependency": (
        "services:\n  a:\n    image: x:1\n    depends_on:\n      b:\n"
        "        condition: service_healthy\n",
        'depends on undefined service "b"',
    ),
    "unknown key": ("services:\n  a:\n    image: x:1\n    mem_limt: 12m\n", "mem_limt"),
    "dependency in a disabled profile": (
        "services:\n  a:\n    image: x:1\n    profiles: [ingest]\n    depends_on: [b]\n"
        "  b:\n    image: x:1\n    profiles: [presentation]\n",
        'depends on undefined service "b"',
    ),
    "missing secret": (
        "services:\n  a:\n    image: x:1\n    environment:\n"
        "      P: ${TAP_NOT_SET:?run compose/scripts/init-env first}\n",
        "TAP_NOT_SET",
    ),
}


@pytest.mark.parametrize("mistake", BROKEN_FILES)
def test_docker_compose_config_refuses_a_file_with_a_known_mistake(tmp_path, cli_env, mistake):
    text, message = BROKEN_FILES[mistake]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text, encoding="utf-8")
    result = _cli(cli_env, ["ingest"], "config", "--quiet", compose_file=broken)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_docker_compose_config_refuses_the_stack_without_its_topic_job(tmp_path, cli_env):
    """The real file with one service removed: Fluent Bit and the Spark jobs wait on it."""
    project = cm.raw_compose()
    del project["services"]["topics"]
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(project, sort_keys=False), encoding="utf-8")
    result = _cli(cli_env, ["ingest"], "config", "--quiet", compose_file=broken)
    assert result.returncode != 0
    assert 'depends on undefined service "topics"' in result.stderr, result.stderr


# ── files compose mounts or builds from ──────────────────────────────────────────────────


def test_every_mounted_or_built_file_exists(services):
    missing = []
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            if volume["type"] == "bind" and not Path(volume["source"]).exists():
                missing.append(f"{name}: {volume['source']}")
        build = service.get("build")
        if build:
            context = Path(build["context"])
            if not (context / build["dockerfile"]).exists():
                missing.append(f"{name}: {context / build['dockerfile']}")
    assert not missing, f"compose refers to files that do not exist: {missing}"


def test_scripts_run_by_containers_exist_and_are_mounted(services):
    # The shells (/bin/sh of the wp-cli image, /bin/bash of the Elasticsearch image) are held
    # against the images in test_health_checks_and_commands_run_programs_the_image_ships.
    setup = services["wp-setup"]
    assert setup["entrypoint"] == [
        "/bin/sh",
        "/tap/secrets-env",
        "/bin/sh",
        "/tap/wordpress/setup.sh",
    ]
    mounts = {v["target"]: Path(v["source"]) for v in setup["volumes"] if v["type"] == "bind"}
    assert (mounts["/tap/wordpress"] / "setup.sh").is_file()
    assert (mounts["/tap/wordpress"] / "seed-catalogue.php").is_file()
    assert (mounts["/tap/wordpress"] / "catalogue.json").is_file()
    # Elasticsearch users and roles: the native stack's code (tapstack.elastic.security), run
    # from the TAP image, with every password variable the contract names.
    users = services["es-users"]
    assert users["image"] == services["process-orders"]["image"]
    assert users["command"] == [*SECRETS_ENV, "tap", "es", "security"]
    assert set(cm.secret_files(users)) == set(security.password_variables().values())


# ── names, ports and versions = contracts/settings.toml ──────────────────────────────────


def test_env_example_ports_and_versions_equal_the_settings():
    env = cm.read_env_file(cm.ENV_EXAMPLE)
    ports = {
        k.removeprefix("TAP_PORT_").lower(): int(v)
        for k, v in env.items()
        if k.startswith("TAP_PORT_")
    }
    assert ports == SETTINGS["ports"]
    versions = {
        k.removeprefix("TAP_VERSION_").lower(): v
        for k, v in env.items()
        if k.startswith("TAP_VERSION_")
    }
    assert versions == SETTINGS["versions"]


def test_published_ports_are_the_settings_ports_on_localhost(services):
    expected = {
        "kafka": SETTINGS["ports"]["kafka"],
        "elasticsearch": SETTINGS["ports"]["elasticsearch"],
        "kibana": SETTINGS["ports"]["kibana"],
        "kafka-ui": SETTINGS["ports"]["kafka_ui"],
        "wordpress": SETTINGS["ports"]["wordpress"],
    }
    # The container side is the port each server listens on in its image.
    listening = {
        "kafka": 9092,  # the HOST listener of KAFKA_LISTENERS in the compose file
        "elasticsearch": 9200,  # elastic/dockerfiles v8.19.7 elasticsearch/Dockerfile:124
        "kibana": 5601,  # elastic/dockerfiles v8.19.7 kibana/Dockerfile:72
        "kafka-ui": 8080,  # kafbat/kafka-ui v1.5.0 api/Dockerfile:25
        "wordpress": 80,  # docker-library/php 445bf414 8.3/trixie/apache/Dockerfile:293
    }
    published, targets = {}, {}
    for name, service in services.items():
        for port in service.get("ports") or []:
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes beyond 127.0.0.1"
            published[name] = int(port["published"])
            targets[name] = int(port["target"])
    assert published == expected
    assert targets == listening


def test_images_are_official_and_pinned_to_the_settings_versions(services):
    versions = SETTINGS["versions"]
    elastic = versions["elasticsearch"]
    # Where each image is published: apache/kafka on Docker Hub (apache/kafka docker/README.md:33,
    # KIP-975); Elastic's own registry (https://www.elastic.co/guide/en/elasticsearch/reference/
    # 8.19/docker.html, .../logstash/8.19/docker.html, .../kibana/8.19/docker.html).
    expected = {
        "kafka": f"apache/kafka:{versions['kafka']}",
        "elasticsearch": f"docker.elastic.co/elasticsearch/elasticsearch:{elastic}",
        "logstash": f"docker.elastic.co/logstash/logstash:{elastic}",
        "kibana": f"docker.elastic.co/kibana/kibana:{elastic}",
    }
    for name, image in expected.items():
        assert services[name]["image"] == image
    # mariadb and wordpress tags as listed in docker-library/official-images library/mariadb
    # and library/wordpress; fluent/fluent-bit:<version>-debug from fluent/fluent-bit v4.2.2
    # .github/workflows/call-build-images.yaml:223; kafbat/kafka-ui:<version> pushed to
    # docker.io (kafbat/kafka-ui v1.5.0 .github/workflows/docker_publish.yml:22,85,91).
    patterns = {
        "db": r"mariadb:\d+\.\d+\.\d+",
        "wordpress": r"wordpress:\d+\.\d+(\.\d+)?-php\d+\.\d+-apache",
        "wp-setup": r"wordpress:cli-\d+\.\d+\.\d+-php\d+\.\d+",
        "fluent-bit": r"fluent/fluent-bit:\d+\.\d+\.\d+(-debug)?",
        "kafka-ui": r"kafbat/kafka-ui:v\d+\.\d+\.\d+",
    }
    for name, pattern in patterns.items():
        assert re.fullmatch(pattern, services[name]["image"]), services[name]["image"]
    for name, service in services.items():
        assert not service["image"].endswith(":latest"), name
        if "build" in service:
            assert service["image"] == f"tap-spark:{versions['spark']}", name


def test_every_container_uses_the_internal_kafka_listener(services):
    kafka_env = services["kafka"]["environment"]
    assert f"INTERNAL://{cm.KAFKA_INTERNAL_BOOTSTRAP}" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    for name, service in services.items():
        env = service.get("environment") or {}
        if "TAP_KAFKA_BOOTSTRAP" in env:
            assert env["TAP_KAFKA_BOOTSTRAP"] == cm.KAFKA_INTERNAL_BOOTSTRAP, name
    assert services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"] == (
        cm.KAFKA_INTERNAL_BOOTSTRAP
    )


def test_kafka_is_a_single_kraft_node_as_specified(services):
    # The apache/kafka image turns KAFKA_FOO_BAR into the server property foo.bar
    # (core/src/main/scala/kafka/docker/KafkaDockerWrapper.scala:175-179) and requires
    # CLUSTER_ID in KRaft mode (docker/resources/common-scripts/configure:42); its data
    # directory is /var/lib/kafka/data, a VOLUME owned by appuser (docker/jvm/Dockerfile:73,
    # :77, :93) - all at apache/kafka trunk 1eb76443, see compose_model.IMAGE_BINARIES.
    kafka = services["kafka"]
    env = kafka["environment"]
    ports = SETTINGS["ports"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    # The controller listener answers on the container's loopback only (it is plain).
    assert listeners == {
        "INTERNAL": ":19092",
        "HOST": ":9092",
        "CONTROLLER": f"localhost:{ports['kafka_controller']}",
    }
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised == {"INTERNAL": "kafka:19092", "HOST": f"localhost:{ports['kafka']}"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"1@localhost:{ports['kafka_controller']}"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_MIN_INSYNC_REPLICAS",
    ):
        assert env[key] == "1", key
    assert int(env["KAFKA_NUM_PARTITIONS"]) == SETTINGS["topics"]["partitions"]
    assert env["CLUSTER_ID"]
    data = [v for v in kafka["volumes"] if v["target"] == env["KAFKA_LOG_DIRS"]]
    assert data and data[0]["type"] == "volume", "Kafka's log dir must be a named volume"
    [published] = kafka["ports"]
    assert (published["host_ip"], int(published["published"]), published["target"]) == (
        "127.0.0.1",
        ports["kafka"],
        9092,
    )


def test_setup_containers_carry_the_settings_names(services):
    # es-users reads index names from the settings itself (tapstack.elastic.security).
    shop = SETTINGS["shop"]
    wp = services["wp-setup"]["environment"]
    assert wp["TAP_SHOP_NAME"] == shop["name"]
    assert wp["TAP_SHOP_CURRENCY"] == shop["currency"]
    assert wp["TAP_SHOP_TIMEZONE"] == SETTINGS["enrichment"]["shop_timezone"]
    assert wp["TAP_ORDER_LOG_PATH"] == f"/var/log/tap/{shop['log_name']}"
    assert wp["TAP_SHOP_URL"] == f"http://localhost:{SETTINGS['ports']['wordpress']}"


def test_scripts_carry_the_settings_names():
    script = cm.TAP_COMPOSE.read_text(encoding="utf-8")
    names = dict(re.findall(r"^([A-Z_]+)=(\S+)$", script, flags=re.MULTILINE))
    assert names["TOPIC_PURCHASE"] == SETTINGS["topics"]["purchase"]
    assert names["TOPIC_DASHBOARD"] == SETTINGS["topics"]["dashboard"]
    assert names["TOPIC_DEAD_LETTER"] == SETTINGS["topics"]["dead_letter"]
    assert names["LOADER_GROUP"] == SETTINGS["consumer_groups"]["loader"]
    assert names["INDEX_ORDERS"] == SETTINGS["indices"]["orders"]
    assert names["INDEX_LINES"] == SETTINGS["indices"]["lines"]
    assert names["KAFKA_INTERNAL"] == "localhost:19092"


# ── the Spark image and the TAP containers ───────────────────────────────────────────────


def _dockerfile_args() -> dict[str, str]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))


def test_spark_image_matches_the_settings_and_pyproject(services):
    versions = SETTINGS["versions"]
    args = _dockerfile_args()
    assert args["SPARK_VERSION"] == versions["spark"]
    assert args["SCALA_VERSION"] == versions["scala"]
    text = DOCKERFILE.read_text(encoding="utf-8")
    base = re.search(r"^FROM (apache/spark:\S+)$", text, flags=re.MULTILINE).group(1)
    resolved = (
        base.replace("${SPARK_VERSION}", args["SPARK_VERSION"])
        .replace("${SCALA_VERSION}", args["SCALA_VERSION"])
        .replace("${JAVA_VERSION}", args["JAVA_VERSION"])
    )
    assert (
        resolved
        == f"apache/spark:{versions['spark']}-scala{versions['scala']}-java17-python3-ubuntu"
    )
    # The connector: spark-sql-kafka-0-10_<scala>:<spark>, resolved with the same build args.
    assert "<artifactId>spark-sql-kafka-0-10_${scala.binary.version}</artifactId>" in text
    assert "<version>${spark.version}</version>" in text
    assert '-Dspark.version="${SPARK_VERSION}" -Dscala.binary.version="${SCALA_VERSION}"' in text
    assert "spark-sql-kafka-0-10_${SCALA_VERSION}-${SPARK_VERSION}.jar" in text
    # compose passes the settings' versions as build args
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["args"] == {
                "SPARK_VERSION": versions["spark"],
                "SCALA_VERSION": versions["scala"],
            }, name
    pyproject = (cm.ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"pyspark=={versions["spark"]}"' in pyproject


def test_spark_image_bakes_the_connector_and_installs_the_repo():
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "dependency:copy-dependencies" in text
    assert re.search(r"^ENV TAP_HOME=/opt/tap \\$", text, flags=re.MULTILINE)
    assert "TAP_SPARK_JARS=/opt/tap-jars" in text
    assert "spark.jars.ivy /opt/tap-ivy" in text  # writable Ivy cache for the image user
    assert "chown -R spark:spark /opt/tap-ivy /checkpoints /models" in text
    assert "pip install --no-cache-dir --no-deps /opt/tap" in text
    assert "import pyspark, tapstack, tap_spark" in text
    users = re.findall(r"^USER (\S+)$", text, flags=re.MULTILINE)
    # The base image creates the system user spark, uid 185 (apache/spark-docker b0876281
    # 4.1.1/scala2.13-java17-ubuntu/Dockerfile:19-22), and installs tini as /usr/bin/tini (:26),
    # which spark/Dockerfile's ENTRYPOINT runs.
    assert users[-1] == "spark", "the image runs as the Spark image's unprivileged user"
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in text
    assert "--packages" not in text  # nothing resolved at container start


def test_dockerignore_keeps_secrets_out_and_the_package_in():
    ignore = (cm.ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert "compose" in ignore and "**/.env" in ignore and ".git" in ignore
    for needed in (
        "pyproject.toml",
        "README.md",
        "tapstack",
        "spark",
        "contracts",
        "training_data",
        "kibana",
    ):
        assert needed not in ignore, needed


def test_gitignore_keeps_the_generated_env_out():
    ignored = (cm.ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "compose/.env" in ignored
    assert "compose/secrets/" in ignored, "the secret files init-env writes"


def test_spark_jobs_get_the_documented_environment(services):
    jars = re.search(r"TAP_SPARK_JARS=(\S+)", DOCKERFILE.read_text(encoding="utf-8")).group(1)
    jobs = {
        "process-orders": ["python", "-m", "tap_spark.process_orders"],
        "behaviour": ["python", "-m", "tap_spark.behaviour"],
    }
    for name, command in jobs.items():
        service = services[name]
        assert service["command"] == [*SECRETS_ENV, *command]
        env = service["environment"]
        assert env["TAP_KAFKA_BOOTSTRAP"] == cm.KAFKA_INTERNAL_BOOTSTRAP
        assert env["TAP_SPARK_JARS"] == jars
        assert env["TAP_MODEL_DIR"] == "/models/current"
        files = cm.secret_files(service)
        # the only stage that hashes with the key; never in the environment
        assert ("TAP_CUSTOMER_KEY" in files) == (name == "process-orders")
        assert "TAP_CUSTOMER_KEY" not in env
        volumes = {v["target"]: v for v in service["volumes"]}
        checkpoint_root = "/" + env["TAP_CHECKPOINT_DIR"].strip("/").split("/")[0]
        assert volumes[checkpoint_root]["type"] == "volume"
        assert volumes["/models"]["source"] == "models"
        # tap_spark/session.py reads TAP_SPARK_DRIVER_MEMORY; the JVM and Python need headroom.
        driver = cm.mem_bytes(env["TAP_SPARK_DRIVER_MEMORY"])
        assert driver + 384 * 1024**2 <= cm.mem_bytes(service["mem_limit"])
        # Spark's own environment variables (https://spark.apache.org/docs/4.1.1/
        # configuration.html#environment-variables): SPARK_LOCAL_DIRS, SPARK_LOCAL_IP.
        assert env["SPARK_LOCAL_DIRS"]
        # The jobs run without the Spark UI: health = process alive + query started.
        health = " ".join(service["healthcheck"]["test"])
        assert "pgrep -f 'python -m tap_spark\\.'" in health
        assert '"$TAP_CHECKPOINT_DIR"/*/metadata' in health
    assert services["behaviour"]["depends_on"]["model-train"]["condition"] == (
        "service_completed_successfully"
    )


def test_the_drift_service_runs_the_native_stacks_command(services, monkeypatch, tmp_path):
    """compose's model-drift and the native stack's model_drift process measure the same
    window as often, as the same least-privilege user (contracts/settings.toml [model])."""
    from tapstack.native.stack import Stack

    monkeypatch.setenv("TAP_SECRETS_DIR", str(tmp_path))
    native = Stack("compose-check").command("model_drift")
    service = services["model-drift"]
    assert native[:3] == [native[0], "-m", "tapstack"]
    composed = service["command"]
    assert composed[: len(SECRETS_ENV) + 1] == [*SECRETS_ENV, "tap"]
    model_at = native.index("--model") + 1
    assert composed[len(SECRETS_ENV) + 1 :] == [
        *native[3:model_at],
        "/models/current",
        *native[model_at + 1 :],
    ]
    model = contracts.settings()["model"]
    assert composed[-5:] == [
        "--since",
        model["drift_window"],
        "--every",
        model["drift_every"],
        "--record",
    ]
    assert service["environment"]["TAP_ES_USER"] == contracts.es_user("model")
    assert cm.secret_files(service) == {"TAP_ES_PASSWORD": "TAP_MODEL_PASSWORD"}
    assert {v["target"]: v["source"] for v in service["volumes"] if v["type"] == "volume"} == {
        "/models": "models"
    }


def test_tap_commands_of_the_setup_containers(services):
    assert services["topics"]["command"] == [*SECRETS_ENV, "tap", "topics", "create"]
    assert services["kafka-users"]["command"] == [*SECRETS_ENV, "tap", "kafka", "security"]
    assert services["model-train"]["command"] == [
        "tap",
        "model",
        "train",
        "--out",
        "/models/current",
    ]
    assert {v["target"]: v["source"] for v in services["model-train"]["volumes"]}[
        "/models"
    ] == "models"
    assert services["es-templates"]["command"] == [*SECRETS_ENV, "tap", "es", "setup"]
    templates_env = services["es-templates"]["environment"]
    assert templates_env["TAP_ES_URL"] == "http://elasticsearch:9200"
    assert templates_env["TAP_ES_USER"] == contracts.es_user("setup")
    assert cm.secret_files(services["es-templates"]) == {"TAP_ES_PASSWORD": "TAP_SETUP_PASSWORD"}
    assert services["kibana-import"]["command"] == [
        *SECRETS_ENV,
        "tap",
        "kibana",
        "import",
        "--url",
        "http://kibana:5601",
    ]
    assert services["kibana-import"]["depends_on"]["kibana"]["condition"] == "service_healthy"


# ── health, dependencies, stages, memory ─────────────────────────────────────────────────


def test_every_long_running_service_has_a_health_check(services):
    for name, service in services.items():
        if not cm.is_one_shot(service):
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
            assert service["restart"] == "unless-stopped", name


def test_dependencies_wait_on_health_or_completion(services):
    for name, service in services.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            condition = dependency["condition"]
            if cm.is_one_shot(services[target]):
                assert condition == "service_completed_successfully", f"{name} -> {target}"
            else:
                assert condition == "service_healthy", f"{name} -> {target}"


# ── every program a container runs is one its image ships ────────────────────────────────


def _tap_compose_execs() -> dict[str, list[str]]:
    """Programs tap-compose runs with `docker compose exec` in a service's container."""
    script = cm.TAP_COMPOSE.read_text(encoding="utf-8")
    kafka_bin = re.search(r'exec -T -e KAFKA_HEAP_OPTS=\S+ kafka "(/opt/kafka/bin/)\$1"', script)
    assert kafka_bin, "kafka_tool's exec line changed: update this test"
    tools = sorted(set(re.findall(r"\bkafka_tool (\S+)", script)))
    es = re.search(r"exec -T elasticsearch (sh) -c \\\n\s*'([^']*)'", script)
    assert tools and es, "tap-compose's exec lines changed: update this test"
    return {
        "kafka": [kafka_bin.group(1) + tool for tool in tools],
        "elasticsearch": [es.group(1), *cm.shell_programs(es.group(2))],
    }


def test_every_image_has_its_programs_on_record(services):
    images = {service["image"] for service in services.values()}
    unknown = images - set(cm.IMAGE_BINARIES)
    assert not unknown, (
        f"no record of what {sorted(unknown)} ship: read the image's Dockerfile at the tag's "
        "commit and add the programs compose runs, with their source, to "
        "tests/tools/compose_model.py IMAGE_BINARIES"
    )


def test_health_checks_and_commands_run_programs_the_image_ships(services):
    execs = _tap_compose_execs()
    problems = {
        f"{name} ({service['image']})": missing
        for name, service in services.items()
        if (missing := cm.missing_programs(service, execs.get(name, [])))
    }
    assert not problems, f"programs the images do not ship: {problems}"


def test_the_program_check_catches_a_binary_the_image_lacks():
    """The Fluent Bit probe that kept the ingest stage from ever turning healthy."""
    service = {
        "image": "fluent/fluent-bit:4.2.2-debug",
        "healthcheck": {"test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://x/"]},
        "command": ["/fluent-bit/bin/fluent-bit", "-c", "/fluent-bit/etc/fluent-bit.yaml"],
    }
    assert cm.missing_programs(service) == ["healthcheck: wget"]
    service["healthcheck"]["test"] = ["CMD-SHELL", "V=1 busybox wget -q -O - http://x/ | grep ok"]
    # (/bin/sh is there: the -debug image is Debian, where dash is Essential.)
    assert cm.missing_programs(service) == ["healthcheck: busybox", "healthcheck: grep"]
    assert cm.missing_programs({**service, "image": "fluent/fluent-bit:9.9.9"})
    assert cm.shell_programs(
        "A=1 exec x -f 'a | b' >/dev/null 2>&1 && y; test -f z || (cd / && exec w \"$@\")"
    ) == ["x", "y", "w"]


@pytest.mark.parametrize("stage", cm.STAGES)
def test_stage_lists_are_the_long_running_services_of_the_profile(services, stage):
    in_profile = {n for n, s in services.items() if stage in cm.profiles_of(s)}
    long_running = {n for n in in_profile if not cm.is_one_shot(services[n])}
    assert set(_stage_services("up", stage)) == long_running


@pytest.mark.parametrize("stage", cm.STAGES)
def test_one_shots_are_adopted_so_up_wait_succeeds(services, stage):
    """`docker compose up --wait` fails on an exited container nothing waits for."""
    waited = set(_stage_services("up", stage))
    adopted = set()
    for name in waited:
        for target, dependency in (services[name].get("depends_on") or {}).items():
            if dependency["condition"] == "service_completed_successfully":
                adopted.add(target)
    one_shots = {n for n, s in services.items() if stage in cm.profiles_of(s) and cm.is_one_shot(s)}
    run_explicitly = {"kibana-import"} if stage == "presentation" else set()
    assert one_shots - run_explicitly <= adopted
    if run_explicitly:
        assert "run --rm kibana-import" in cm.TAP_COMPOSE.read_text(encoding="utf-8")


def test_kafka_serves_every_stage(services):
    for name in ("kafka", "topics"):
        assert set(cm.profiles_of(services[name])) == set(cm.STAGES)
    assert cm.profiles_of(services["shopper"]) == ["tools"]


def _budget(services, names) -> int:
    return sum(cm.mem_bytes(services[n]["mem_limit"]) for n in names)


def test_memory_limits_fit_an_8_gb_laptop_when_staged(services):
    for name, service in services.items():
        assert "mem_limit" in service, f"{name} has no memory limit"
    gib = 1024**3
    ingest = set(_stage_services("up", "ingest"))
    processing = set(_stage_services("up", "processing")) | {"model-train"}
    presentation = set(_stage_services("up", "presentation"))
    # The demo holds ingest + processing at once, then presentation alone (+ Kafka, Kafka UI).
    assert _budget(services, ingest | processing) <= 6.5 * gib
    assert _budget(services, presentation) <= 6.5 * gib
    stop = {s for stage in ("ingest", "processing") for s in _stage_services("stop", stage)}
    assert stop == (ingest | processing) - {"kafka", "kafka-ui"} - {"model-train"}
    docs = (cm.ROOT / "docs" / "compose.md").read_text(encoding="utf-8")
    assert "Memory budget" in docs


def test_the_orders_log_is_shared_outside_the_web_root(services):
    # The wordpress image serves /var/www/html (docker-library/wordpress 62130367
    # latest/php8.3/apache/Dockerfile:168 VOLUME /var/www/html, :157-165 owned by www-data);
    # www-data is the Debian user of the php base (docker-library/php 445bf414
    # 8.3/trixie/apache/Dockerfile:48, Debian base-passwd: uid 33).
    log_dir = "/var/log/tap"
    wordpress = {v["target"]: v for v in services["wordpress"]["volumes"]}
    fluent = {v["target"]: v for v in services["fluent-bit"]["volumes"]}
    assert wordpress[log_dir]["source"] == fluent[log_dir]["source"] == "orders-log"
    assert wordpress[log_dir]["type"] == "volume"
    assert fluent[log_dir].get("read_only") is True
    assert not wordpress[log_dir].get("read_only")
    web_root = "/var/www/html"
    assert not log_dir.startswith(web_root)
    assert "install -d -o www-data -g www-data" in " ".join(services["wordpress"]["entrypoint"])
    # The TAP plugin is mounted where WordPress (and wp-cli) find it.
    plugin = "/var/www/html/wp-content/plugins/tap-order-logger"
    for name in ("wordpress", "wp-setup"):
        mounts = {v["target"]: v for v in services[name]["volumes"]}
        assert mounts[plugin]["type"] == "bind" and mounts[plugin]["read_only"]
        assert Path(mounts[plugin]["source"]) == cm.ROOT / "wordpress_plugin" / "tap-order-logger"


def test_wordpress_answers_the_bot_and_the_browser_by_their_own_host(services):
    extra = services["wordpress"]["environment"]["WORDPRESS_CONFIG_EXTRA"]
    port = SETTINGS["ports"]["wordpress"]
    assert f"'localhost:{port}'" in extra and "'wordpress'" in extra
    assert services["shopper"]["command"][-2:] == ["--base-url", "http://wordpress"]
    if shutil.which("php"):
        result = subprocess.run(
            ["php", "-r", f"$_SERVER['HTTP_HOST'] = 'wordpress'; {extra} echo WP_HOME;"],
            capture_output=True,
            text=True,
        )
        assert result.stdout == "http://wordpress", result.stderr
        result = subprocess.run(
            [
                "php",
                "-r",
                f"$_SERVER['HTTP_HOST'] = 'evil.example'; {extra} "
                "echo defined('WP_HOME') ? 'yes' : 'no';",
            ],
            capture_output=True,
            text=True,
        )
        assert result.stdout == "no", result.stderr


# ── WordPress setup files ────────────────────────────────────────────────────────────────


def test_catalogue_is_generated_from_the_simulator():
    generator = cm.load_module(
        cm.COMPOSE_DIR / "wordpress" / "generate_catalogue.py", "tap_generate_catalogue"
    )
    committed = (cm.COMPOSE_DIR / "wordpress" / "catalogue.json").read_text(encoding="utf-8")
    assert committed == generator.render(), (
        "compose/wordpress/catalogue.json is stale: run "
        ".venv/bin/python compose/wordpress/generate_catalogue.py"
    )
    products = json.loads(committed)["products"]
    skus = [p["sku"] for p in products]
    assert len(skus) == len(set(skus))
    assert all(float(p["price"]) > 0 and p["name"] and p["category"] for p in products)


def test_wordpress_setup_script_covers_the_shop():
    script = (cm.COMPOSE_DIR / "wordpress" / "setup.sh").read_text(encoding="utf-8")
    for needed in (
        "wp core is-installed",
        'wp plugin install woocommerce --version="$WOOCOMMERCE_VERSION"',
        "wp plugin activate tap-order-logger",
        'wp option update tap_order_log_path "$TAP_ORDER_LOG_PATH"',
        "woocommerce_cod_settings",
        '"enabled": "yes"',
        "--role=customer",
        'wp eval-file "$here/seed-catalogue.php" "$here/catalogue.json"',
    ):
        assert needed in script, needed
    assert (
        subprocess.run(["sh", "-n", str(cm.COMPOSE_DIR / "wordpress" / "setup.sh")]).returncode == 0
    )


def test_the_plugin_option_named_in_setup_is_the_plugins():
    source = cm.ROOT / "wordpress_plugin" / "tap-order-logger" / "includes" / "class-log-path.php"
    if not source.exists():
        pytest.fail("wordpress_plugin/tap-order-logger is missing (compose mounts it)")
    assert "const OPTION = 'tap_order_log_path';" in source.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed")
def test_php_files_parse():
    for path in (cm.COMPOSE_DIR / "wordpress").glob("*.php"):
        result = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


# ── scripts ──────────────────────────────────────────────────────────────────────────────

BASH_SCRIPTS = [
    cm.TAP_COMPOSE,
    cm.INIT_ENV,
    cm.VALIDATOR_DIR / "build.sh",
    cm.COMPOSE_CLI_BUILD,
]


@pytest.mark.parametrize("script", BASH_SCRIPTS, ids=lambda p: p.name)
def test_bash_scripts_are_strict_executable_and_parse(script):
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.stat(script).st_mode & stat.S_IXUSR, f"{script} is not executable"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean():
    result = subprocess.run(
        ["shellcheck", "-x", *map(str, BASH_SCRIPTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    result = subprocess.run(
        ["shellcheck", "-s", "sh", str(cm.COMPOSE_DIR / "wordpress" / "setup.sh")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


def test_init_env_generates_settings_and_secret_files_once(tmp_path):
    run_init_env(tmp_path)
    target, folder = tmp_path / ".env", tmp_path / "secrets"
    values = cm.read_env_file(target)
    example = cm.read_env_file(cm.ENV_EXAMPLE)
    assert set(values) == set(example)
    assert not any(v.startswith("CHANGE_ME") for v in values.values())
    for key, value in example.items():
        if not value.startswith("CHANGE_ME"):
            assert values[key] == value, key  # ports, versions, user names untouched
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", values["KAFKA_CLUSTER_ID"])
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    # No secret in .env: each is a file named as the compose file declares it.
    assert not declared_secrets() & set(example)
    assert {p.name for p in folder.iterdir()} == declared_secrets()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    secrets = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    for path in folder.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path.name
    assert all(re.fullmatch(r"[A-Za-z0-9]{32,}", v) for v in secrets.values())
    assert len(set(secrets.values())) == len(secrets), "every secret is drawn on its own"
    before = {**secrets, ".env": target.read_text(encoding="utf-8")}
    (folder / "TAP_CEO_PASSWORD").unlink()
    run_init_env(tmp_path)
    after = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert after.keys() == secrets.keys(), "a missing secret is made again"
    assert {k: v for k, v in after.items() if k != "TAP_CEO_PASSWORD"} == {
        k: v for k, v in before.items() if k not in {"TAP_CEO_PASSWORD", ".env"}
    }, "init-env never overwrites a secret"
    assert target.read_text(encoding="utf-8") == before[".env"], "nor .env"


def test_init_env_keeps_the_passwords_of_an_older_env(tmp_path):
    """An .env of the former layout (secrets inside) keeps its stack working: each secret
    still missing takes the value that .env holds, once."""
    (tmp_path / ".env").write_text(
        cm.ENV_EXAMPLE.read_text(encoding="utf-8").replace("CHANGE_ME_CLUSTER_ID", "x" * 22)
        + "ELASTIC_PASSWORD=kept-from-before\n",
        encoding="utf-8",
    )
    result = run_init_env(tmp_path)
    assert (tmp_path / "secrets" / "ELASTIC_PASSWORD").read_text() == "kept-from-before"
    assert "ELASTIC_PASSWORD taken from" in result.stdout


def test_kibana_has_three_distinct_encryption_keys_of_32_characters_or_more(services, tmp_path):
    """xpack.security.encryptionKey, xpack.encryptedSavedObjects.encryptionKey and
    xpack.reporting.encryptionKey are three settings, each a string of 32 characters or more
    (https://www.elastic.co/guide/en/kibana/8.19/using-kibana-with-security.html "any text
    string that is 32 characters or longer", which points to the reporting and saved-objects
    keys as well; .../xpack-security-secure-saved-objects.html, "min-32-byte-long"):
    one key for all three means one leak opens sessions, saved objects and reports at once."""
    files = cm.secret_files(services["kibana"])
    # kibana-docker maps these variables to the settings (elastic/dockerfiles v8.19.7
    # kibana/bin/kibana-docker:297, :363, :407: the list it turns into --setting=value).
    keys = {
        "XPACK_SECURITY_ENCRYPTIONKEY": files["XPACK_SECURITY_ENCRYPTIONKEY"],
        "XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY": files[
            "XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY"
        ],
        "XPACK_REPORTING_ENCRYPTIONKEY": files["XPACK_REPORTING_ENCRYPTIONKEY"],
    }
    assert len(set(keys.values())) == 3, "three secrets, not one value three times"
    assert not any(k in (services["kibana"].get("environment") or {}) for k in keys)
    run_init_env(tmp_path)
    values = [(tmp_path / "secrets" / source).read_text() for source in keys.values()]
    assert len(set(values)) == 3
    assert all(len(v) >= 32 for v in values)


class _Recorder(BaseHTTPRequestHandler):
    """A stand-in Elasticsearch that records the security API calls and acknowledges them."""

    requests: list[tuple[str, str, str, dict]] = []

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") or "{}"
        self.requests.append(
            (self.command, self.path, self.headers.get("Authorization", ""), json.loads(body))
        )
        payload = b'{"acknowledged": true, "created": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        # The Python client refuses a server that does not say it is Elasticsearch.
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = _handle

    def log_message(self, *args):  # keep pytest output clean
        pass


def test_es_users_container_applies_the_contract_roles_and_users(services):
    """What `tap es security` (the es-users container's command) asks of Elasticsearch: the
    contract's roles and users, the same the native node holds in its file realm."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # What secrets-env exports in the container: each secret file as its variable.
    env = {k: str(v) for k, v in services["es-users"]["environment"].items()}
    passwords = {name: f"{name.lower()}-pw" for name in cm.secret_files(services["es-users"])}
    env.update(
        passwords,
        TAP_ES_URL=f"http://127.0.0.1:{server.server_address[1]}",
        ELASTIC_PASSWORD="elastic-pw",
        KIBANA_SYSTEM_PASSWORD='kib"ana\\pw',
        TAP_SECRETS_DIR=str(Path(tempfile.mkdtemp())),  # no native secrets to fall back on
    )
    try:
        result = CliRunner().invoke(app, ["es", "security"], env=env)
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    calls = {(method, path.split("?")[0]): body for method, path, _, body in _Recorder.requests}
    expected_auth = "Basic " + base64.b64encode(b"elastic:elastic-pw").decode()
    assert {auth for *_, auth, _ in _Recorder.requests} == {expected_auth}
    for name, body in security.roles().items():
        assert calls[("PUT", f"/_security/role/{name}")] == body
    writer = calls[("PUT", "/_security/role/tap_writer")]
    rights = {name: grant["privileges"] for grant in writer["indices"] for name in grant["names"]}
    assert all("manage" not in p for p in rights.values()), "the writer could drop indices"
    # Delete on lines and the ledger only: the loader takes back the lines of an order (and
    # the ledger lines of an event) refused after them.
    deleters = [n for n, p in rights.items() if "delete" in p]
    assert deleters == [contracts.index("lines"), contracts.index("ledger")]
    env_example = cm.read_env_file(cm.ENV_EXAMPLE)
    for role, variable in (
        ("writer", "TAP_LOGSTASH"),
        ("setup", "TAP_SETUP"),
        ("viewer", "TAP_CEO"),
        ("model", "TAP_MODEL"),
    ):
        user = contracts.es_user(role)
        assert env_example[f"{variable}_USER"] == user, "compose/.env names the contract's user"
        body = calls[("PUT", f"/_security/user/{user}")]
        assert body["roles"] == security.users()[user]
        assert body["password"] == passwords[f"{variable}_PASSWORD"]
    by_path = {path: body for (_, path), body in calls.items()}
    assert by_path["/_security/user/kibana_system/_password"] == {"password": 'kib"ana\\pw'}


# tap-compose, driven against a stand-in for the docker CLI that records its arguments.
FAKE_DOCKER = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$TAP_FAKE_DOCKER_LOG"
# The calls made with the secret files loaded (tap-compose exports them for compose).
[[ -n "${TAP_CEO_PASSWORD:-}" && -n "${KIBANA_REPORTING_ENCRYPTION_KEY:-}" ]] &&
  printf '%s\n' "$*" >> "$TAP_FAKE_DOCKER_LOG.secrets"
args=" $* "
case "$args" in
  *" compose version "*) echo "Docker Compose version v2.40.0" ;;
  *" ps --status running --services "*) printf '%s\n' kafka elasticsearch wordpress ;;
  *"/kafka-get-offsets.sh "*)
    printf '%s\n' Topic_Purchase:0:3 Topic_Purchase:1:2 Topic_Analysis:0:5 \
      Topic_Dashboard:0:4 Topic_Dashboard:1:0 Topic_DeadLetter:0:1 ;;
  *"/kafka-consumer-groups.sh "*)
    echo "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID"
    echo "logstash_v1 Topic_Dashboard 0 4 4 0 c1 /1 tap-logstash"
    echo "logstash_v1 Topic_Dashboard 1 0 0 0 c1 /1 tap-logstash" ;;
  *" exec -T elasticsearch "*) echo 7 ;;
esac
exit 0
"""


@pytest.fixture()
def fake_docker(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER, encoding="utf-8")
    docker.chmod(0o755)
    compose_dir = tmp_path / "compose"
    shutil.copytree(cm.COMPOSE_DIR, compose_dir, ignore=shutil.ignore_patterns(".env", "secrets"))
    log = tmp_path / "docker.log"

    def run(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        log.write_text("", encoding="utf-8")
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", TAP_FAKE_DOCKER_LOG=str(log))
        result = subprocess.run(
            ["bash", str(compose_dir / "tap-compose"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return result, log.read_text(encoding="utf-8").splitlines()

    return run, compose_dir


def test_tap_compose_help_needs_no_docker():
    result = subprocess.run(["bash", str(cm.TAP_COMPOSE), "help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("up [STAGE]", "down", "status", "logs", "demo [N]", "shop", "init-env"):
        assert command in result.stdout


def test_tap_compose_up_stage_waits_on_health_checks(fake_docker):
    run, compose_dir = fake_docker
    result, calls = run("up", "ingest")
    assert result.returncode == 0, result.stderr
    assert (compose_dir / ".env").exists(), "up creates compose/.env on first run"
    [up] = [c for c in calls if " up " in f" {c} "]
    assert "--profile ingest up --detach --wait db wordpress fluent-bit kafka kafka-ui" in up
    assert f"--env-file {compose_dir / '.env'}" in up

    result, calls = run("up", "presentation")
    assert result.returncode == 0, result.stderr
    assert any("--profile presentation run --rm kibana-import" in c for c in calls)

    result, _ = run("up", "nonsense")
    assert result.returncode == 1 and "unknown stage" in result.stderr


def test_tap_compose_down_status_and_stop(fake_docker):
    run, _ = fake_docker
    result, calls = run("down", "--volumes")
    assert result.returncode == 0, result.stderr
    assert any(c.endswith("down --remove-orphans --volumes") for c in calls)
    for profile in ("ingest", "processing", "presentation", "tools"):
        assert f"--profile {profile}" in calls[-1]

    result, calls = run("status")
    assert result.returncode == 0, result.stderr
    assert "Topic_Purchase:0:3" in result.stdout
    assert "logstash_v1 lag: 0" in result.stdout
    assert "ecommerce-predictions=7 ecommerce-order-lines=7" in result.stdout

    result, calls = run("stop", "processing")
    assert result.returncode == 0, result.stderr
    assert calls[-1].endswith("stop behaviour process-orders")


def test_tap_compose_passes_compose_commands_with_the_secrets_loaded(fake_docker, tmp_path):
    run, compose_dir = fake_docker
    result, calls = run("compose", "run", "--rm", "kafka-users")
    assert result.returncode == 0, result.stderr
    assert calls[-1].endswith("--profile tools run --rm kafka-users")
    assert f"--env-file {compose_dir / '.env'}" in calls[-1]
    with_secrets = (tmp_path / "docker.log.secrets").read_text(encoding="utf-8").splitlines()
    assert calls[-1] in with_secrets, "compose gets the secret files' values for `secrets:`"
    folder = compose_dir / "secrets"
    assert {p.name for p in folder.iterdir()} == declared_secrets()
    result, _ = run("compose")
    assert result.returncode == 1 and "usage" in result.stderr


def test_tap_compose_demo_runs_the_stages_in_order(fake_docker):
    run, _ = fake_docker
    result, calls = run("demo", "3")
    assert result.returncode == 0, result.stderr + result.stdout
    steps = []
    for call in calls:
        if " up --detach --wait " in call:
            steps.append("up " + call.split("--profile ")[1].split()[0])
        elif "run --rm shopper" in call:
            assert "tap shop run --base-url http://wordpress --orders 3" in call
            steps.append("shop")
        elif " stop " in f" {call} ":
            steps.append("stop")
    assert steps == ["up ingest", "up processing", "shop", "stop", "stop", "up presentation"]
    assert "Kibana dashboard  http://localhost:5601" in result.stdout
    assert "Shop (Garderobe)  http://localhost:8000" in result.stdout


# ── security: networks, secrets, Kafka SASL/SCRAM (docs/security.md, issue 16) ─────────────

SHOP = {"db", "wordpress", "wp-setup", "shopper"}
BACKENDS = {"kafka", "elasticsearch"}
KAFKA = contracts.security()["kafka"]
# Service -> the Kafka user (role of contracts/security.toml [kafka]) it logs in as.
KAFKA_CLIENTS = {
    "fluent-bit": "collector",
    "process-orders": "process_orders",
    "behaviour": "behaviour",
    "logstash": "loader",
    "kafka-users": "admin",
    "topics": "admin",
}


def _networks(service: dict) -> set[str]:
    return set(service.get("networks") or {})


def test_the_shop_has_no_route_to_kafka_or_elasticsearch(services):
    """No shop service shares a network with Kafka or Elasticsearch, and no service joins the
    default network or the host's (every service names its networks, or has none at all)."""
    for name, service in services.items():
        mode = service.get("network_mode")
        assert _networks(service) or mode == "none", f"{name} would join the default network"
        assert mode in (None, "none"), f"{name}: network_mode {mode}"
    backend_networks = set().union(*(_networks(services[b]) for b in BACKENDS))
    for name in SHOP:
        assert _networks(services[name]), name
        shared = _networks(services[name]) & backend_networks
        assert not shared, f"{name} shares {shared} with Kafka or Elasticsearch"
    # Fluent Bit reads the shop's log through the orders-log volume, not over the network.
    assert not _networks(services["fluent-bit"]) & _networks(services["wordpress"])
    on_both = [n for n, s in services.items() if {"shop", "pipeline"} <= _networks(s)]
    assert on_both == [], "no service bridges the two networks"


def test_no_secret_is_a_variable_of_the_compose_model(cli_env):
    """With a generated .env and secrets, `docker compose config` shows no secret value: the
    values reach containers only as files."""
    folder = cli_env.parent / "secrets"
    values = {p.read_text(encoding="utf-8") for p in folder.iterdir()}
    result = _cli(cli_env, ["*"], "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert not [v for v in values if v in result.stdout]
    model = json.loads(result.stdout)
    for name, service in model["services"].items():
        for variable in service.get("environment") or {}:
            if variable == "MARIADB_RANDOM_ROOT_PASSWORD":  # a switch ("1"), not a password
                continue
            if re.search(r"PASSWORD|ENCRYPTIONKEY|CUSTOMER_KEY", variable):
                assert variable.endswith("_FILE"), f"{name}: {variable} is a variable"


def test_every_declared_secret_is_used_and_init_env_makes_them_all(services, tmp_path):
    used = {s["source"] for service in services.values() for s in service.get("secrets") or []}
    assert used == declared_secrets()
    for name, secret in cm.raw_compose()["secrets"].items():
        # tap-compose exports compose/secrets/NAME as NAME for `environment:` secrets.
        assert secret == {"environment": name}, name
    run_init_env(tmp_path)
    assert {p.name for p in (tmp_path / "secrets").iterdir()} == declared_secrets()


def test_each_secret_reaches_only_the_containers_that_use_it(services):
    holders: dict[str, set[str]] = {}
    for name, service in services.items():
        for source in cm.secret_files(service).values():
            holders.setdefault(source, set()).add(name)
    variables = KAFKA["password_variables"]
    # Each Kafka user's password: its client and the setup container that creates the user.
    for service, role in KAFKA_CLIENTS.items():
        if role != "admin":
            assert holders[variables[role]] == {service, "kafka-users"}, role
    assert holders[variables["viewer"]] == {"kafka-ui", "kafka-users"}
    assert holders[variables["admin"]] == {"kafka", "kafka-users", "topics"}
    assert holders["TAP_CUSTOMER_KEY"] == {"process-orders"}
    assert holders["ELASTIC_PASSWORD"] == {"elasticsearch", "es-users"}
    assert holders["TAP_LOGSTASH_PASSWORD"] == {"logstash", "es-users"}
    assert holders["KIBANA_SYSTEM_PASSWORD"] == {"kibana", "es-users"}
    assert holders["TAP_SETUP_PASSWORD"] == {"es-users", "es-templates", "kibana-import"}
    assert holders["WORDPRESS_DB_PASSWORD"] == {"db", "wordpress", "wp-setup"}
    for name in SHOP - {"db", "wordpress", "wp-setup"}:
        assert name not in set().union(*holders.values()), f"{name} holds a secret"


def test_images_that_read_a_file_get_one_and_the_others_start_through_secrets_env(services):
    # *_FILE, read by the image itself: MariaDB's file_env (MariaDB/mariadb-docker 1b6429ba
    # 11.8/docker-entrypoint.sh:25-48), WordPress's getenv_docker (docker-library/wordpress
    # bf223d1c latest/php8.3/apache/wp-config-docker.php:29-30), Elasticsearch's
    # elasticsearch-env-from-file (elastic/elasticsearch distribution/src/bin/, which demands
    # mode 400 or 600; the image runs as uid 1000: elastic/dockerfiles v8.19.7
    # elasticsearch/Dockerfile:152).
    mariadb = services["db"]["environment"]
    assert mariadb["MARIADB_PASSWORD_FILE"] == "/run/secrets/WORDPRESS_DB_PASSWORD"
    assert services["wordpress"]["environment"]["WORDPRESS_DB_PASSWORD_FILE"] == (
        "/run/secrets/WORDPRESS_DB_PASSWORD"
    )
    es = services["elasticsearch"]
    assert es["environment"]["ELASTIC_PASSWORD_FILE"] == "/run/secrets/ELASTIC_PASSWORD"
    [secret] = es["secrets"]
    assert (secret["uid"], secret["gid"], int(str(secret["mode"]), 8)) == ("1000", "0", 0o400)
    assert "$(cat /run/secrets/ELASTIC_PASSWORD)" in " ".join(es["healthcheck"]["test"])
    readers = {"db", "wordpress", "elasticsearch", "kafka"}  # kafka: kafka-start reads its file
    for name, service in services.items():
        if not service.get("secrets") or name in readers:
            continue
        start = service.get("entrypoint") or service.get("command")
        assert start[:2] == SECRETS_ENV, f"{name} has secrets but does not export them"
        mounts = {v["target"]: v for v in service["volumes"]}
        assert Path(mounts["/tap/secrets-env"]["source"]) == SECRETS_ENV_SCRIPT
        assert mounts["/tap/secrets-env"]["read_only"]


def _secrets_env(tmp_path: Path, files: dict[str, str], shell: tuple[str, ...] = ("sh",)):
    folder = tmp_path / "run-secrets"
    folder.mkdir()
    for name, value in files.items():
        (folder / name).write_text(value, encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "TAP_SECRETS_RUN_DIR": str(folder)}
    return subprocess.run(
        [*shell, str(SECRETS_ENV_SCRIPT), "env"], env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize("shell", [("sh",), ("dash",), ("bash",), ("busybox", "sh")], ids=str)
def test_secrets_env_exports_each_file_as_its_variable(tmp_path, shell):
    """The script runs under the images' /bin/sh: BusyBox ash (Alpine), dash (Debian, Ubuntu)."""
    # scripts/system-deps.sh installs busybox: a missing shell is a broken set-up, not a skip.
    assert shutil.which(shell[0]), f"{shell[0]} is not installed (scripts/system-deps.sh)"
    files = {"TAP_KAFKA_PASSWORD": "p4ss word\n", "XPACK_SECURITY_ENCRYPTIONKEY": "k" * 48}
    result = _secrets_env(tmp_path, files, shell)
    assert result.returncode == 0, result.stderr
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert exported["TAP_KAFKA_PASSWORD"] == "p4ss word", "the trailing newline is dropped"
    assert exported["XPACK_SECURITY_ENCRYPTIONKEY"] == "k" * 48


def test_secrets_env_refuses_a_file_not_named_like_a_variable(tmp_path):
    result = _secrets_env(tmp_path, {"not-a-name": "x"})
    assert result.returncode == 2
    assert "not named like a variable" in result.stderr
    assert subprocess.run(["sh", str(SECRETS_ENV_SCRIPT)], capture_output=True).returncode == 2


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_container_scripts_pass_shellcheck():
    for script, shell in ((SECRETS_ENV_SCRIPT, "sh"), (KAFKA_START, "bash")):
        result = subprocess.run(
            ["shellcheck", "-s", shell, str(script)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout


def test_the_broker_authenticates_every_client_and_denies_what_is_not_granted(services):
    """SASL on every listener (SCRAM for clients, PLAIN as the admin on the controller's, as on
    the native broker), the contract's mechanism, KRaft's StandardAuthorizer
    (org.apache.kafka.metadata.authorizer.StandardAuthorizer, apache/kafka
    metadata/src/main/java/.../authorizer/StandardAuthorizer.java) with no allow-if-no-ACL, and
    the contract's admin as the only super user. tests/test_compose_kafka_broker.py starts the
    real broker with this environment."""
    env = services["kafka"]["environment"]
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}, "no plain listener, no ANONYMOUS"
    assert set(protocols) == {"INTERNAL", "HOST", env["KAFKA_CONTROLLER_LISTENER_NAMES"]}
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert listeners["CONTROLLER"].startswith("localhost:")
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == KAFKA["mechanism"]
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == KAFKA["mechanism"]
    assert env["KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL"] == "PLAIN"
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == f"User:{KAFKA['admin']}"
    assert env["TAP_KAFKA_ADMIN_USER"] == KAFKA["admin"]
    # kafka-start formats with the admin's credential and writes the JAAS file KAFKA_OPTS names.
    assert services["kafka"]["command"] == ["bash", "/tap/kafka-start"]
    assert "/opt/kafka/config/tap_jaas.conf" in env["KAFKA_OPTS"]
    assert cm.secret_files(services["kafka"]) == {
        "KAFKA_ADMIN_PASSWORD": KAFKA["password_variables"]["admin"]
    }
    mounts = {v["target"]: v for v in services["kafka"]["volumes"]}
    assert Path(mounts["/tap/kafka-start"]["source"]) == KAFKA_START
    health = " ".join(services["kafka"]["healthcheck"]["test"])
    assert "--command-config /opt/kafka/config/tap-admin.properties" in health
    # tap-compose's Kafka tools log in with the same file.
    script = cm.TAP_COMPOSE.read_text(encoding="utf-8")
    assert "KAFKA_ADMIN_CONFIG=/opt/kafka/config/tap-admin.properties" in script
    assert '--command-config "$KAFKA_ADMIN_CONFIG"' in script
    start = KAFKA_START.read_text(encoding="utf-8")
    assert '>"$config_dir/tap-admin.properties"' in start
    assert '>"$config_dir/tap_jaas.conf"' in start


def test_kafka_start_formats_with_the_properties_the_image_would_write(services, tmp_path):
    """The image maps KAFKA_FOO_BAR to foo.bar, ___ to - and __ to _ (apache/kafka
    core/src/main/scala/kafka/docker/KafkaDockerWrapper.scala:172-187) and leaves out its
    *_OPTS list (Constants.ExcludeServerPropsEnv); kafka-start formats with the same, and no
    password is among them (it is never exported)."""
    env = {k: str(v) for k, v in services["kafka"]["environment"].items()}
    env.update(PATH="/usr/bin:/bin", KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_X="y")
    result = subprocess.run(
        ["bash", str(KAFKA_START), "--format-properties"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    props = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert props["listener.security.protocol.map"] == env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert props["super.users"] == env["KAFKA_SUPER_USERS"]
    assert props["sasl.enabled.mechanisms"] == KAFKA["mechanism"]
    assert props["controller.quorum.voters"] == env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    assert props["log.dirs"] == env["KAFKA_LOG_DIRS"]
    assert props["listener.name.internal.scram-sha-512.x"] == "y"
    assert "opts" not in props and "heap.opts" not in props
    assert not [k for k in props if "password" in k]


def test_kafka_start_refuses_a_password_it_could_not_quote(services, tmp_path):
    secret = tmp_path / "KAFKA_ADMIN_PASSWORD"
    secret.write_text('a"b', encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "TAP_KAFKA_ADMIN_USER": KAFKA["admin"],
        "TAP_KAFKA_ADMIN_SECRET": str(secret),
        "TAP_KAFKA_CONFIG_DIR": str(tmp_path),
    }
    result = subprocess.run(["bash", str(KAFKA_START)], env=env, capture_output=True, text=True)
    assert result.returncode == 1 and "must be" in result.stderr
    assert not (tmp_path / "tap_jaas.conf").exists()


def test_each_kafka_client_logs_in_as_its_own_user(services):
    users = {**KAFKA["users"], "admin": KAFKA["admin"]}
    variables = KAFKA["password_variables"]
    for name, role in KAFKA_CLIENTS.items():
        service = services[name]
        assert service["environment"]["TAP_KAFKA_USER"] == users[role], name
        assert "TAP_KAFKA_PASSWORD" not in service["environment"], name
        assert cm.secret_files(service)["TAP_KAFKA_PASSWORD"] == variables[role], name
        assert service["depends_on"]["kafka-users" if name != "kafka-users" else "kafka"]
    # kafka-users creates every user: it holds every password under the contract's names.
    files = cm.secret_files(services["kafka-users"])
    assert set(variables.values()) <= set(files)
    assert all(files[v] == v for v in variables.values())
    # The tap code's clients read TAP_KAFKA_USER / TAP_KAFKA_PASSWORD (tapstack/kafka_clients.py).
    assert services["topics"]["depends_on"]["kafka-users"]["condition"] == (
        "service_completed_successfully"
    )


def test_kafka_ui_reads_as_the_viewer_and_masks_e_mails(services):
    ui = services["kafka-ui"]
    env = ui["environment"]
    viewer = KAFKA["users"]["viewer"]
    # kafbat/kafka-ui v1.5.0 documentation/compose/ui-sasl.yaml:15-17 (the client properties).
    assert env["KAFKA_CLUSTERS_0_PROPERTIES_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["KAFKA_CLUSTERS_0_PROPERTIES_SASL_MECHANISM"] == KAFKA["mechanism"]
    jaas = env["KAFKA_CLUSTERS_0_PROPERTIES_SASL_JAAS_CONFIG"]
    variable = KAFKA["password_variables"]["viewer"]
    assert jaas == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required"
        f' username="{viewer}" password="${{{variable}}}";'
    ), "a Spring placeholder, resolved from the variable secrets-env exports"
    assert cm.secret_files(ui) == {
        variable: variable,
        "SPRING_SECURITY_USER_PASSWORD": "KAFKA_UI_PASSWORD",
    }
    # The viewer cannot read the dead letters (the contract), and the UI is read-only.
    assert "dead_letter" not in KAFKA["grants"]["viewer"]["read"]
    assert env["KAFKA_CLUSTERS_0_READONLY"] == "true"
    # Data masking: ClustersProperties.Masking (type, fields, topicValuesPattern; v1.5.0
    # api/src/main/java/io/kafbat/ui/config/ClustersProperties.java:221-234), bound by Spring
    # from KAFKA_CLUSTERS_0_MASKING_0_*; the pattern must match the whole topic name
    # (DataMasking.java:34-37, Pattern.matcher(topic).matches()); fields are matched at any
    # depth (policies/Mask.java:55-74), and the schema's e-mail is customer.email.
    assert env["KAFKA_CLUSTERS_0_MASKING_0_TYPE"] == "MASK"
    assert env["KAFKA_CLUSTERS_0_MASKING_0_FIELDS_0"] == "email"
    pattern = re.compile(env["KAFKA_CLUSTERS_0_MASKING_0_TOPICVALUESPATTERN"])
    assert pattern.fullmatch(SETTINGS["topics"]["purchase"])
    assert pattern.fullmatch(SETTINGS["topics"]["dead_letter"])
    assert not pattern.fullmatch(SETTINGS["topics"]["dashboard"])
    schema = json.loads((cm.ROOT / "contracts" / "order.schema.json").read_text(encoding="utf-8"))
    assert "email" in schema["properties"]["customer"]["properties"]
    # The image's own start, after secrets-env (v1.5.0 api/Dockerfile:28).
    assert ui["command"][:2] == SECRETS_ENV
    assert "-jar /api.jar" in ui["command"][-1]
