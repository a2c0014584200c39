#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (test/browser/board.test.ts) when it is missing.
# Idempotent: does nothing when /usr/bin/chromium is there. playwright-core drives this binary and
# never downloads a browser of its own (no `npx playwright install`).
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  echo "chromium: present ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
echo "chromium: installing from Debian packages"
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq chromium
/usr/bin/chromium --version
