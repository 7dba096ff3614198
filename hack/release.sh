#!/usr/bin/env bash
# Builds a release of Berth into dist/ (or OUT):
#   berth_VERSION_OS_ARCH.tar.gz (.zip for windows) for linux, darwin and
#   windows on amd64 and arm64, each with berth and README.md;
#   berth_VERSION_OS_ARCH.spdx.json, an SPDX 2.3 SBOM per binary, from the
#   build information Go embeds (what `go version -m` shows);
#   berth_VERSION_image.tar, the linux/amd64 + linux/arm64 image as a
#   docker-archive (`podman load -i`), tagged berth:VERSION, as hack/image
#   builds it;
#   berth-VERSION.tgz, the Helm chart (deploy/helm/berth) with that version
#   and appVersion;
#   SHA256SUMS over all of them (`sha256sum -c SHA256SUMS`).
# VERSION is semantic (1.2.3, 1.2.3-rc.1; a leading v is dropped). The
# binaries are static (CGO_ENABLED=0), -trimpath, with the version and
# commit stamped in, so the same commit gives the same files.
#
#   ./hack/release.sh VERSION [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: ./hack/release.sh VERSION [OUT]   (e.g. ./hack/release.sh 0.3.0)" >&2
  exit 2
fi
version="${1#v}"
out="${2:-dist}"
if ! [[ "$version" =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION \"$1\" is not a semantic version such as 0.3.0 or 1.0.0-rc.1" >&2
  exit 2
fi

helm="$(./hack/helm.sh)"
rm -rf "$out"
mkdir -p "$out"
"$helm" lint deploy/helm/berth >&2
"$helm" package deploy/helm/berth --version "$version" --app-version "$version" --destination "$out" >&2
go run ./hack/release --version "$version" --out "$out"
echo "release: $(cd "$out" && ls | wc -l) files in $out" >&2
