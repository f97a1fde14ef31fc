"""Where the bundled real take lives, installed or in the source tree."""
from pathlib import Path

from face_common.paths import share_path

BUNDLED_TAKE = 'data/takes/alex_rom_3.csv'


def bundled_take_path() -> Path:
    """The real Live Link Face take shipped with face_capture (MIT, LICENSE beside it)."""
    return share_path('face_capture', BUNDLED_TAKE,
                      Path(__file__).resolve().parent.parent / BUNDLED_TAKE)
