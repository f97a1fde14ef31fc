#!/usr/bin/env bash
# Run every test of the workspace (unit, property, node, launch). Assumes scripts/setup.sh ran
# (make test does that). Extra arguments go to pytest. Artifacts (PNGs, logs) go to artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
# The venv and colcon's setup scripts read unset variables: source them without -u.
set +u
# shellcheck disable=SC1091
. .venv/bin/activate
# shellcheck disable=SC1091
. install/setup.bash
set -u
mkdir -p artifacts
# Keep test traffic on this machine and away from a demo running beside the tests.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 10 ))}
export PYTHONUNBUFFERED=1
status=0
python -m pytest src/*/test tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
