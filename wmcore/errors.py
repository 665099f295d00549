"""One exception type for bad user input, so the CLI can print it cleanly and exit non-zero."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class UserInputError(Exception):
    """Bad input from the user: the message names the file or value and the remedy."""


class UserValueError(UserInputError, ValueError):
    """A bad value given to a Python API that documents ValueError (the Gymnasium environments, Scene
    queries): callers catching ValueError still do, and the CLI prints it as one line like any
    UserInputError."""


@contextmanager
def flags_under(prefix: str) -> Iterator[None]:
    """Re-raise a UserInputError from a nested config's check with its flags as the outer command spells
    them: inside `demo`, reconstruct's `--train.iterations` is `--reconstruct.train.iterations`. So an
    error names only flags that exist on the command the user typed."""
    try:
        yield
    except UserInputError as e:
        raise type(e)(re.sub(r"(?<![\w-])--(?=[a-z])", f"--{prefix}.", str(e))) from e


def require_at_least(*checks: tuple[str, float, float]) -> None:
    """UserInputError naming the first (flag, value, least) whose value is below its least, e.g.
    require_at_least(("--steps", cfg.steps, 1), ("--eval-every", cfg.eval_every, 0))."""
    for name, value, least in checks:
        if value < least:
            raise UserInputError(f"{name} {value}: give {least} or more")


def read_json_in(directory: str | os.PathLike, name: str, missing: str, invalid: str = "invalid JSON ({error})") -> Any:
    """The JSON document `name` of a directory the user gave (a saved model, policy, scene or dataset).
    UserInputError "DIRECTORY: `missing`" when the file is not there (say what the directory should be and where
    it comes from), "FILE: `invalid`" when it is not JSON (`{error}` stands for the parser's message)."""
    path = Path(directory) / name
    if not path.is_file():
        raise UserInputError(f"{directory}: {missing}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: {invalid.replace('{error}', str(e))}") from e
