#!/usr/bin/env bash
# Builds the MinIO server that the S3 artifact store tests run on 127.0.0.1
# (internal/artifact, e2e), from the Go module proxy, into
# .cache/minio/bin/minio, and prints the binary's path.
#
# Idempotent: when the binary and the stamp (recording the version, the Go
# version and a hash of this script) are there, it does nothing. The first
# build takes several minutes on 2 cores; later ones reuse Go's build cache.
# MinIO is only run by the tests, never linked into Berth.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
root="$PWD"

# The newest version on the proxy when this was written (the upstream
# repository tags releases as RELEASE.*, so the proxy only has pseudo-versions).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

out="$root/.cache/minio"
bin="$out/bin/minio"
stamp="$out/stamp"

log() { echo "minio: $*" >&2; }

want_stamp() {
  echo "minio=$MINIO_VERSION"
  echo "go=$(go env GOVERSION)"
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
log "building MinIO $MINIO_VERSION; the first build takes several minutes"
# From / so that no go.mod or go.work is involved (nor written to).
(cd / && GOWORK=off CGO_ENABLED=0 GOBIN="$out/bin" \
  go install -trimpath -ldflags "-s -w" "github.com/minio/minio@$MINIO_VERSION")
"$bin" --version >/dev/null
want_stamp >"$stamp"
log "done in $(($(date +%s) - start))s: $bin"
echo "$bin"
