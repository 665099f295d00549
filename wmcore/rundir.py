"""Run directories: every command writes its resolved config, a log and JSON-lines metrics
into its own output directory, beside its artifacts."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from wmcore.atomic import write_json

LOG = logging.getLogger("worldmodel")


class RunDir:
    """An output directory with `config.json`, `log.txt` and `metrics.jsonl`."""

    def __init__(self, path: str | Path, config: Any | None = None, *, console: bool = True):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._metrics = open(self.path / "metrics.jsonl", "a", buffering=1)
        self._handler = logging.FileHandler(self.path / "log.txt")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(self._handler)
        if console and not any(getattr(h, "_wm_console", False) for h in root.handlers):
            ch = logging.StreamHandler(sys.stderr)
            ch.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
            ch._wm_console = True  # type: ignore[attr-defined]
            root.addHandler(ch)
        root.setLevel(logging.INFO)
        if config is not None:
            self.write_config(config)

    def write_config(self, config: Any) -> None:
        data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
        write_json(self.path / "config.json", data)

    def log_metrics(self, step: int | None = None, **metrics: Any) -> None:
        """Append one JSON line: {"time": ..., "step": ..., **metrics}."""
        row = {"time": round(time.time(), 3)}
        if step is not None:
            row["step"] = step
        row.update({k: _plain(v) for k, v in metrics.items()})
        self._metrics.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self._metrics.close()
        logging.getLogger().removeHandler(self._handler)
        self._handler.close()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v
