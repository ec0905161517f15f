#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs or builds every
# server the tests need (Redis and ZooKeeper from Debian's archive, a Consul
# agent built from source; etcd is embedded in coordctl), checks formatting,
# vet and staticcheck, then runs every test with every backend REQUIRED:
# a missing server fails the run instead of skipping.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./recipes/...   # a subset of packages
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "need root to run: $*" >&2; return 1; fi
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
{ [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null; } || missing+=(zookeeper)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian's archive"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

log "Consul agent"
bash scripts/build-consul.sh

log "gofmt, go mod tidy, go vet, staticcheck"
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi
go mod tidy -diff
go vet ./...
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

log "tests (every backend required)"
export COORD_REQUIRE_ALL=1
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || pkgs=(./...)
go test -race -count=1 -timeout 40m "${pkgs[@]}"
