#!/usr/bin/env bash
# Builds the Helm CLI (helm.sh/helm/v3/cmd/helm, pinned in the tools module
# tools/helm) into .cache/helm/bin/helm for the chart's checks and for
# hack/release.sh, and prints the binary's path.
#
# Idempotent: when the binary and the stamp (recording the tools module, the
# Go version and a hash of this script) are there, it does nothing. The first
# build takes several minutes on 2 cores; later ones reuse Go's build cache.
# Helm is only run by the tests and the release script, never linked into
# Berth.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
root="$PWD"

out="$root/.cache/helm"
bin="$out/bin/helm"
stamp="$out/stamp"

log() { echo "helm: $*" >&2; }
# The tools module on its own, whatever go.work may say.
export GOWORK=off

want_stamp() {
  echo "go=$(go env GOVERSION)"
  (cd tools/helm && cat go.mod go.sum) | sha256sum | awk '{print "tools=" $1}'
  sha256sum <"$script" | awk '{print "script=" $1}'
}

up_to_date() {
  [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(want_stamp)" ]
}

if up_to_date; then
  echo "$bin"
  exit 0
fi

mkdir -p "$out/bin"
# Two builds at once (say two test runs) would race on the same files.
exec 9>"$out/.lock"
flock 9
if up_to_date; then
  echo "$bin"
  exit 0
fi
rm -f "$stamp"

start=$(date +%s)
log "building helm (tools/helm); the first build takes several minutes"
(
  cd tools/helm
  # helm version reports the module's version, as a release build does.
  v="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v" -o "$bin.tmp" helm.sh/helm/v3/cmd/helm
)
mv "$bin.tmp" "$bin"
want_stamp >"$stamp"
log "done in $(($(date +%s) - start))s: $bin"
echo "$bin"
