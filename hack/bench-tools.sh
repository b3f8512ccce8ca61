#!/usr/bin/env bash
# Load generators for `make bench` (bench/peers.py), never for `make test`: wrk from Debian for
# REST (a Lua script posts JSON and binary-extension bodies) and ghz built from its Go module for
# gRPC, cached under ~/.cache/sluice/ghz/<version>/. Both are compiled clients, so the client
# costs the server's core nothing and a fraction of the server's CPU per request on its own core.
# Idempotent: a second run only checks. A cold ghz build takes about three minutes of both cores.
set -euo pipefail

GHZ_VERSION=v0.121.0
GHZ_DEST="${HOME}/.cache/sluice/ghz/${GHZ_VERSION}"

if ! command -v wrk >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

if [ ! -x "${GHZ_DEST}/ghz" ]; then
  command -v go >/dev/null || { echo "bench-tools.sh: go is required to build ghz" >&2; exit 1; }
  mkdir -p "${GHZ_DEST}"
  work="$(mktemp -d "${GHZ_DEST}/build.XXXXXX")"
  trap 'rm -rf "${work}"' EXIT
  echo "building ghz ${GHZ_VERSION} (one-off, about three minutes)" >&2
  GOBIN="${work}" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" \
    go install "github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}"
  mv "${work}/ghz" "${GHZ_DEST}/ghz"
fi

"${GHZ_DEST}/ghz" --version >/dev/null 2>&1
