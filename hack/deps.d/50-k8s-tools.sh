#!/usr/bin/env bash
# Builds, or finds cached, the binaries the cluster test tier runs: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl (one `go build` of hack/k8s, so they share
# one compile), then kwok and helm from their own pinned modules. Nothing is downloaded from
# outside the Go module proxy, and a build only happens once per machine and set of pins.
#
#   hack/deps.d/50-k8s-tools.sh            build what is missing (idempotent)
#   hack/deps.d/50-k8s-tools.sh --bin-dir  print the folder that holds (or will hold) the binaries
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
mod=$root/hack/k8s
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

# The version a go.mod requires for a module (require lines only, not replace lines).
required() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$2"; }

k8s=$(required k8s.io/kubernetes "$mod/go.mod")
etcd=$(required go.etcd.io/etcd/server/v3 "$mod/go.mod")
kwok=$(required sigs.k8s.io/kwok "$mod/kwok/go.mod")
helm=$(required helm.sh/helm/v3 "$mod/helm/go.mod")
# The pins name the key; the hash covers every indirect pin too, so any go.mod/go.sum edit rebuilds.
pins=$(cat "$mod"/go.mod "$mod"/go.sum "$mod"/*/go.mod "$mod"/*/go.sum | sha256sum | cut -c1-8)
key="$k8s-etcd-$etcd-kwok-$kwok-helm-$helm-$pins"
cache=$HOME/.cache/sluice/k8s
bin=$cache/$key/bin

if [ "${1:-}" = "--bin-dir" ]; then
  echo "$bin"
  exit 0
fi

complete() {
  local b
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  [ -f "$bin/kwok-stages.yaml" ]
}

# kwok ships no default stages in its binary: take its "fast" set (node/fast,
# node/heartbeat-with-lease, pod/fast: nodes Ready, pods Running and Ready at once) from the
# pinned kwok module and put it next to the binaries.
kwok_stages() {
  local dir stage src
  src=$(cd "$mod/kwok" && go mod download -json sigs.k8s.io/kwok | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  for dir in node/fast node/heartbeat-with-lease pod/fast; do
    for stage in "$src/kustomize/stage/$dir"/*.yaml; do
      [ "$(basename "$stage")" = kustomization.yaml ] || { echo "---"; cat "$stage"; }
    done
  done >"$1.partial"
  mv "$1.partial" "$1"
}

# The control plane's certificates are made with openssl.
if ! command -v openssl >/dev/null; then
  apt-get update -q && apt-get install -y -q openssl
fi

if complete; then
  echo "k8s tools: cached in $bin"
  exit 0
fi
if ! command -v go >/dev/null; then
  echo "k8s tools: 'go' (1.26 or newer) is needed to build $key; install Go and rerun" >&2
  exit 1
fi

mkdir -p "$cache/$key"
# One build at a time per key: a second `make test` waits for the first instead of racing it.
exec 9>"$cache/$key/lock"
flock 9
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false"
if complete; then
  echo "k8s tools: cached in $bin"
  exit 0
fi

tmp=$(mktemp -d "$cache/$key/bin.partial.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "k8s tools: building $key into $bin (first time on this machine; the compile takes a while)"
start=$SECONDS

minor=${k8s#v1.}
minor=${minor%%.*}
kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  kube_ldflags+=" -X $pkg.gitTreeState=clean"
done
(cd "$mod" && nice -n 10 go build -trimpath -ldflags "$kube_ldflags" -o "$tmp/" tool)
mv "$tmp/server" "$tmp/etcd" # go names go.etcd.io/etcd/server/v3's binary after "server"

(cd "$mod/kwok" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$tmp/" tool)
(cd "$mod/helm" && nice -n 10 go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$helm" -o "$tmp/" tool)

kwok_stages "$tmp/kwok-stages.yaml"
for b in "${binaries[@]}"; do
  [ -x "$tmp/$b" ] || { echo "k8s tools: build produced no $b" >&2; exit 1; }
done
rm -rf "$bin"
mv "$tmp" "$bin"
trap - EXIT
echo "k8s tools: built in $((SECONDS - start))s: $(cd "$bin" && du -ch "${binaries[@]}" | tail -1)"
