#!/usr/bin/env bash
# Make sure a PostgreSQL server from Debian's packages is installed and
# running on 127.0.0.1:5432 with a role the tests can use, then print the
# test database URL. Idempotent: does nothing that is already done.
set -euo pipefail

ROLE=berth
PASSWORD=berth-test
URL="postgres://${ROLE}:${PASSWORD}@127.0.0.1:5432/postgres?sslmode=disable"

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null)" ]; then
  echo "installing PostgreSQL from Debian's packages" >&2
  sudo_if_needed apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq postgresql >&2
fi

read -r VER CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header | head -n1 || true)
if [ -z "${VER:-}" ]; then
  VER=$(ls /usr/lib/postgresql | sort -V | tail -n1)
  sudo_if_needed pg_createcluster "$VER" main --start >&2
  read -r VER CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header | head -n1)
fi
if [ "$STATUS" != online ]; then
  echo "starting PostgreSQL $VER/$CLUSTER" >&2
  sudo_if_needed pg_ctlcluster "$VER" "$CLUSTER" start >&2
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p "$PORT" && break
  sleep 0.2
done
if [ "$PORT" != 5432 ]; then URL="${URL/:5432/:$PORT}"; fi

run_psql() { sudo_if_needed runuser -u postgres -- psql -p "$PORT" -qtAX "$@"; }
if [ "$(run_psql -c "SELECT 1 FROM pg_roles WHERE rolname='${ROLE}'")" != 1 ]; then
  run_psql -c "CREATE ROLE ${ROLE} LOGIN CREATEDB PASSWORD '${PASSWORD}'" >&2
fi
echo "$URL"
