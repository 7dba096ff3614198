#!/usr/bin/env bash
# Builds the Helm CLI (helm.sh/helm/v3/cmd/helm, pinned in the tools module
# tools/helm) into .cache/helm/bin/helm for the chart's checks and for
# hack/release.sh, and prints the binary's path.
#
# Go's build cache is the stamp: when the binary is up to date with the
# tools module and the Go toolchain, `go build` leaves it as it is (half a
# second). The first build takes about 3 minutes on 2 cores. Helm is only
# run by the tests and the release script, never linked into Berth.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/.cache/helm"
bin="$out/bin/helm"
# The tools module on its own, whatever go.work may say.
export GOWORK=off

mkdir -p "$out/bin"
# Two builds at once (say two test runs) would race on the same file.
exec 9>"$out/.lock"
flock 9
start=$(date +%s)
cd tools/helm
v="$(go list -m -f '{{.Version}}' helm.sh/helm/v3)"
# helm version reports the module's version, as a release build does.
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$v" -o "$bin" helm.sh/helm/v3/cmd/helm
echo "helm: $v in $bin ($(($(date +%s) - start))s)" >&2
echo "$bin"
