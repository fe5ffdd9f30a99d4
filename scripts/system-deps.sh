#!/usr/bin/env bash
# Install the system packages TAP needs, if missing (Debian/Ubuntu; uses sudo when not root).
#   Java 17+ and Maven: Kafka, Elasticsearch and Spark, fetched from Maven Central by mvn.
#   php-cli + phpunit: the WordPress plugin's tests.  chromium + fonts: the report's render test.
#   Go 1.26.8+ (preinstalled on the CI image): builds the compose-go validator and the real
#   `docker compose` CLI v5.6.0 for the compose tests (tests/tools/*/build.sh).
#   The shellcheck linter for the compose stack's shell scripts; busybox to run them under ash,
#   the /bin/sh of the Alpine-based images (tests/test_compose_config.py).
set -euo pipefail

need=()
python3 -c "import ensurepip, venv" 2>/dev/null || need+=(python3-venv)
command -v java >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v php >/dev/null || need+=(php-cli php-xml php-mbstring)
command -v phpunit >/dev/null || need+=(phpunit)
command -v chromium >/dev/null || need+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
command -v ruby >/dev/null || need+=(ruby)            # runs the Logstash pipeline's ruby filter in tests
command -v go >/dev/null || need+=(golang-go)
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v busybox >/dev/null || need+=(busybox)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "Missing: ${need[*]}. Install them with your package manager." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Missing ${need[*]}; run as root or install sudo." >&2; exit 1; }
  sudo="sudo"
fi
echo "Installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
