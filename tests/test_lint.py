"""Linting as a test (the ros2/examples habit): ruff over every Python file of the repo."""
from pathlib import Path
import shutil
import subprocess

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_is_clean():
    ruff = shutil.which('ruff')
    assert ruff, 'ruff is pinned in requirements/test.txt; run make setup'
    result = subprocess.run([ruff, 'check', '--output-format', 'concise', str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
