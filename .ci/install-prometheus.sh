#!/usr/bin/env bash
# Installs promtool (Debian package `prometheus`) for the observability tests. Idempotent: does
# nothing when promtool is already on the PATH. The package's service is not started (no init here,
# and policy-rc.d keeps daemons down while installing).
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
  echo "install-prometheus: $(promtool --version 2>&1 | head -n 1)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-prometheus: promtool is missing and this is not root; run: apt-get update && apt-get install -y prometheus" >&2
  exit 1
fi
# Keep the package's daemon from starting during the install (container or CI machine alike).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
trap 'if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
echo "install-prometheus: $(promtool --version 2>&1 | head -n 1)"
