#!/usr/bin/env bash
# bench/chaos.sh [N] — kill -9 a Berth server N times (default 20) while it
# deploys, updates and deletes local services and receives an upload, then
# report operations ended / started, orphan processes, leftover uploads and
# whether the owner token still works (bench/chaos/main.go). Linux only
# (orphans are found in /proc). Exit 1 unless everything is clean.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./bench/chaos -n "${1:-20}"
