"""One exception type for bad user input, so the CLI can print it cleanly and exit non-zero."""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user: the message names the file or value and the remedy."""


class UserValueError(UserInputError, ValueError):
    """A bad value given to a Python API that documents ValueError (the Gymnasium environments, Scene
    queries): callers catching ValueError still do, and the CLI prints it as one line like any
    UserInputError."""
