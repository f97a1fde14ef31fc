#!/usr/bin/env bash
# Run every benchmark under bench/ and print its figures. Extra arguments go to each bench.
set -euo pipefail
cd "$(dirname "$0")/.."
set +u
# shellcheck disable=SC1091
. .venv/bin/activate
# shellcheck disable=SC1091
. install/setup.bash
set -u
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
for bench in bench/[!_]*.py; do
  [ "$(basename "$bench")" = common.py ] && continue
  python "$bench" "$@"
done
