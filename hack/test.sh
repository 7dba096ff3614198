#!/usr/bin/env bash
# Berth's test suite, runnable on a fresh machine: installs and starts what
# the tests need (PostgreSQL, podman and runc from Debian's packages, MinIO
# and Helm built from the Go module proxy, Berth's image), then vets, checks
# formatting and runs every test. Extra arguments go to `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${BERTH_TEST_POSTGRES_URL:-}" ]; then
  BERTH_TEST_POSTGRES_URL="$(./hack/postgres.sh)"
fi
export BERTH_TEST_POSTGRES_URL
# Never skip the PostgreSQL tests silently.
export BERTH_REQUIRE_POSTGRES=1

# The Debian packages later steps need (podman and runc, BIND for Pebble's
# DNS, Chromium), installed in the background while Go builds; the steps
# that use them wait for it.
mkdir -p .cache
./hack/packages.sh podman runc bind9 chromium >.cache/packages.log 2>&1 &
packages=$!

# A real S3 server (MinIO, built once into .cache/minio) for the S3
# artifact store tests, which must not be skipped either.
if [ -z "${BERTH_TEST_MINIO:-}" ]; then
  BERTH_TEST_MINIO="$(./hack/minio.sh)"
fi
export BERTH_TEST_MINIO
export BERTH_REQUIRE_MINIO=1

echo "== go vet" >&2
go vet ./...
echo "== gofmt" >&2
unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
echo "== berth builds for macOS and Windows" >&2
GOOS=darwin GOARCH=arm64 go build -o /dev/null ./cmd/berth
GOOS=windows GOARCH=amd64 go build -o /dev/null ./cmd/berth
./hack/build-simcluster.sh
# Pebble (ACME test CA) and its DNS test server, for the TLS tests.
if ! wait "$packages"; then
  cat .cache/packages.log >&2
  echo "installing Debian packages failed" >&2
  exit 1
fi
./hack/pebble.sh
export BERTH_PEBBLE_DIR="$PWD/.cache/pebble"
export BERTH_REQUIRE_PEBBLE=1
# Helm (built once into .cache/helm) for the chart's checks (e2e/helm_test.go:
# helm lint, rendering validated by an API server, the real install).
BERTH_HELM="$(./hack/helm.sh)"
export BERTH_HELM
export BERTH_REQUIRE_HELM=1
# Berth's container image, run under podman and runc by the image tests and
# the simulated cluster's container kubelet (docs/images.md).
./hack/podman.sh
# Debian's Chromium and axe-core for the Studio's browser tests.
BERTH_AXE_JS="$(./hack/chromium.sh)"
export BERTH_AXE_JS
export BERTH_REQUIRE_CHROMIUM=1
echo "== image" >&2
go run ./hack/image build --out .cache/image/berth.tar
export BERTH_IMAGE_ARCHIVE="$PWD/.cache/image/berth.tar"
# The tests load the archive under its build's own tag, and podman's vfs
# driver keeps a full copy of every image: remove the Berth images earlier
# runs loaded (and untagged ones), so runs do not fill the disk.
podman_() { podman --runtime runc --cgroup-manager cgroupfs --storage-driver vfs "$@"; }
for img in $(podman_ images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/berth:' || true); do
  podman_ rmi "$img" >/dev/null 2>&1 || true
done
podman_ image prune -f >/dev/null 2>&1 || true
# MinIO refuses uploads of unknown size on a drive with less than 2 GiB
# free, and the simulated clusters and images need a few more: say so
# plainly rather than let tests fail for it.
free_kib="$(df -Pk "${TMPDIR:-/tmp}" | awk 'NR==2 {print $4}')"
if [ "$free_kib" -lt $((5 * 1024 * 1024)) ]; then
  echo "warning: only $((free_kib / 1024)) MiB free on the disk of ${TMPDIR:-/tmp}; the tests need about 5 GiB." >&2
  echo "  Go's build cache ($(go env GOCACHE)) may be what fills it: go clean -cache" >&2
fi
export BERTH_REQUIRE_PODMAN=1
echo "== go test" >&2
go test -count=1 "$@" ./...
