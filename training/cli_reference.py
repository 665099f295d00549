"""The CLI reference as Markdown, generated from the subcommands' tyro config dataclasses.

Every option is a dataclass field with a docstring (ARCHITECTURE.md, *Conventions*); this walks them — nested
config dataclasses become `--prefix.option` as tyro names them — so the reference cannot drift from the code.
`python -m training.cli_reference` prints it; the documentation build inserts it into `reference/cli.md`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
import typing
from typing import Any

from training.cli import COMMANDS, _load


def field_docstrings(cls: type) -> dict[str, str]:
    """{field name: the docstring under it} for a dataclass, from its source (and its bases')."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split())
    return docs


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the annotation strings
        return {}


def _type_text(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", repr(annotation))
    text = re.sub(r"tyro\.conf\.Positional\[(.*)\]", r"\1", str(text))
    return text.replace("typing.", "").replace("pathlib.", "")


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return ""
    else:
        return "required"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) if value else "()"
    return repr(value) if isinstance(value, str) else str(value)


def _is_positional(f: dataclasses.Field, hint: Any) -> bool:
    return "Positional" in str(f.type) or "PositionalRequiredArgs" in repr(hint)


def options(cls: type, prefix: str = "") -> list[dict[str, str]]:
    """One row per option of a config dataclass, nested dataclasses flattened as tyro does."""
    docs, hints, rows = field_docstrings(cls), _hints(cls), []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint = hints.get(f.name, f.type)
        nested = hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None
        if nested is not None:
            rows += options(nested, f"{prefix}{f.name.replace('_', '-')}.")
            continue
        if "Any" in str(f.type):  # not parseable from a command line: tyro leaves it out (it has a default)
            continue
        name = f"{prefix}{f.name.replace('_', '-')}"
        if _is_positional(f, hint):
            flag = f.name.upper()
        elif _type_text(f.type) == "bool":
            flag = f"--{name} / --{prefix}no-{f.name.replace('_', '-')}"
        else:
            flag = f"--{name}"
        rows.append(
            {
                "flag": flag,
                "type": _type_text(f.type),
                "default": _default_text(f),
                "doc": docs.get(f.name, ""),
                "positional": str(_is_positional(f, hint)),
            }
        )
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cli_markdown() -> str:
    """The whole reference: one section per subcommand, in `worldmodel --help`'s order."""
    out = []
    for name, (_, _, _, summary) in COMMANDS.items():
        cls, _ = _load(name)
        rows = options(cls)
        positional = [r["flag"] for r in rows if r["positional"] == "True"]
        out.append(f"## `worldmodel {name}`\n")
        out.append(f"{summary}\n")
        doc = inspect.getdoc(cls)
        if doc and doc.strip() != summary.strip():
            out.append(f"{doc}\n")
        out.append(f"```\nworldmodel {name} {' '.join(positional + ['[OPTIONS]'])}\n```\n")
        out.append("| argument | type | default | what |\n|---|---|---|---|")
        for r in rows:
            default = f"`{_cell(r['default'])}`" if r["default"] not in ("", "required") else r["default"]
            out.append(f"| `{_cell(r['flag'])}` | `{_cell(r['type'])}` | {default} | {_cell(r['doc'])} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(cli_markdown())
