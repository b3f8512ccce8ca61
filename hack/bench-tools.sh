#!/usr/bin/env bash
# Load generators for `make bench` (bench/peers_run.py), never for `make test`: wrk from Debian
# for REST (a Lua script posts JSON and binary-extension bodies) and grpcload, our small Go
# client in bench/peers/grpcload/, for gRPC. Both are compiled, so on its own core the client
# spends a fraction of the server's CPU per request. grpcload is built from its Go module
# (dependencies from the Go module proxy, pinned by go.sum) and cached under
# ~/.cache/sluice/grpcload/<hash of its sources>/. Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=bench/peers/grpcload
HASH="$(cat "${SRC}/go.mod" "${SRC}/go.sum" "${SRC}/main.go" | sha256sum | cut -c1-12)"
DEST="${HOME}/.cache/sluice/grpcload/${HASH}"

# valgrind: callgrind counts instructions per call for bench/instructions.py.
if ! command -v wrk >/dev/null || ! command -v callgrind_control >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk valgrind \
    >/dev/null
fi

if [ ! -x "${DEST}/grpcload" ]; then
  command -v go >/dev/null || { echo "bench-tools.sh: go is required to build grpcload" >&2; exit 1; }
  mkdir -p "${DEST}"
  echo "building grpcload (one-off, about a minute)" >&2
  (cd "${SRC}" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
    go build -trimpath -o "${DEST}/grpcload.part" .)
  mv "${DEST}/grpcload.part" "${DEST}/grpcload"
fi
