#!/usr/bin/env bash
# Regenerate the shipped retargeting checkpoints (src/face_retarget/checkpoints/<robot>/) with
# the bootstrap loop on each robot's twin: static poses, then three model-driven iterations
# from the bundled human take, every stage recorded as rosbag2 bags under out/bootstrap/.
# The final ExFace model is shipped, with the MLP and Transformer trained on the same final
# data and the linear map on the static pairs; the loop's report and plot go beside them
# (bootstrap.md, bootstrap.png). About 35 minutes per robot on 2 idle CPU cores; resumable
# (rerun to continue). Extra arguments go to face-retarget-bootstrap.
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
for robot in hobbs micheal ameca; do
  face-retarget-bootstrap --robot "$robot" --out out/bootstrap --ship "$@"
done
