"""Replacing a file so that a crash, a full disk or a power cut leaves either the old file
or the new one, never half of one (state and calibration files are read at the next start)."""
import os
from pathlib import Path
import tempfile


def write_atomic(path, data: str | bytes) -> Path:
    """Write `data` to a temporary file beside `path`, fsync it, rename it over `path`, then
    fsync the folder so the rename itself survives a power cut. Creates the folder; raises
    OSError (read-only folder, full disk) with `path` unchanged and no temporary file left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path
