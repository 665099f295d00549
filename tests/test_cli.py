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


def test_positional_arguments_are_named_and_every_run_folder_is_out(capsys):
    """`--help` names each positional argument (MODEL DATASET, not PATH PATH), and every command that writes a
    run takes its folder as --out."""
    import dataclasses
    import typing

    import pytest

    from training.cli import _load, main

    for name in COMMANDS:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        usage = capsys.readouterr().out.split("\n", 1)[0]
        positionals = usage.split("OPTIONS]")[-1].split()
        assert not {"PATH", "STR", "INT", "FLOAT"} & set(positionals), (name, usage)
        cls = _load(name)[0]
        fields = {f.name for f in dataclasses.fields(cls)}
        assert "output" not in fields, name
        hints = typing.get_type_hints(cls)
        if "out" in fields:
            assert "Path" in str(hints["out"]), name


def test_help_text_has_no_mid_sentence_line_breaks():
    """Every option's help, as --help prints it, runs on across the docstring's line breaks."""
    import dataclasses
    import re
    import typing

    from tyro import _docstrings

    from training.cli import _load

    seen, broken = set(), []

    def walk(cls):
        if cls in seen or not dataclasses.is_dataclass(cls):
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            text = _docstrings.get_field_docstring(cls, f.name, ()) or ""
            if re.search(r"[a-z,;]\n[a-z(]", text):
                broken.append(f"{cls.__name__}.{f.name}")
            walk(hints.get(f.name))

    for name in COMMANDS:
        walk(_load(name)[0])
    assert len(seen) > len(COMMANDS) and not broken, broken
