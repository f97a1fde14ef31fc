#!/usr/bin/env bash
# Regenerate the shipped retargeting checkpoints (src/face_retarget/checkpoints/<robot>/):
# ExFace, MLP, Transformer and the linear map for each twin robot, about 8 minutes per robot
# on 2 CPU cores. Extra arguments go to face-retarget-train (e.g. --steps 1000).
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
for robot in hobbs micheal ameca; do
  face-retarget-train --robot "$robot" --steps 3000 "$@"
done
