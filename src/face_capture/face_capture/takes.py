"""Live Link Face CSV takes (the app's export): read into wire-order arrays.

Header: Timecode, BlendShapeCount (some exports spell it BlendshapeCount), then the 61 channel
names. The CSV column order differs from the UDP wire order, so columns are mapped by name
(case-insensitive). Timecode is HH:MM:SS:FF.fff with FF counted at 60 fps. Real files hold
short or truncated rows: they are skipped and counted, never guessed.
"""
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from face_common.arkit import CHANNEL_NAMES, NUM_CHANNELS

TIMECODE_FPS = 60.0


class TakeFormatError(ValueError):
    """The file is not a Live Link Face CSV export we can read."""


@dataclass
class Take:
    """A recorded performance: per-frame times (s from the first frame) and 61 channels."""

    name: str
    times: np.ndarray            # (N,) seconds, starting at 0
    frame_numbers: np.ndarray    # (N,) timecode frame counter at 60 fps
    values: np.ndarray           # (N, 61) float32, wire order
    skipped_rows: int = 0

    def __len__(self) -> int:
        return len(self.times)

    @property
    def duration(self) -> float:
        return float(self.times[-1]) if len(self.times) else 0.0

    @property
    def mean_rate(self) -> float:
        return (len(self.times) - 1) / self.duration if self.duration > 0 else 0.0


def parse_timecode(text: str) -> float:
    """'HH:MM:SS:FF.fff' (FF at 60 fps) to seconds. The app stamps the time of day, so every
    field must be in its range: an hour of 10000 would overflow the packets' int32 frame."""
    parts = text.strip().split(':')
    if len(parts) != 4:
        raise ValueError(f'bad timecode {text!r}')
    hours, minutes, seconds = int(parts[0]), int(parts[1]), int(parts[2])
    frames = float(parts[3])
    if not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 60
            and 0 <= frames < TIMECODE_FPS):
        raise ValueError(f'timecode {text!r} is out of range (HH < 24, MM and SS < 60, '
                         f'FF < {TIMECODE_FPS:g})')
    return hours * 3600 + minutes * 60 + seconds + frames / TIMECODE_FPS


def _column_map(header):
    lowered = [h.strip().lower() for h in header]
    if not lowered or lowered[0] != 'timecode':
        raise TakeFormatError('first column must be Timecode')
    columns = []
    for name in CHANNEL_NAMES:
        try:
            columns.append(lowered.index(name.lower()))
        except ValueError:
            raise TakeFormatError(f'column {name} missing from the header') from None
    return np.array(columns)


def _read_rows(reader, path: Path):
    """(stamps, value rows, skipped count) of the complete rows after the header."""
    try:
        header = next(reader)
    except StopIteration:
        raise TakeFormatError(f'{path} is empty') from None
    columns = _column_map(header)
    width = len(header)
    stamps, rows, skipped = [], [], 0
    for row in reader:
        if len(row) < width:
            skipped += 1
            continue
        try:
            stamp = parse_timecode(row[0])
            values = np.array([float(row[c]) for c in columns], dtype=np.float32)
        except ValueError:
            skipped += 1
            continue
        if not np.isfinite(values).all():
            skipped += 1
            continue
        stamps.append(stamp)
        rows.append(values)
    return stamps, rows, skipped


def read_take(path) -> Take:
    """Read a Live Link Face CSV export; rows that are short, truncated or unparsable are
    skipped and counted in Take.skipped_rows."""
    path = Path(path)
    with path.open(newline='', encoding='utf-8-sig') as handle:
        reader = csv.reader(handle)
        try:
            stamps, rows, skipped = _read_rows(reader, path)
        except UnicodeDecodeError:
            raise TakeFormatError(f'{path} is not UTF-8 text (bad bytes near line '
                                  f'{reader.line_num + 1})') from None
        except csv.Error as exc:            # e.g. a field over the csv module's 128 KiB limit
            raise TakeFormatError(f'{path} line {reader.line_num}: {exc}') from None
    if not rows:
        raise TakeFormatError(f'{path} holds no complete frame')
    stamps = np.asarray(stamps)
    order = np.argsort(stamps, kind='stable')
    stamps = stamps[order]
    times = stamps - stamps[0]
    frame_numbers = np.round(stamps * TIMECODE_FPS).astype(np.int64)
    values = np.stack(rows)[order]
    return Take(path.stem, times, frame_numbers, values.reshape(-1, NUM_CHANNELS), skipped)
