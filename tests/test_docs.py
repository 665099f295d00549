"""The documentation: the site builds with `mkdocs build --strict` (broken links, anchors, API references
and the generated pages all fail it), the CLI reference matches what tyro parses, the README stays a
front page."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.cli import COMMANDS, main
from training.cli_reference import cli_markdown, options

ROOT = Path(__file__).resolve().parents[1]


def test_mkdocs_strict_build(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    env["NO_MKDOCS_2_WARNING"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = tmp_path / "site"
    cli = (site / "reference" / "cli" / "index.html").read_text()
    for name in COMMANDS:
        assert f"worldmodel {name}" in cli, name
    assert "SceneEnvConfig" in (site / "reference" / "api" / "envs" / "index.html").read_text()
    assert "CPU rasterizer" in (site / "benchmarks" / "index.html").read_text()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_cli_reference_flags_exist(name, capsys):
    """Every option the generated reference lists is one that `worldmodel NAME --help` shows."""
    from training.cli import _load

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([name, "--help"])
    help_text = out.getvalue() + capsys.readouterr().out
    rows = options(_load(name)[0])
    assert rows
    for row in rows:
        if row["positional"] == "True":
            continue
        for flag in row["flag"].split(" / "):
            assert flag in help_text, f"{name}: {flag} is in the reference but not in --help"


def test_cli_reference_covers_every_subcommand():
    text = cli_markdown()
    for name in COMMANDS:
        assert f"## `worldmodel {name}`" in text


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, len(lines)
    for link in ("docs/getting-started.md", "BENCHMARKS.md", "worldmodel view"):
        assert link in "\n".join(lines)
