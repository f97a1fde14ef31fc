"""Where the bundled real take lives, installed or in the source tree."""
from pathlib import Path

BUNDLED_TAKE = 'data/takes/alex_rom_3.csv'


def bundled_take_path() -> Path:
    """The real Live Link Face take shipped with face_capture (MIT, LICENSE beside it)."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        try:
            installed = Path(get_package_share_directory('face_capture')) / BUNDLED_TAKE
            if installed.is_file():
                return installed
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return Path(__file__).resolve().parent.parent / BUNDLED_TAKE
