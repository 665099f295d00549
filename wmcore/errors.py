"""One exception type for bad user input, so the CLI can print it cleanly and exit non-zero."""

from __future__ import annotations


class UserInputError(Exception):
    """Bad input from the user: the message names the file or value and the remedy."""
