#!/usr/bin/env bash
# MinIO, a real S3-compatible object store, for tests/runtime/test_registry_s3.py (versioned
# buckets, SigV4, real error codes). Built from its Go module (MinIO ships no release tags the
# Go proxy understands, so the version is the pseudo-version of a pinned commit) and cached under
# ~/.cache/sluice/minio/<version>/. Idempotent: a second run only checks that the binary is there.
# A cold build takes several minutes of both cores; it runs once per machine.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
DEST="${HOME}/.cache/sluice/minio/${MINIO_VERSION}"

[ -x "${DEST}/minio" ] && exit 0
command -v go >/dev/null || { echo "40-minio.sh: go is required to build MinIO" >&2; exit 1; }

mkdir -p "${DEST}"
work="$(mktemp -d "${DEST}/build.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
echo "building MinIO ${MINIO_VERSION} (one-off, several minutes)" >&2
GOBIN="${work}" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath" \
  go install "github.com/minio/minio@${MINIO_VERSION}"
mv "${work}/minio" "${DEST}/minio"
