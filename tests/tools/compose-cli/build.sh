#!/usr/bin/env bash
# Build the real Docker Compose CLI from its Go module, for `docker compose config` in the
# tests (no Docker engine needed: `config` only loads, validates and renders the project).
#
# The version is pinned here and nowhere else. The module is fetched from the Go module proxy
# (checked against sum.golang.org) and built the way upstream's Makefile builds it: `go build
# ./cmd` inside the module, with its own go.mod and go.sum, so every dependency is at
# upstream's version. (`go install .../cmd@version` refuses: the module's go.mod has exclude
# directives.) Output: <repo>/.cache/tools/compose-cli/<version>/docker-compose, a standalone
# binary; the Go module and build caches are shared with compose-validate under <repo>/.cache/go.
# A no-op when that binary exists; exit status 2 when Go is missing and nothing was built.
# Prints the binary's path on stdout. Cold (module downloads included): about 4 minutes on an
# idle 2-core machine, 9 under heavy load; about 800 MB of Go caches.
set -euo pipefail

# v5.6.0 asks for go 1.26.8 (its go.mod), the toolchain installed here; v5.7.x asks for
# go 1.26.10 and GOTOOLCHAIN=local keeps Go from fetching a newer toolchain.
COMPOSE_VERSION=v5.6.0
module=github.com/docker/compose/v5

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out_dir="$root/.cache/tools/compose-cli/$COMPOSE_VERSION"
bin="$out_dir/docker-compose"

if [[ -x "$bin" ]]; then
  echo "$bin"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "build.sh: go is not installed" >&2; exit 2; }

export GOMODCACHE="$root/.cache/go/mod"
export GOCACHE="$root/.cache/go/build"
export GOFLAGS="-mod=readonly -modcacherw"
export GOTOOLCHAIN=local
export GOWORK=off
export CGO_ENABLED=0

go mod download "$module@$COMPOSE_VERSION" >&2
src="$GOMODCACHE/$module@$COMPOSE_VERSION" # module path is all lower case: no escaping
[[ -f "$src/cmd/main.go" ]] || { echo "build.sh: $src/cmd/main.go not found" >&2; exit 1; }

mkdir -p "$out_dir"
# The version flag is the one upstream's Makefile sets (GO_LDFLAGS: internal.Version).
(cd "$src" && go build -trimpath -ldflags "-s -w -X $module/internal.Version=$COMPOSE_VERSION" \
  -o "$bin.tmp" ./cmd) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
