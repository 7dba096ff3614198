#!/usr/bin/env bash
# Make sure podman and runc from Debian's packages are installed and can run
# a container here (the tests run Berth's image under them, and the
# simulated cluster's container kubelet runs pods with them). Idempotent.
#
# The flags that work on these machines (../shared/SIMCLUSTER.md): runc
# (crun, podman's default, fails on hybrid cgroups), cgroupfs, the vfs
# storage driver, host networking and explicit ulimits (the sandbox lacks
# CAP_SYS_RESOURCE). The tests always pass them; to see the tests'
# containers while they run: podman --storage-driver vfs ps
set -euo pipefail

sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  echo "installing podman and runc from Debian's packages" >&2
  sudo_if_needed apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq podman runc >&2
fi
podman --version >&2
