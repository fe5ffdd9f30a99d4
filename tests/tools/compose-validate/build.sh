#!/usr/bin/env bash
# Build the offline Compose validator (compose-go, the loader `docker compose` itself uses).
# Output: <repo>/.cache/compose-validate/compose-validate ; Go module and build caches stay
# under <repo>/.cache/go so CI and developers reuse them. Re-running is a no-op when the
# sources have not changed. Prints the binary's path on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out_dir="$root/.cache/compose-validate"
bin="$out_dir/compose-validate"
stamp="$out_dir/source.sha256"

command -v go >/dev/null 2>&1 || { echo "build.sh: go is not installed" >&2; exit 2; }

mkdir -p "$out_dir"
sum="$(cat "$here/main.go" "$here/go.mod" "$here/go.sum" | sha256sum | cut -d' ' -f1)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
  echo "$bin"
  exit 0
fi

export GOMODCACHE="$root/.cache/go/mod"
export GOCACHE="$root/.cache/go/build"
export GOFLAGS="-mod=readonly -modcacherw"
export GOTOOLCHAIN=local
export CGO_ENABLED=0

(cd "$here" && go build -trimpath -o "$bin.tmp" .) >&2
mv "$bin.tmp" "$bin"
echo "$sum" >"$stamp"
echo "$bin"
