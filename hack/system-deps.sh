#!/usr/bin/env bash
# Installs what the test tiers need from outside PyPI: Debian packages and cached tool builds.
# Idempotent; each step checks before it acts so a second run costs seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
for step in hack/deps.d/*.sh; do
  [ -e "$step" ] || continue
  bash "$step"
done
