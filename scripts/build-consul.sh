#!/usr/bin/env bash
# Builds a real Consul agent (v1.16.3, the newest MPL-2.0 release) from the Go
# module proxy for coord's tests, caching it under ~/.cache/coord. Debian has
# no Consul package. A cold build takes ~5 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${COORD_CONSUL_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/coord/consulsrv-v1.16.3}"
if [ -x "$out" ]; then
  echo "consul agent: $out (cached)"
  exit 0
fi
mkdir -p "$(dirname "$out")"
echo "consul agent: building $out from tools/consulsrv (a few minutes)..."
cd "$root/tools/consulsrv"
# The checksum database lacks one of Consul's nested modules; go.sum pins it.
GONOSUMDB=github.com/hashicorp/consul/envoyextensions GOFLAGS=-mod=mod \
  go build -trimpath -o "$out.tmp" .
mv "$out.tmp" "$out"
echo "consul agent: built $out"
