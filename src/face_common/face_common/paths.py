"""Where a package's data files are: its installed share directory, else the source tree
(a development checkout run without install/setup.bash sourced)."""
from pathlib import Path


def share_path(package: str, relative: str, source: Path) -> Path:
    """share/<package>/<relative> when installed and present, else `source`."""
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(package)) / relative
        if installed.exists():
            return installed
    except (ImportError, LookupError, ValueError, OSError):
        pass
    return source
