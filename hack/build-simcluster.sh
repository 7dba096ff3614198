#!/usr/bin/env bash
# Builds the simulated Kubernetes cluster that internal/simcluster runs for
# tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler from
# the tools module tools/simcluster, and kwok from its own module, into
# .cache/simcluster/bin/, plus kwok's Stage config in
# .cache/simcluster/kwok-stages.yaml.
#
# Idempotent: when every binary and the stamp (recording the versions and a
# hash of the tools module) are there, it does nothing. The first build takes
# several minutes on 2 cores; later ones reuse Go's build cache.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
root="$PWD"

K8S_VERSION=v1.37.2
K8S_MAJOR=1
K8S_MINOR=37
KWOK_VERSION=v0.8.0

out="$root/.cache/simcluster"
bin="$out/bin"
stamp="$out/stamp"
stages="$out/kwok-stages.yaml"
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

log() { echo "build-simcluster: $*" >&2; }
# Each module on its own, whatever go.work may say.
export GOWORK=off

want_stamp() {
  echo "kubernetes=$K8S_VERSION"
  echo "kwok=$KWOK_VERSION"
  echo "go=$(go env GOVERSION)"
  # Rebuild when the tools module, its mains or this script change.
  (cd tools/simcluster && cat go.mod go.sum cmd/*/*.go) | sha256sum | awk '{print "tools=" $1}'
  sha256sum <"$script" | awk '{print "script=" $1}'
}

up_to_date() {
  [ -f "$stamp" ] && [ -f "$stages" ] || return 1
  for b in "${binaries[@]}"; do
    [ -x "$bin/$b" ] || return 1
  done
  [ "$(cat "$stamp")" = "$(want_stamp)" ]
}

if up_to_date; then
  log "up to date in $bin"
  exit 0
fi

mkdir -p "$bin"
# Two builds at once (say two test runs) would race on the same files.
exec 9>"$out/.lock"
flock 9
if up_to_date; then
  log "up to date in $bin"
  exit 0
fi
rm -f "$stamp"

start=$(date +%s)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$K8S_MAJOR"
  ldflags+=" -X $pkg.gitMinor=$K8S_MINOR -X $pkg.gitTreeState=clean"
done

log "building etcd, kube-apiserver, kube-controller-manager, kube-scheduler ($K8S_VERSION); the first build takes several minutes"
(cd tools/simcluster && go build -trimpath -ldflags "$ldflags" -o "$bin/" ./cmd/...)

log "building kwok $KWOK_VERSION"
# Outside the tools module: kwok needs another etcd than kubernetes does.
GOBIN="$bin" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"

log "writing $stages"
# From / so that no go.mod is involved (nor written to).
kwok_dir="$(cd / && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$kwok_dir" ] || [ ! -d "$kwok_dir/kustomize/stage" ]; then
  log "cannot find the kwok module's kustomize/stage folder (got '$kwok_dir')"
  exit 1
fi
tmp="$(mktemp "$out/kwok-stages.XXXXXX")"
for d in node/fast node/heartbeat pod/fast; do
  for f in "$kwok_dir/kustomize/stage/$d"/*.yaml; do
    [ "$(basename "$f")" = kustomization.yaml ] && continue
    echo "---"
    echo "# sigs.k8s.io/kwok@$KWOK_VERSION kustomize/stage/$d/$(basename "$f")"
    cat "$f"
  done
done >"$tmp"
if ! grep -q '^kind: Stage' "$tmp"; then
  log "no Stage found in $kwok_dir/kustomize/stage"
  exit 1
fi
chmod 0644 "$tmp"
mv "$tmp" "$stages"

want_stamp >"$stamp"
log "done in $(($(date +%s) - start))s: $bin"
