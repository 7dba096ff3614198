#!/usr/bin/env bash
# bench/frontend.sh — throughput and added latency of berth-fe against
# nginx (a keep-alive reverse proxy) and against the backend directly, on
# loopback with wrk and 1 KiB responses, over plain HTTP and over TLS.
# nginx and berth-fe get the same single worker core (CPU 1); wrk and the
# backend share CPU 0. Prints requests/s, p50/p99, and berth-fe/nginx ratios.
#
#   ./bench/frontend.sh [DURATION] [ROUNDS]    (default 5s per run, 3 rounds)
#
# Every figure is the median of ROUNDS interleaved rounds; each run's own
# figures go to standard error as it ends.
#
# FE_ARGS adds flags to `berth frontend`, e.g. FE_ARGS=--http-server=go to
# measure net/http's server on the scoring listeners instead of berth's.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-5s} ROUNDS=${2:-3}
source bench/lib.sh
need_tools "wrk nginx openssl taskset" "wrk nginx-light openssl util-linux"
go build -o "$tmp/berth" ./cmd/berth

BACKEND=127.0.0.1:18001 NGINX_HTTP=127.0.0.1:18002 NGINX_TLS=127.0.0.1:18003 FE_HTTP=127.0.0.1:18004 FE_TLS=127.0.0.1:18005 FE_ADMIN=127.0.0.1:18006
frontend_files $BACKEND
GOMAXPROCS=1 taskset -c 0 "$tmp/backend" -listen $BACKEND & pids+=($!)
cat > "$tmp/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 10;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  upstream be { server $BACKEND; keepalive 256; }
  server {
    listen $NGINX_HTTP;
    listen $NGINX_TLS ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!)
nginx_master=$!
GOMAXPROCS=1 taskset -c 1 "$tmp/berth" frontend --static "$tmp/static.json" --http $FE_HTTP --https $FE_TLS --admin $FE_ADMIN \
  --access-log=false --log-format text ${FE_ARGS:-} 2>"$tmp/fe.log" & pids+=($!)
fe_pid=$!
sleep 1
nginx_worker=$(pgrep -P "$nginx_master" | head -1)
declare -A PID=([nginx]=$nginx_worker [berth-fe]=$fe_pid)

cat > "$tmp/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"data":[[1,2,3,4]]}'
wrk.headers["Content-Type"] = "application/json"
LUA
# 30 connections, each sending 5 ms after its last answer: about 4,700-5,000
# requests/s (wrk has no fixed-rate mode; the table shows the rate reached).
cat > "$tmp/rate.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"data":[[1,2,3,4]]}'
wrk.headers["Content-Type"] = "application/json"
function delay() return 5 end
LUA

# run NAME URL SCRIPT CONNECTIONS [PID] → "rps p50_ms p99_ms cpu_us_per_request"
# The proxy's CPU time per request (from /proc, user+system) is the figure
# least disturbed by other work on the machine.
run() {
  local out c0=0 c1=0
  [ -n "${5:-}" ] && c0=$(cpu "$5")
  out=$(taskset -c 0 wrk -t1 -c"$4" -d"$DUR" --latency -s "$3" "$2" 2>&1)
  [ -n "${5:-}" ] && c1=$(cpu "$5")
  local rps p50 p99 n
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  n=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q "Non-2xx" <<<"$out"; then echo "$1: non-2xx answers: $(grep Non-2xx <<<"$out")" >&2; fi
  echo "$rps $(ms "$p50") $(ms "$p99") $(awk -v c=$((c1 - c0)) -v t="$tick" -v n="$n" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')"
}
ms() { # wrk prints 512.00us, 1.20ms, 2.00s
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'
}

# Each round measures every case once, in turn, so that other work on a
# shared machine weighs on all of them alike; each figure is the median of
# the rounds.
declare -A R
steal() { awk '/^cpu / {print $9}' /proc/stat; } # ticks the hypervisor gave other guests
steal0=$(steal) t0=$(date +%s)
for round in $(seq "$ROUNDS"); do
  for proto in http https; do
    d="http://$BACKEND/score"
    if [ $proto = http ]; then n="http://$NGINX_HTTP/score"; f="http://$FE_HTTP/api/v1/service/bench/score"
    else n="https://$NGINX_TLS/score"; f="https://$FE_TLS/api/v1/service/bench/score"; fi
    for target in direct nginx berth-fe; do
      case $target in direct) u=$d;; nginx) u=$n;; berth-fe) u=$f;; esac
      for load in max 5k; do
        if [ $load = max ]; then out=$(run "$target $proto" "$u" "$tmp/post.lua" 64 "${PID[$target]:-}")
        else out=$(run "$target $proto @5k" "$u" "$tmp/rate.lua" 30 "${PID[$target]:-}"); fi
        R[$proto,$target,$load]+="$out"$'\n'
        echo "round $round: $target $proto $load: $out" >&2
      done
    done
  done
done
# median of each column over the rounds
for k in "${!R[@]}"; do
  R[$k]=$(for col in 1 2 3 4; do
    printf '%s' "${R[$k]}" | awk -v c=$col 'NF {print $c}' | sort -g | awk '{v[NR]=$1} END {printf "%s ", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
  done)
done

printf "\nmedians of %s rounds of %s\n%-22s %12s %9s %9s %10s   %12s %9s %9s %10s\n" "$ROUNDS" "$DUR" "" "max req/s" "p50 ms" "p99 ms" "CPU us/req" "@5k req/s" "p50 ms" "p99 ms" "CPU us/req"
for proto in http https; do
  for target in direct nginx berth-fe; do
    read -r a b c g <<<"${R[$proto,$target,max]}"; read -r d e f h <<<"${R[$proto,$target,5k]}"
    label="$target ($proto)"; [ $target = direct ] && label="direct (http backend)" && g=- && h=-
    printf "%-22s %12s %9s %9s %10s   %12s %9s %9s %10s\n" "$label" "$a" "$b" "$c" "$g" "$d" "$e" "$f" "$h"
  done
done
echo "berth-fe flags: ${FE_ARGS:-(none)}"
awk -v s=$(($(steal) - steal0)) -v t=$(($(date +%s) - t0)) -v hz="$tick" -v n="$(nproc)" 'BEGIN {
  printf "CPU time stolen by the hypervisor during the runs: %.1f%% (a busy host makes every figure noisier)\n", 100 * s / hz / (t * n) }'
for proto in http https; do
  read -r fr _ _ fc <<<"${R[$proto,berth-fe,max]}"; read -r nr _ _ nc <<<"${R[$proto,nginx,max]}"
  read -r fk f50 f99 <<<"${R[$proto,berth-fe,5k]}"; read -r _ d50 d99 <<<"${R[http,direct,5k]}"
  read -r _ n50 n99 <<<"${R[$proto,nginx,5k]}"
  awk -v p=$proto -v fr="$fr" -v nr="$nr" -v fc="$fc" -v nc="$nc" -v fk="$fk" -v f50="$f50" -v f99="$f99" -v d50="$d50" -v d99="$d99" -v n50="$n50" -v n99="$n99" 'BEGIN {
    printf "%-5s throughput berth-fe/nginx = %.2fx (target >= 1.0x), CPU per request at full load berth-fe/nginx = %.2fx\n", p, fr/nr, fc/nc
    printf "%-5s added latency over direct at %d req/s: berth-fe p50 %+.3f ms (target <= 0.3), p99 %+.3f ms (target <= 1); nginx p50 %+.3f ms, p99 %+.3f ms\n",
      p, fk, f50-d50, f99-d99, n50-d50, n99-d99 }'
done
