#!/usr/bin/env bash
# Make sure Debian's Chromium is installed (the Studio's browser tests drive
# it headless with chromedp) and that axe-core, the accessibility checker
# they run in each page, is in .cache/axe (from the npm registry, once).
# Prints the path of axe.min.js. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium from Debian's packages" >&2
  sudo_if_needed apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq chromium >&2
fi
chromium --version >&2

AXE_VERSION=4.14.1
dir=.cache/axe/$AXE_VERSION
if [ ! -s "$dir/axe.min.js" ]; then
  echo "fetching axe-core $AXE_VERSION from the npm registry" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null && tar xzf "axe-core-$AXE_VERSION.tgz")
  mkdir -p "$dir"
  cp "$tmp/package/axe.min.js" "$dir/axe.min.js"
  rm -rf "$tmp"
fi
echo "$PWD/$dir/axe.min.js"
