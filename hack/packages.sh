#!/usr/bin/env bash
# Installs, with one apt-get, those of the given Debian packages that are
# missing (hack/test.sh runs it in the background while Go builds, so the
# downloads of podman, BIND and Chromium overlap the compiles). Idempotent:
# with every package there it does nothing.
#
#   ./hack/packages.sh PACKAGE...
set -euo pipefail

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "installing ${missing[*]} from Debian's packages" >&2
sudo_if_needed apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >&2
