"""The latched e-stop survives a node restart (ROS-free): one small JSON file per robot in a
state folder, replaced atomically (temporary file, fsync, rename), so a crash or a power cut
never leaves half a file. A state file that exists but cannot be read counts as latched:
when in doubt, the robot starts stopped."""
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import re
import tempfile

STATE_DIR_ENV = 'FACE_STATE_DIR'


def default_state_dir() -> Path:
    """$FACE_STATE_DIR, else ~/.local/share/face_shadowing/state."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured) if configured else \
        Path.home() / '.local' / 'share' / 'face_shadowing' / 'state'


class EstopStore:
    """Where one robot's latch is kept: <state_dir>/estop-<robot>.json."""

    def __init__(self, robot: str, state_dir=None):
        folder = Path(state_dir) if state_dir else default_state_dir()
        # the robot name only ever names a file inside the folder
        self.path = folder / f'estop-{re.sub(r"[^A-Za-z0-9_-]", "_", robot)}.json'
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {'robot': self.robot, 'estop': latched,
                 'since': datetime.now(UTC).isoformat(timespec='seconds')}
        fd, temporary = tempfile.mkstemp(prefix=self.path.name, suffix='.tmp',
                                         dir=self.path.parent)
        try:
            with os.fdopen(fd, 'w') as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)       # make the rename durable
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
