#!/usr/bin/env bash
# bench/frontend-revs.sh — berth-fe's CPU time per request at full load,
# built from two git revisions and run side by side, interleaved (the order
# swapped every round) so that other work on a shared machine weighs on both
# alike. Both front ends get CPU 1 (GOMAXPROCS=1); wrk (64 connections, as
# bench/frontend.sh at full load) and the backend share CPU 0.
#
#   ./bench/frontend-revs.sh [REV_A] [REV_B] [ROUNDS] [DURATION]
#
# Defaults: main against the work tree as it is ("."), 6 rounds of 4s.
# BODIES (default "20") lists the request body sizes in bytes; 20 is
# bench/frontend.sh's scoring payload. Prints each run, then per case the
# median and mean CPU per request and B/A.
set -euo pipefail
cd "$(dirname "$0")/.."
REV_A=${1:-main} REV_B=${2:-.} ROUNDS=${3:-6} DUR=${4:-4s} BODIES=${BODIES:-20}
source bench/lib.sh
need_tools "wrk openssl taskset" "wrk openssl util-linux"
build() { # build REV OUT: berth from a revision ("." is the work tree)
  if [ "$1" = . ]; then go build -o "$2" ./cmd/berth; return; fi
  mkdir -p "$tmp/src"
  git archive "$1" | tar -x -C "$tmp/src"
  (cd "$tmp/src" && go build -o "$2" ./cmd/berth)
  rm -rf "$tmp/src"
}
build "$REV_A" "$tmp/berth-a"
build "$REV_B" "$tmp/berth-b"
frontend_files 127.0.0.1:18301
for size in $BODIES; do
  if [ "$size" = 20 ]; then body="'{\"data\":[[1,2,3,4]]}'"; else body="string.rep(\"x\", $size)"; fi
  cat > "$tmp/post-$size.lua" <<LUA
wrk.method = "POST"
wrk.body = $body
wrk.headers["Content-Type"] = "application/json"
LUA
done
GOMAXPROCS=1 taskset -c 0 "$tmp/backend" -listen 127.0.0.1:18301 & pids+=($!)
declare -A PID PORT=([a]=1831 [b]=1832) REV=([a]=$REV_A [b]=$REV_B)
for s in a b; do
  p=${PORT[$s]}
  GOMAXPROCS=1 taskset -c 1 "$tmp/berth-$s" frontend --static "$tmp/static.json" --http 127.0.0.1:${p}1 --https 127.0.0.1:${p}2 \
    --admin 127.0.0.1:${p}3 --access-log=false --log-format text 2>"$tmp/$s.log" & pids+=($!)
  PID[$s]=$!
done
sleep 1
declare -A US
steal() { awk '/^cpu / {print $9}' /proc/stat; }
steal0=$(steal) t0=$(date +%s)
for round in $(seq "$ROUNDS"); do
  order="a b"; [ $((round % 2)) = 0 ] && order="b a"
  for proto in http https; do
    for size in $BODIES; do
      for s in $order; do
        p=${PORT[$s]}; port=${p}1; [ $proto = https ] && port=${p}2
        cpu_per_request "${PID[$s]}" "$proto://127.0.0.1:$port/api/v1/service/bench/score" "$tmp/post-$size.lua"
        if grep -q "Non-2xx" <<<"$out"; then echo "$s: $(grep Non-2xx <<<"$out")" >&2; fi
        printf "round %d %-5s body %7s B  %s (%s)  %9.0f req/s %7s us/req\n" "$round" "$proto" "$size" "$s" "${REV[$s]}" "$rps" "$us"
        US[$proto,$size,$s]+="$us "
      done
    done
  done
done
stat() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{v[NR]=$1; s+=$1} END {printf "%.1f %.1f", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), s/NR}'; }
echo
echo "A = $REV_A ($(git rev-parse --short "$REV_A" 2>/dev/null || echo work tree)), B = $REV_B ($( [ "$REV_B" = . ] && echo "work tree at $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + changes')" || git rev-parse --short "$REV_B"))"
for proto in http https; do
  for size in $BODIES; do
    read -r am amean <<<"$(stat "${US[$proto,$size,a]}")"; read -r bm bmean <<<"$(stat "${US[$proto,$size,b]}")"
    awk -v p=$proto -v z="$size" -v am="$am" -v bm="$bm" -v amean="$amean" -v bmean="$bmean" -v n="$ROUNDS" 'BEGIN {
      printf "%-5s body %7s B: CPU per request at full load, median of %d: A %.1f us, B %.1f us (B/A %.3f); mean: A %.1f, B %.1f (B/A %.3f)\n", p, z, n, am, bm, bm/am, amean, bmean, bmean/amean }'
  done
done
awk -v s=$(($(steal) - steal0)) -v t=$(($(date +%s) - t0)) -v hz="$tick" -v n="$(nproc)" 'BEGIN {
  printf "CPU time stolen by the hypervisor during the runs: %.1f%%\n", 100 * s / hz / (t * n) }'
