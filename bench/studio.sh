#!/usr/bin/env bash
# The Studio's performance targets, measured (not asserted by tests):
#   first page (sign-in, with its stylesheet and script)  ≤ 250 KB transferred
#   computes list with 1,000 computes, headless Chromium    ≤ 1 s to the load event
#   metrics store, 1,000 services × 24 h                    ≤ 200 MB of heap
# Needs Chromium (./hack/chromium.sh). Prints each figure beside its target.
set -euo pipefail
cd "$(dirname "$0")/.."
export BERTH_REQUIRE_CHROMIUM=1
ui="$(go test -run '^$' -bench '^BenchmarkStudio$' -benchtime 10x ./internal/studio/ | grep '^BenchmarkStudio')"
mem="$(go test -run '^$' -bench '^BenchmarkStoreMemory$' -benchtime 1x ./internal/metrics/ | grep '^BenchmarkStoreMemory')"
field() { echo "$1" | awk -v unit="$2" '{for (i = 2; i <= NF; i++) if ($i == unit) print $(i-1)}'; }
kb="$(field "$ui" KB-first-page)"
ms="$(field "$ui" ms-computes-1000)"
mb="$(field "$mem" MB)"
cap="$(field "$mem" cap-MB)"
printf '%-44s %10s   target %s\n' "first page, transferred" "$kb KB" "≤ 250 KB"
printf '%-44s %10s   target %s\n' "computes list (1,000), navigation to load" "$ms ms" "≤ 1000 ms (mean of 10)"
printf '%-44s %10s   target %s (fixed cap %s MB)\n' "metrics store, 1,000 services × 24 h" "$mb MB" "≤ 200 MB" "$cap"
