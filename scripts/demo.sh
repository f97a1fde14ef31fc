#!/usr/bin/env bash
# The shadowing demo on its embedded defaults: the stand-in iPhone sends the bundled real
# Live Link Face take as real UDP packets; the receiver publishes the human face (neutral
# calibration from the take or captured live); the ExFace diffusion model (shipped checkpoint)
# retargets it; the actuation node drives the robot's digital twin through the safety layer;
# the recorder writes the session to a rosbag2 bag; the dashboard shows it in a browser.
# At the end: side-by-side video, summary (JSON + markdown) and the bag in the output folder.
#   make demo                                   # 30 s, Micheal, ExFace, stand-in iPhone
#   make demo ARGS="--robot ameca --model mlp"  # another robot / model
#   make demo ARGS="--duration 0"               # until Ctrl-C
#   make demo ARGS="--input udp --allow 192.168.1.23"  # a real iPhone running Live Link Face
#   make demo ARGS="--input take --take my.csv" # a take file played onto the topics
#   make demo ARGS="--start 0"                  # the bundled take from its beginning
#   options: --port UDP_PORT --dashboard-port N --out DIR (default out/demo/<date-time>)
#   --allow ADDR[,ADDR|SUBNET]: with --input udp, the phone(s) the receiver accepts (required:
#   udp listens on every interface, 0.0.0.0, and takes frames from these senders only)
# The bundled take starts at its held-out part (from 94 s: no shipped model trained on it, the
# part face-retarget-eval scores), the performer's neutral taken from the take's first second.
set -euo pipefail
cd "$(dirname "$0")/.."
duration=30
robot=micheal
model=exface
input=standin
take=""
start=""
port=11111
allow=""
dashboard_port=8080
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --robot) robot=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --input) input=$2; shift 2 ;;
    --take) take=$2; shift 2 ;;
    --start) start=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --allow) allow=$2; shift 2 ;;
    --dashboard-port) dashboard_port=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "demo: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
standin=false
take_player=false
bind_address=127.0.0.1
case "$input" in
  standin) standin=true ;;
  udp)
    if [ -z "$allow" ]; then
      echo "demo: --input udp listens on the network: give the phone's address with --allow" \
        "(e.g. --allow 192.168.1.23, or a subnet --allow 192.168.1.0/24)" >&2
      exit 2
    fi
    bind_address=0.0.0.0 ;;
  take) take_player=true ;;
  *) echo "demo: --input is standin, udp or take" >&2; exit 2 ;;
esac
# shellcheck disable=SC1091
. scripts/env.sh
if [ -z "$start" ]; then
  if [ -z "$take" ] && [ "$input" != udp ]; then
    start=$(python -c 'from face_retarget.recipe import TRAIN_END_S; print(TRAIN_END_S)')
  else
    start=0
  fi
fi
# Each run keeps its own folder (a bag is never overwritten); out/demo/latest points at it.
if [ -z "$out" ]; then
  out=out/demo/$(date +%Y%m%d_%H%M%S)
  mkdir -p out/demo
  ln -sfn "$(basename "$out")" out/demo/latest
fi
if [ -e "$out/bag" ]; then
  echo "demo: $out/bag exists; choose another --out" >&2
  exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
# The dashboard's port: the one asked for, or a free one if it is taken.
dashboard_port=$(python - "$dashboard_port" <<'EOF'
import socket, sys
wanted = int(sys.argv[1])
for port in (wanted, 0):
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            continue
        print(sock.getsockname()[1])
        break
EOF
)
# The dashboard's per-run token: the page may press the buttons only when opened with it
# (the environment, unlike node parameters, is not visible to other users in ps).
FACE_DASHBOARD_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')
export FACE_DASHBOARD_TOKEN
echo "demo: dashboard at http://127.0.0.1:$dashboard_port/?token=$FACE_DASHBOARD_TOKEN"
# An e-stop pressed in an earlier run is still latched (it survives restarts): say so first.
estop_file=${FACE_STATE_DIR:-$HOME/.local/share/face_shadowing/state}/estop-$robot.json
if [ -e "$estop_file" ] && ! grep -q '"estop": false' "$estop_file"; then
  echo "demo: $robot is E-STOPPED (latched in $estop_file): the face holds until you press" \
       "Resume on the dashboard (or call /face/actuation/reset, then /face/actuation/resume)"
fi
# Neutral calibration (ExFace III-A): a recorded take opens on the performer's resting face.
# Played from later on, its neutral is computed from that first second before the start;
# from its beginning (or a real phone), it is captured live once the nodes run.
live_neutral=true
if [ "$input" != udp ] && [ "$(python -c "print(float('$start') > 0)")" = True ]; then
  face-capture-neutral --take "$take" --frames 30 --profile performer --dir "$out/calibration"
  live_neutral=false
fi

# `name:=` with nothing after it is malformed for ros2 launch and face-launch alike: an empty
# value is left to the launch file's default (empty) instead.
face-launch launch/shadow.launch.yaml "robot:=$robot" "model:=$model" "udp_port:=$port" \
  "livelink_bind_address:=$bind_address" ${allow:+"livelink_allow:=$allow"} \
  "standin:=$standin" "take_player:=$take_player" ${take:+"take:=$take"} \
  "performer_calibration_dir:=$out/calibration" "dashboard_port:=$dashboard_port" \
  "record:=true" "bag:=$out/bag" "standin_delay:=6.0" "start:=$start" \
  --log-dir "$out/logs" > "$out/launch.log" 2>&1 &
runner=$!
stop_runner() {
  if kill -0 "$runner" 2>/dev/null; then
    kill -INT "$runner" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
  fi
}
trap stop_runner EXIT
trap 'echo; echo "demo: stopping"' INT
trap 'exit 143' TERM

case "$input" in
  standin) echo "demo: stand-in iPhone (${take:-bundled take} from ${start} s) -> UDP $port -> livelink_receiver -> retarget ($model) -> actuation -> $robot twin" ;;
  udp) echo "demo: listening for Live Link Face on UDP 0.0.0.0:$port (every interface), frames accepted only from $allow and one device (the first seen); set the app's target to this machine's address" ;;
  take) echo "demo: take player (${take:-bundled take} from ${start} s) -> retarget ($model) -> actuation -> $robot twin" ;;
esac
echo "demo: recording into $out/bag; node logs in $out/logs; Ctrl-C to stop"
if $live_neutral; then
  # The stand-in waits 6 s: every node is up (the retarget node, loading PyTorch, takes ~3 s)
  # and the capture is waiting when the take's first frames arrive.
  face-capture-neutral --profile performer --frames 30 --timeout 15 ||
    echo "demo: no neutral captured; the robot follows raw blendshapes"
fi
# The terminal summary until the duration is reached or Ctrl-C (which also ends the monitor).
if [ -t 1 ]; then
  face-monitor --duration "$duration" || true
else
  face-monitor --duration "$duration" | tee "$out/monitor.log" || true
fi
trap - INT
stop_runner
trap - EXIT
echo "demo: stopped every node; writing the session report"
face-bag-recover "$out/bag" > /dev/null     # a no-op for a bag closed cleanly
face-session-report "$out/bag" --out "$out"
echo "demo: outputs in $out: side_by_side.mp4, summary.json, summary.md, bag/"
