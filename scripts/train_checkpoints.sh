#!/usr/bin/env bash
# Regenerate the shipped retargeting checkpoints (src/face_retarget/checkpoints/<robot>/) with
# the training pipeline's bootstrap preset on each robot's twin: delay probe, static poses,
# three model-driven iterations driven by two performers (alex_rom_3.csv up to 94 s, its tail
# held out; apfel.csv whole), then the ship stage (MLP and Transformer on the same final data,
# the linear map on the static pairs). facial.csv is never used: it is the unseen performer
# every evaluation holds out. Every stage is recorded as rosbag2 bags under out/bootstrap/.
# `--ship` is what sends the checkpoint set into the shipped folder (without it the pipeline
# writes only under out/); the loop's report and plot go beside them (bootstrap.md,
# bootstrap.png). About 35 minutes per robot on 2 idle CPU cores; resumable (rerun to
# continue). Extra arguments go to face-retarget-bootstrap; ROBOTS='micheal ameca' picks robots.
# The control arm (--no-compare-interpolation skips it) is about 40 % of the time; it never
# changes the shipped models (every random draw is keyed by stage and purpose).
set -euo pipefail
# shellcheck disable=SC1091
. "$(dirname "$0")/env.sh"
for robot in ${ROBOTS:-hobbs micheal ameca}; do
  face-retarget-bootstrap --robot "$robot" --out out/bootstrap --ship \
    --take src/face_capture/data/takes/alex_rom_3.csv \
    --take src/face_capture/data/takes/apfel.csv "$@"
done
