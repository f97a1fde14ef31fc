#!/usr/bin/env bash
# Run every test of the workspace (unit, property, node, launch). Assumes scripts/setup.sh ran
# (make test does that). Extra arguments go to pytest. Artifacts (PNGs, logs) go to artifacts/.
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
mkdir -p artifacts
# Keep test traffic on this machine and away from a demo running beside the tests.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( (RANDOM % 90) + 10 ))}
export PYTHONUNBUFFERED=1
# A fresh e-stop state folder (FACE_STATE_DIR): no run starts the next one e-stopped.
FACE_STATE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/face-state.XXXXXX")
export FACE_STATE_DIR
trap 'rm -rf "$FACE_STATE_DIR"' EXIT
status=0
python -m pytest src/*/test tests "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
