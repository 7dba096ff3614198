# bench/lib.sh — the setup bench/frontend.sh, frontend-ab.sh and
# frontend-revs.sh share. Source it from the repository's root: it makes
# $tmp and $pids (every process started in the background is added to
# pids), removed and killed on exit.

# need_tools "TOOL..." "PACKAGE...": installs the packages with apt-get when
# one of the tools is missing.
need_tools() {
  for tool in $1; do
    if ! command -v "$tool" >/dev/null; then
      echo "installing $tool" >&2
      # shellcheck disable=SC2086 # the packages are words
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2 >/dev/null
    fi
  done
}

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; } # user+system clock ticks

# frontend_files BACKEND: builds the backend ($tmp/backend), a self-signed
# certificate for bench.local ($tmp/cert.pem, $tmp/key.pem) and the front
# end's static configuration ($tmp/static.json): service bench, with BACKEND
# (host:port) its one replica.
frontend_files() {
  go build -o "$tmp/backend" ./bench/frontend/backend
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench.local \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
  cat > "$tmp/static.json" <<JSON
{"services":[{"route":{"service":"bench","selector":{"app":"bench"},"port":${1##*:},"auth":"none",
  "maxConcurrentRequestsPerContainer":4096,"maxQueueWaitMs":5000,"scoringTimeoutMs":60000},
  "replicas":["$1"]}],"certFile":"$tmp/cert.pem","keyFile":"$tmp/key.pem"}
JSON
}

# cpu_per_request PID URL SCRIPT: runs wrk (one thread, 64 connections, for
# $DUR, on CPU 0) with SCRIPT against URL and sets out (wrk's report), rps
# and us (PID's CPU time per request, in microseconds).
cpu_per_request() {
  local c0 c1 n
  c0=$(cpu "$1")
  out=$(taskset -c 0 wrk -t1 -c64 -d"$DUR" -s "$3" "$2")
  c1=$(cpu "$1")
  n=$(awk '/requests in/ {print $1}' <<<"$out"); rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  us=$(awk -v c=$((c1 - c0)) -v t="$tick" -v n="$n" 'BEGIN { printf "%.1f", c / t * 1e6 / n }')
}
