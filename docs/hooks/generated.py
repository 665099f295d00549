"""MkDocs hook: the pages generated from the repository.

- `<!-- cli-reference -->` becomes the CLI reference, generated from the subcommands' tyro configs
  (`training/cli_reference.py`);
- `<!-- benchmarks -->` becomes BENCHMARKS.md (the repository's page of current figures), its links into
  `benchmarks/log/` shown as paths, since the log is not part of the site.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_reference() -> str:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from training.cli_reference import cli_markdown

    return cli_markdown()


def benchmarks() -> str:
    text = (ROOT / "BENCHMARKS.md").read_text()
    text = text.split("\n", 1)[1]  # the page has its own title
    return re.sub(r"\[([^\]]*)\]\((benchmarks/log/[^)]*)\)", r"\1 (`\2`)", text)


GENERATED = {"<!-- cli-reference -->": cli_reference, "<!-- benchmarks -->": benchmarks}


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001 (MkDocs' hook signature)
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown
