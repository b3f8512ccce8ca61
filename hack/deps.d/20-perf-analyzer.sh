#!/usr/bin/env bash
# perf_analyzer for the runtime tier: the binary bundled in the tritonclient 2.45.0 wheel is the
# newest one that runs on Debian 12's glibc. It links libb64 (Debian's libb64-0d) and
# libcudart.so.12, which we take from the nvidia-cuda-runtime-cu12 wheel into the same cache
# folder (not into the venv); tests put that folder on LD_LIBRARY_PATH.
# Idempotent: a second run only checks that the files are there.
set -euo pipefail
cd "$(dirname "$0")/../.."

TRITONCLIENT_VERSION=2.45.0
CUDART_VERSION=12.4.127
DEST="${HOME}/.cache/sluice/perf_analyzer/${TRITONCLIENT_VERSION}"
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

if ! dpkg-query -W -f='${Status}' libb64-0d 2>/dev/null | grep -q "install ok installed"; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libb64-0d >/dev/null
fi

# Extracts one member of a wheel (a zip) to a file, keeping the executable bit.
extract() {
  "$PYTHON" - "$1" "$2" "$3" <<'EOF'
import os, shutil, sys, zipfile
wheel, member, target = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as src, open(target + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(target + ".part", 0o755)
os.replace(target + ".part", target)
EOF
}

if [ ! -x "$DEST/perf_analyzer" ] || [ ! -e "$DEST/lib/libcudart.so.12" ]; then
  mkdir -p "$DEST/lib" "$DEST/wheels"
  "$PYTHON" -m pip download -q --no-deps -d "$DEST/wheels" \
    "tritonclient==${TRITONCLIENT_VERSION}" "nvidia-cuda-runtime-cu12==${CUDART_VERSION}"
  extract "$DEST/wheels/tritonclient-${TRITONCLIENT_VERSION}-py3-none-manylinux1_x86_64.whl" \
    "tritonclient-${TRITONCLIENT_VERSION}.data/data/bin/perf_analyzer" "$DEST/perf_analyzer"
  extract "$DEST/wheels/nvidia_cuda_runtime_cu12-${CUDART_VERSION}-py3-none-manylinux2014_x86_64.whl" \
    "nvidia/cuda_runtime/lib/libcudart.so.12" "$DEST/lib/libcudart.so.12"
  rm -rf "$DEST/wheels"
fi

# The binary must start (its shared libraries resolve); print why when it does not.
if ! out=$(LD_LIBRARY_PATH="$DEST/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$DEST/perf_analyzer" --version 2>&1); then
  echo "perf_analyzer does not run: $out" >&2
  exit 1
fi
