#!/usr/bin/env bash
# Run every benchmark under bench/ (capture.py, tcp_bridge.py, ...) and print its figures.
# Extra arguments go to each bench.
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
for bench in bench/[!_]*.py; do
  [ "$(basename "$bench")" = common.py ] && continue
  [ "$(basename "$bench")" = safety_soak.py ] && continue      # its own target: make soak
  [ "$(basename "$bench")" = e2e.py ] && continue              # its own target: make bench-e2e
  [ "$(basename "$bench")" = e2e_report.py ] && continue       # e2e.py's figures
  python "$bench" "$@"
done
