#!/usr/bin/env bash
# Lints the Dockerfile. hadolint when it is on the PATH (it is not packaged for Debian; developers may
# have it from its releases or run it as `docker run --rm -i hadolint/hadolint < Dockerfile`), else
# dockerfilelint from the npm registry, pinned. Exits non-zero on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v hadolint >/dev/null 2>&1; then
  echo "lint-dockerfile: hadolint $(hadolint --version 2>/dev/null | head -n1)"
  hadolint Dockerfile
else
  echo "lint-dockerfile: hadolint not installed; using dockerfilelint 1.8.0 from npm"
  npx --yes dockerfilelint@1.8.0 Dockerfile
fi
