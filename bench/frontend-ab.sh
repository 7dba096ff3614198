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
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
go build -o "$tmp/berth" ./cmd/berth
go build -o "$tmp/backend" ./bench/frontend/backend
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench.local \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat > "$tmp/static.json" <<JSON
{"services":[{"route":{"service":"bench","selector":{"app":"bench"},"port":18201,"auth":"none",
  "maxConcurrentRequestsPerContainer":4096,"maxQueueWaitMs":5000,"scoringTimeoutMs":60000},
  "replicas":["127.0.0.1:18201"]}],"certFile":"$tmp/cert.pem","keyFile":"$tmp/key.pem"}
JSON
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
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
declare -A SUM
for round in $(seq "$ROUNDS"); do
  for proto in http https; do
    for s in go berth; do
      p=${PORT[$s]}; port=${p}1; [ $proto = https ] && port=${p}2
      c0=$(cpu "${PID[$s]}")
      out=$(taskset -c 0 wrk -t1 -c64 -d"$DUR" -s "$tmp/post.lua" "$proto://127.0.0.1:$port/api/v1/service/bench/score")
      c1=$(cpu "${PID[$s]}")
      n=$(awk '/requests in/ {print $1}' <<<"$out"); rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
      us=$(awk -v c=$((c1 - c0)) -v t="$tick" -v n="$n" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
      printf "round %d %-5s %-5s %9.0f req/s %7s us/req\n" "$round" "$proto" "$s" "$rps" "$us"
      SUM[$proto,$s]=$(awk -v a="${SUM[$proto,$s]:-0}" -v b="$us" 'BEGIN { print a + b }')
    done
  done
done
for proto in http https; do
  awk -v p=$proto -v g="${SUM[$proto,go]}" -v b="${SUM[$proto,berth]}" -v n="$ROUNDS" 'BEGIN {
    printf "%-5s mean CPU per request: net/http %.1f us, berth %.1f us (berth/net/http = %.2fx)\n", p, g/n, b/n, b/g }'
done
