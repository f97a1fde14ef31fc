"""Neutral-face calibration (ExFace paper, III-A): capture the performer's neutral face, then
express every frame relative to it.

Blendshapes: calibrated = clip((raw - neutral) / (1 - neutral), 0, 1), so a channel that rests
at 0.2 on this performer reads 0 at rest and still reaches 1 at its extreme.
Rotations (head, eyes): calibrated = raw - neutral, never clipped.

Profiles are JSON files, one per performer, in a directory; the name of the active one is kept
in a file beside them so it survives restarts.
"""
from dataclasses import dataclass
import datetime
import json
from pathlib import Path
import re

import numpy as np

from face_common.arkit import CHANNEL_NAMES, NUM_BLENDSHAPES, NUM_CHANNELS
from face_common.atomic import write_atomic

_ACTIVE_FILE = 'active_profile'
# Full match: '$' would also accept a trailing newline ('alice\n'). A leading letter or digit
# keeps names off '.', '..' and hidden files (the store's own temporary files start with '.').
_SAFE_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')
_MIN_SPAN = 1e-3
_MAX_NEUTRAL = 1e3           # blendshapes are 0..1, rotations radians: far inside


class CalibrationError(ValueError):
    """A profile that cannot be captured, saved or loaded."""


@dataclass
class NeutralProfile:
    name: str
    neutral: np.ndarray        # (61,) float32, wire order
    frames: int
    created: str

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Calibrate one (61,) frame or a (N, 61) batch."""
        raw = np.asarray(raw, dtype=np.float32)
        out = np.empty_like(raw)
        neutral_shapes = self.neutral[:NUM_BLENDSHAPES]
        span = np.maximum(1.0 - neutral_shapes, _MIN_SPAN)
        out[..., :NUM_BLENDSHAPES] = np.clip(
            (raw[..., :NUM_BLENDSHAPES] - neutral_shapes) / span, 0.0, 1.0)
        out[..., NUM_BLENDSHAPES:] = raw[..., NUM_BLENDSHAPES:] - self.neutral[NUM_BLENDSHAPES:]
        return out

    def to_json(self) -> dict:
        return {'name': self.name, 'frames': self.frames, 'created': self.created,
                'neutral': {n: float(v) for n, v in zip(CHANNEL_NAMES, self.neutral, strict=True)}}

    @classmethod
    def from_json(cls, data: dict) -> 'NeutralProfile':
        try:
            neutral = np.array([float(data['neutral'][n]) for n in CHANNEL_NAMES])
            profile = cls(str(data['name']), neutral, int(data['frames']), str(data['created']))
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise CalibrationError(f'profile file is missing or has a bad field: {exc}') from None
        if not (np.abs(neutral) <= _MAX_NEUTRAL).all():     # NaN fails this too
            raise CalibrationError(f'profile {profile.name} holds values that are not finite '
                                   f'or beyond ±{_MAX_NEUTRAL:g}')
        profile.neutral = neutral.astype(np.float32)
        return profile


def check_name(name: str) -> str:
    """The name, if it is safe as a file name in the profile folder; else CalibrationError."""
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        raise CalibrationError(f'profile name {name!r} must be 1-64 letters, digits, ".", "_" '
                               'or "-", starting with a letter or digit')
    return name


class NeutralCapture:
    """Collects tracked frames of a neutral face; the profile is their per-channel median
    (robust to a blink or a twitch during capture)."""

    def __init__(self, name: str, num_frames: int):
        if num_frames < 1:
            raise CalibrationError('a neutral capture needs at least one frame')
        self.name = check_name(name)
        self.num_frames = num_frames
        self._frames = []

    @property
    def done(self) -> bool:
        return len(self._frames) >= self.num_frames

    @property
    def collected(self) -> int:
        return len(self._frames)

    def add(self, raw: np.ndarray) -> None:
        raw = np.asarray(raw, dtype=np.float32)
        if raw.shape != (NUM_CHANNELS,) or not np.isfinite(raw).all():
            raise CalibrationError('neutral frames must be 61 finite values')
        if not self.done:
            self._frames.append(raw.copy())

    def profile(self) -> NeutralProfile:
        if not self._frames:
            raise CalibrationError('no frames captured')
        neutral = np.median(np.stack(self._frames), axis=0).astype(np.float32)
        created = datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')
        return NeutralProfile(self.name, neutral, len(self._frames), created)


def neutral_from_frames(name: str, frames: np.ndarray) -> NeutralProfile:
    """A profile from recorded frames of the performer at rest (e.g. a take's first second),
    computed exactly as a live capture would."""
    capture = NeutralCapture(name, max(1, len(frames)))
    for frame in frames:
        capture.add(frame)
    return capture.profile()


class ProfileStore:
    """Per-performer profiles on disk and the name of the active one."""

    def __init__(self, directory):
        self.directory = Path(directory).expanduser()

    def path(self, name: str) -> Path:
        target = self.directory / f'{check_name(name)}.json'
        if target.resolve().parent != self.directory.resolve():
            raise CalibrationError(f'profile {name!r} would be written outside {self.directory}')
        return target

    def names(self):
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob('*.json'))

    def save(self, profile: NeutralProfile) -> Path:
        target = self.path(profile.name)
        write_atomic(target, json.dumps(profile.to_json(), indent=1))
        return target

    def load(self, name: str) -> NeutralProfile:
        target = self.path(name)
        try:
            data = json.loads(target.read_text())
        except FileNotFoundError:
            raise CalibrationError(f'no calibration profile named {name!r} in '
                                   f'{self.directory}') from None
        except (OSError, ValueError, RecursionError) as exc:    # not UTF-8, not JSON, too deep
            raise CalibrationError(f'cannot read {target}: {exc}') from None
        return NeutralProfile.from_json(data)

    def active_name(self) -> str:
        """Name of the active profile, '' when none is selected."""
        try:
            return (self.directory / _ACTIVE_FILE).read_text().strip()
        except FileNotFoundError:
            return ''
        except (OSError, ValueError) as exc:
            raise CalibrationError(f'cannot read the active profile name: {exc}') from None

    def set_active(self, name: str) -> None:
        if name:
            self.load(name)                    # refuse to activate what cannot be loaded
        write_atomic(self.directory / _ACTIVE_FILE, name + '\n')

    def load_active(self):
        """The active profile, or None when none is selected."""
        name = self.active_name()
        return self.load(name) if name else None

