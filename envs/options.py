"""Environment options given on the command line: one parser, one error text."""

from __future__ import annotations

import json
from typing import Annotated, Any

from tyro.constructors import PrimitiveConstructorSpec

from wmcore.errors import UserInputError


def parse_env_kwargs(text: str | dict[str, Any], flag: str = "--env-kwargs") -> dict[str, Any]:
    """A JSON object of keyword arguments for an environment (any Gymnasium id accepts its own), e.g.
    '{"repeat_action_probability": 0.0}' or SceneEnv options '{"width": 40, "goal": [1.8, 1.5]}'; a dict
    (from Python callers, or already parsed on the command line) is checked the same way and returned."""
    if isinstance(text, dict):
        try:
            return parse_env_kwargs(json.dumps(text), flag)
        except TypeError as e:  # a value JSON cannot hold (a Path, an array)
            raise UserInputError(f"{flag} {text!r}: {e}; give numbers, strings, lists and booleans") from e

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


EnvKwargs = Annotated[
    dict[str, Any],
    PrimitiveConstructorSpec(
        nargs=1,
        metavar="JSON",
        instance_from_str=lambda args: parse_env_kwargs(args[0]),
        is_instance=lambda value: isinstance(value, dict),
        str_from_instance=lambda value: [json.dumps(value)],
    ),
]
"""The type of an `env_kwargs` config field: a dict in Python (the demo passes one), a JSON object on the
command line (`--env-kwargs '{"width": 40}'`), parsed and checked by `parse_env_kwargs` either way. Kept as
JSON where any Gymnasium id is accepted; SceneEnv-only commands nest `SceneEnvConfig` instead."""
