#!/usr/bin/env bash
# bench/frontend-ab.sh — berth-fe's CPU time per request on net/http's
# server (--http-server=go) against the lean one (berth), run side by side
# and interleaved so that other work on a shared machine weighs on both
# alike. Both front ends get CPU 1; wrk and the backend share CPU 0.
#
#   ./bench/frontend-ab.sh [ROUNDS] [DURATION]     (default 4 rounds of 4s)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-4} DUR=${2:-4s}
source bench/lib.sh
go build -o "$tmp/berth" ./cmd/berth
frontend_files 127.0.0.1:18201
cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"data":[[1,2,3,4]]}'
wrk.headers["Content-Type"] = "application/json"
LUA
GOMAXPROCS=1 taskset -c 0 "$tmp/backend" -listen 127.0.0.1:18201 & pids+=($!)
declare -A PID PORT=([go]=1821 [berth]=1822)
for s in go berth; do
  p=${PORT[$s]}
  GOMAXPROCS=1 taskset -c 1 "$tmp/berth" frontend --static "$tmp/static.json" --http 127.0.0.1:${p}1 --https 127.0.0.1:${p}2 \
    --admin 127.0.0.1:${p}3 --access-log=false --log-format text --http-server=$s 2>"$tmp/$s.log" & pids+=($!)
  PID[$s]=$!
done
sleep 1
declare -A SUM
for round in $(seq "$ROUNDS"); do
  for proto in http https; do
    for s in go berth; do
      p=${PORT[$s]}; port=${p}1; [ $proto = https ] && port=${p}2
      cpu_per_request "${PID[$s]}" "$proto://127.0.0.1:$port/api/v1/service/bench/score" "$tmp/post.lua"
      printf "round %d %-5s %-5s %9.0f req/s %7s us/req\n" "$round" "$proto" "$s" "$rps" "$us"
      SUM[$proto,$s]=$(awk -v a="${SUM[$proto,$s]:-0}" -v b="$us" 'BEGIN { print a + b }')
    done
  done
done
for proto in http https; do
  awk -v p=$proto -v g="${SUM[$proto,go]}" -v b="${SUM[$proto,berth]}" -v n="$ROUNDS" 'BEGIN {
    printf "%-5s mean CPU per request: net/http %.1f us, berth %.1f us (berth/net/http = %.2fx)\n", p, g/n, b/n, b/g }'
done
