#!/usr/bin/env bash
# Warm-cache build time of Berth's image: `hack/image build` run RUNS times
# (after one warm-up run that fills Go's build cache) for each platform set,
# printing every run, the median wall time, the compressed sizes and
# whether every run gave the same index digest. Two cases:
#   unchanged: the same source again (go build finds its output up to date
#              and does not link; gzip and hashing are what is left);
#   relink:    a new --version each run, so berth is linked again, as after
#              a commit that changed no package (a changed package adds its
#              own compile, and that of what imports it).
#
#   bench/image.sh [RUNS] [PLATFORMS...]
#   bench/image.sh 5 linux/amd64 linux/amd64,linux/arm64   # the default
#
# hack/image is compiled once first, so `go run`'s own compile is not timed.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-5}"
shift || true
sets=("$@")
[ "${#sets[@]}" -gt 0 ] || sets=(linux/amd64 linux/amd64,linux/arm64)

out=.cache/image/bench
mkdir -p "$out"
go build -o "$out/hack-image" ./hack/image

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }

for platforms in "${sets[@]}"; do
  echo "== $platforms: warm-up" >&2
  "$out/hack-image" build --platform "$platforms" --out "$out/bench.tar" >"$out/last.txt" 2>/dev/null
  times=()
  digests=()
  for i in $(seq "$runs"); do
    start=$(date +%s%N)
    "$out/hack-image" build --platform "$platforms" --out "$out/bench.tar" >"$out/last.txt" 2>/dev/null
    end=$(date +%s%N)
    t=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", (e-s)/1e9}')
    d=$(awk '$1 == "index" {print $2}' "$out/last.txt")
    echo "unchanged run $i: ${t}s index $d" >&2
    times+=("$t")
    digests+=("$d")
  done
  relink=()
  for i in $(seq "$runs"); do
    start=$(date +%s%N)
    "$out/hack-image" build --platform "$platforms" --version "bench-$i-$start" --out "$out/relink.tar" >/dev/null 2>&1
    end=$(date +%s%N)
    t=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", (e-s)/1e9}')
    echo "relink run $i: ${t}s" >&2
    relink+=("$t")
  done
  distinct=$(printf '%s\n' "${digests[@]}" | sort -u | wc -l)
  echo "$platforms: median of $runs warm builds: unchanged $(printf '%s\n' "${times[@]}" | median)s, relink $(printf '%s\n' "${relink[@]}" | median)s; distinct index digests over the unchanged runs: $distinct"
  grep -E '^linux/' "$out/last.txt" | sed 's/^/  /'
done
rm -f "$out/relink.tar"
