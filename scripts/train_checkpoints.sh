#!/usr/bin/env bash
# Regenerate the shipped retargeting checkpoints (src/face_retarget/checkpoints/<robot>/) with
# the training pipeline's bootstrap preset on each robot's twin: delay probe, static poses,
# three model-driven iterations from the bundled human take, then the ship stage (MLP and
# Transformer on the same final data, the linear map on the static pairs); every stage is
# recorded as rosbag2 bags under out/bootstrap/. `--ship` is what sends the checkpoint set
# into the shipped folder (without it the pipeline writes only under out/); the loop's
# report and plot go beside them (bootstrap.md, bootstrap.png). About 35 minutes per robot on
# 2 idle CPU cores; resumable (rerun to continue). Extra arguments go to
# face-retarget-bootstrap. The shipped set predates the keyed-seed pipeline: a rerun trains
# a set of slightly different figures (README, Training).
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
for robot in hobbs micheal ameca; do
  face-retarget-bootstrap --robot "$robot" --out out/bootstrap --ship "$@"
done
