# Sourced by the other scripts: the workspace environment (venv + colcon install).
# The venv's and colcon's setup scripts read unset variables, so they are sourced without -u.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
set +u
# shellcheck disable=SC1091
. .venv/bin/activate
# shellcheck disable=SC1091
. install/setup.bash
set -u
# Keep ROS traffic on this machine unless the user says otherwise.
export ROS_AUTOMATIC_DISCOVERY_RANGE=${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}
# Shared-memory segments large enough for a raw 640x480 image (best effort lost 2/3 without).
export FASTRTPS_DEFAULT_PROFILES_FILE=${FASTRTPS_DEFAULT_PROFILES_FILE:-$PWD/src/face_common/config/fastdds.xml}
