#!/usr/bin/env bash
# Installs BIND (named) from Debian's packages, and builds Pebble (Let's Encrypt's ACME test server) and pebble-challtestsrv
# (its DNS/management test server) from the Go module proxy into
# .cache/pebble/bin/, and copies Pebble's test CA and serving certificate
# (test/certs of the module) into .cache/pebble/certs/. The TLS tests
# (internal/acme, e2e) start them on loopback; hack/test.sh runs this and
# exports BERTH_PEBBLE_DIR so they find them.
#
# Idempotent: when both binaries and the stamp are there, it does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

PEBBLE_VERSION=v2.10.3
mod="github.com/letsencrypt/pebble/v2"
out="$root/.cache/pebble"
stamp="$out/stamp"
want="pebble=$PEBBLE_VERSION go=$(go env GOVERSION)"

# BIND from Debian's packages: the DNS server DNS-01 tests update over RFC 2136.
sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! [ -x /usr/sbin/named ]; then
  echo "pebble: installing bind9 from Debian's packages (for DNS-01 tests)" >&2
  sudo_if_needed apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq bind9 >&2
fi

if [ -x "$out/bin/pebble" ] && [ -x "$out/bin/pebble-challtestsrv" ] && [ -f "$out/certs/pebble.minica.pem" ] &&
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "pebble: building $mod@$PEBBLE_VERSION into $out/bin" >&2
mkdir -p "$out/bin" "$out/certs"
export GOWORK=off GOFLAGS=-mod=mod
GOBIN="$out/bin" go install "$mod/cmd/pebble@$PEBBLE_VERSION" "$mod/cmd/pebble-challtestsrv@$PEBBLE_VERSION"
src="$(go env GOMODCACHE)/github.com/letsencrypt/pebble/v2@$PEBBLE_VERSION/test/certs"
cp "$src/pebble.minica.pem" "$out/certs/pebble.minica.pem"
cp "$src/localhost/cert.pem" "$out/certs/localhost-cert.pem"
cp "$src/localhost/key.pem" "$out/certs/localhost-key.pem"
chmod -R u+w "$out/certs"
echo "$want" >"$stamp"
echo "pebble: ready in $out" >&2
