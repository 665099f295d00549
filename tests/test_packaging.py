"""The built wheel carries the gymnasium start-up hook at the top of site-packages, so that
`gymnasium.make("worldmodel/...")` works after `pip install` without importing our package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_wheel_installs_the_gymnasium_hook(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("worldmodel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "worldmodel-gym.pth" in names and "worldmodel_gym_hook.py" in names
    line = zipfile.ZipFile(wheel).read("worldmodel-gym.pth").decode().strip()
    assert line.startswith("import ") and "worldmodel_gym_hook" in line  # site executes only "import" lines


def test_the_tree_is_linted_and_formatted():
    """`make lint`: ruff's checks pass and every file is as `ruff format` writes it."""
    import shutil

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the dev extra brings it)")
    for args in (["check", "."], ["format", "--check", "."]):
        out = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True)
        assert out.returncode == 0, f"ruff {' '.join(args)}:\n{out.stdout[-2000:]}{out.stderr[-1000:]}"
