"""Where a package's data files are (profiles, the bundled take, checkpoints, web pages,
message definitions), found one way by every package."""
import os
from pathlib import Path


def share_path(package: str, relative: str, source: Path) -> Path:
    """`source` (the file or folder in the source tree) when it exists, else
    share/<package>/<relative> of the installed package when that exists, else `source`.

    The source tree comes first: in a development checkout it is always current and it is
    where tools write (make checkpoints); an installed package has no source tree beside
    its modules, so it finds its share directory."""
    source = Path(source)
    if source.exists():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        installed = Path(get_package_share_directory(package)) / relative
        if installed.exists():
            return installed
    except (ImportError, LookupError, ValueError, OSError):
        pass
    return source


def user_data_dir(env_var: str, folder: str) -> Path:
    """$env_var when set, else ~/.local/share/face_shadowing/<folder>: where the stack keeps
    what it learns on this machine (robot calibrations, the e-stop latch)."""
    configured = os.environ.get(env_var)
    return Path(configured or f'~/.local/share/face_shadowing/{folder}').expanduser()
