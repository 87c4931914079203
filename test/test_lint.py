"""The linters as tests, configured as ament_flake8 and ament_pep257 apply them."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = ['selfimprove_ros', 'launch', 'test', 'setup.py']
# ament_pep257's default: missing docstrings are not errors, formatting is.
PEP257_IGNORE = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'


def _run(*args):
    return subprocess.run([sys.executable, '-m', *args], cwd=ROOT, capture_output=True,
                          text=True)


def test_flake8():
    result = _run('flake8', '--max-line-length=99', *PATHS)
    assert result.returncode == 0, f'flake8 found problems:\n{result.stdout}{result.stderr}'


def test_pep257():
    result = _run('pydocstyle', '--convention=pep257', f'--add-ignore={PEP257_IGNORE}', *PATHS)
    assert result.returncode == 0, f'pep257 found problems:\n{result.stdout}{result.stderr}'
