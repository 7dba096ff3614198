#!/usr/bin/env bash
# Cold start of a service scaled to zero: the time from a request sent to
# a service at 0 replicas to its 200 answer, RUNS times (default 5), on the
# local compute (replicas are processes) and on the simulated cluster (pods
# run from Berth's image under podman), printing every run and the median.
# The e2e tests TestLocalScaleToZero and TestClusterScaleToZero do the work
# (deploy with --autoscale-min 0 --scale-to-zero-after 2s, wait until no
# replica is left, send the request); they never assert on the times.
#
#   bench/coldstart.sh [RUNS]
#
# The cluster run needs podman and Berth's image: BERTH_IMAGE_ARCHIVE
# (default .cache/image/berth.tar, `go run ./hack/image build --out FILE`
# builds one from this tree) or BERTH_TEST_IMAGE.
set -euo pipefail
cd "$(dirname "$0")/.."

export BERTH_COLDSTART_RUNS="${1:-5}" BERTH_REQUIRE_PODMAN=1
go test -count=1 -v -timeout 20m -run '^(TestLocalScaleToZero|TestClusterScaleToZero)$' ./e2e/ |
  grep -E 'cold start|^(--- |ok|FAIL)'
