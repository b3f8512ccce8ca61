#!/usr/bin/env bash
# Debian's nginx for tests/e2e and bench/traffic.py: the same stock nginx the router Deployment
# runs, driven by the config the operator renders. The tests start their own nginx processes
# (`nginx -p <tmpdir> -c <conf> -g 'daemon off;'`) as the current user on 127.0.0.1 ports, so the
# packaged service is never started here (policy-rc.d refuses it during the install) and is
# stopped if the package's postinst started it anyway.
# Idempotent: a second run only checks that the binary is there and has the modules we rely on.
set -euo pipefail

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
  [ "$created_policy" = 1 ] && rm -f "$policy"
  # A package that started its service anyway: stop it by its own pid file, nothing broader.
  if [ -s /run/nginx.pid ]; then
    kill "$(cat /run/nginx.pid)" 2>/dev/null || true
  fi
fi

NGINX="$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)"
# The router config needs upstream hashing, HTTP/2 and grpc_pass; fail here, not in a test.
version="$("$NGINX" -V 2>&1)"
for needle in http_v2_module; do
  if ! grep -q -- "$needle" <<<"$version"; then
    echo "30-nginx.sh: $NGINX lacks $needle: $version" >&2
    exit 1
  fi
done
