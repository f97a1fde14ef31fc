"""The latched e-stop survives a node restart (ROS-free): one small JSON file per robot in a
state folder, replaced atomically (face_common.atomic), so a crash or a power cut never
leaves half a file. A state file that exists but cannot be read counts as latched: when in
doubt, the robot starts stopped."""
from datetime import UTC, datetime
import json
from pathlib import Path

from face_actuation.profile import check_robot_name
from face_common.atomic import write_atomic
from face_common.paths import user_data_dir

STATE_DIR_ENV = 'FACE_STATE_DIR'


def default_state_dir() -> Path:
    """$FACE_STATE_DIR, else ~/.local/share/face_shadowing/state."""
    return user_data_dir(STATE_DIR_ENV, 'state')


class EstopStore:
    """Where one robot's latch is kept: <state_dir>/estop-<robot>.json."""

    def __init__(self, robot: str, state_dir=None):
        folder = Path(state_dir) if state_dir else default_state_dir()
        self.path = folder / f'estop-{check_robot_name(robot)}.json'     # inside the folder
        self.robot = robot

    def load(self) -> dict | None:
        """The persisted latch ({'since': ..., 'reason': ...}) or None when not latched."""
        try:
            state = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return {'since': 'unknown', 'reason': f'unreadable state file {self.path}: {exc}'}
        if not isinstance(state, dict):
            return {'since': 'unknown', 'reason': f'malformed state file {self.path}'}
        if state.get('estop') is False:
            return None
        return {'since': str(state.get('since', 'unknown')), 'reason': 'persisted e-stop'}

    def save(self, latched: bool) -> None:
        """Write the latch state; raises OSError (full disk, read-only folder)."""
        write_atomic(self.path, json.dumps({
            'robot': self.robot, 'estop': latched,
            'since': datetime.now(UTC).isoformat(timespec='seconds')}))
