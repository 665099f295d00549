"""Environment options given on the command line: one parser, one error text."""

from __future__ import annotations

import json
from typing import Any

from wmcore.errors import UserInputError


def parse_env_kwargs(text: str, flag: str = "--env-kwargs") -> dict[str, Any]:
    """A JSON object of keyword arguments for an environment (any Gymnasium id accepts its own), e.g.
    '{"repeat_action_probability": 0.0}' or SceneEnv options '{"width": 40, "goal": [1.8, 1.5]}'."""

    def no_constant(name: str) -> Any:
        raise UserInputError(f"{flag} {text!r}: {name} is not a usable value; give finite numbers")

    try:
        kwargs = json.loads(text, parse_constant=no_constant)
    except json.JSONDecodeError as e:
        raise UserInputError(
            f'{flag} {text!r} is not valid JSON ({e}); write a JSON object, e.g. \'{{"width": 64, "height": 64}}\''
        ) from e
    if not isinstance(kwargs, dict):
        raise UserInputError(
            f'{flag} {text!r}: give a JSON object of keyword arguments, e.g. \'{{"width": 64, "height": 64}}\''
        )
    return kwargs
