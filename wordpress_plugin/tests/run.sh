#!/bin/sh
# Runs the plugin's PHP tests with Debian's phpunit (apt-get install php-cli phpunit).
# Exits non-zero when a test fails or the tools are missing. Extra arguments go to phpunit,
# e.g. ./run.sh --filter OrderLoggerTest
set -eu
here=$(cd "$(dirname "$0")" && pwd)

for tool in php phpunit; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run.sh: $tool not found (apt-get install php-cli phpunit)" >&2
        exit 127
    fi
done

# Every plugin and test file must at least parse.
for file in "$here"/../tap-order-logger/*.php "$here"/../tap-order-logger/includes/*.php \
            "$here"/*.php "$here"/doubles/*.php "$here"/unit/*.php; do
    php -l "$file" >/dev/null || { echo "run.sh: syntax error in $file" >&2; exit 1; }
done

exec phpunit --configuration "$here/phpunit.xml.dist" "$@"
