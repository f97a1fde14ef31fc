#!/usr/bin/env bash
# The shadowing demo on its embedded defaults: the stand-in iPhone sends the bundled real
# Live Link Face take as real UDP packets; the receiver publishes the human face; the ExFace
# diffusion model (shipped checkpoint) retargets it to the robot; the actuation node drives
# the robot's digital twin through the safety layer. The terminal shows human and robot.
#   make demo                                  # 30 s, Micheal, ExFace, stand-in iPhone
#   make demo ARGS="--robot ameca --model mlp" # another robot / model
#   make demo ARGS="--duration 0"              # until Ctrl-C
#   make demo ARGS="--input udp"               # listen for a real iPhone (Live Link Face)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=30
robot=micheal
model=exface
input=standin
port=11111
out=out/demo
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --robot) robot=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --input) input=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$input" in
  standin) standin=true ;;
  udp) standin=false ;;
  *) echo "demo: --input is standin or udp" >&2; exit 2 ;;
esac
# shellcheck disable=SC1091
. scripts/env.sh
mkdir -p "$out"

face-launch launch/shadow.launch.yaml "robot:=$robot" "model:=$model" "port:=$port" \
  "standin:=$standin" "calibration_dir:=$PWD/$out/calibration" \
  --log-dir "$out/logs" > "$out/launch.log" 2>&1 &
runner=$!
stop_runner() {
  if kill -0 "$runner" 2>/dev/null; then
    kill -INT "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
  fi
}
trap stop_runner EXIT
trap 'exit 130' INT TERM

if [ "$standin" = true ]; then
  echo "demo: stand-in iPhone -> UDP $port -> livelink_receiver -> retarget ($model) -> actuation -> $robot twin"
else
  echo "demo: waiting for Live Link Face on UDP port $port (set the app's target to this machine)"
fi
echo "demo: node logs in $out/logs; Ctrl-C to stop"
# Neutral calibration (ExFace III-A): the take opens on the performer's resting face.
face-capture-neutral --profile performer --frames 30 --timeout 15 ||
  echo "demo: no neutral captured; the robot follows raw blendshapes"
if [ -t 1 ]; then
  face-monitor --duration "$duration"                  # live bars, redrawn in place
else
  face-monitor --duration "$duration" | tee "$out/monitor.log"
fi
stop_runner
echo "demo: done; node summaries:"
grep -h 'send_take:\|calibration:\|model "\|robot "' "$out"/logs/*.log 2>/dev/null || true
