"""The `worldmodel` program: subcommands listed with one line each, bad input exits non-zero."""

from __future__ import annotations

import subprocess
import sys

from training.cli import COMMANDS


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "training.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in COMMANDS:
        assert name in out.stdout
