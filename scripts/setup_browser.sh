#!/usr/bin/env bash
# The browser the dashboard tests drive: Debian's Chromium (/usr/bin/chromium), driven by
# Playwright's Python client (pinned in requirements/test.txt) without its own browser
# download. Idempotent: does nothing when Chromium is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "setup_browser: Chromium is missing and this user cannot install it; run as root:" >&2
  echo "  apt-get install -y --no-install-recommends chromium" >&2
  exit 1
fi
echo "[setup] installing Debian's chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium >/dev/null
/usr/bin/chromium --version
