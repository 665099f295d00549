"""Run directories: the one place a command opens its output directory.

Every command writes its resolved `config.json`, a `log.txt` and JSON-lines `metrics.jsonl` into its
own output directory, beside its artifacts (and, with `tensorboard=True`, the same numbers as TensorBoard
scalars in `tensorboard/`). `open_run` is how every command gets that directory, so
the rules about a user's files live here and nowhere else:

1. **Validate first.** Opening checks the location only (not a file, not under a file, its folder
   writable) and writes nothing. The command then checks all its inputs and calls `run.start()`;
   a run refused before `start()` leaves the disk exactly as it was.
2. **Never change a run it would not continue.** A non-empty directory is refused unless the command
   resumes it (`resume=True`: train-world-model's checkpoints, collect --append, demo --resume) or
   the user passed `--overwrite`. Overwriting replaces only a previous worldmodel run (a directory
   holding `config.json` or `scene.json`), says what it replaces, and keeps the old run until the
   new one has finished: a failed overwrite puts the old run back.
3. **The resolved config is written when the run starts**, never by a refused run.
4. **A failed run leaves nothing, or a log that says why.** A run that created its directory
   removes it on failure; one that is resumable (`keep_on_failure`, or resuming) keeps what it
   finished and appends the error to `log.txt`.
5. **Staged runs** (`staged=True`, reconstruct) are built in a temporary sibling and renamed into
   place only once complete, so the output is never half-written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from wmcore.atomic import current_umask, write_json, write_text
from wmcore.errors import UserInputError

LOG = logging.getLogger("worldmodel")
RUN_MARKERS = ("config.json", "scene.json")
"""Files that mark a directory as a previous worldmodel run, which --overwrite may replace."""
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Buffer(logging.Handler):
    """Holds the log records of a run that has not started yet, for its log.txt once it does."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def check_output_location(path: str | Path, option: str = "--out") -> Path:
    """Refuse an output path that cannot become a directory, before any work: an existing file, a
    path under a file, or a folder that cannot be written. Creates nothing; returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{option} {path}: is a file, not a directory; give a directory path")
    parent = path
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent != path and not parent.is_dir():
        raise UserInputError(f"{option} {path}: {parent} is a file, so no directory can be made under it")
    probe_root = path if path.is_dir() else parent
    try:  # os.access says yes to root on read-only mounts: try it for real
        probe = tempfile.mkdtemp(prefix=".wm-write-check-", dir=probe_root)
        os.rmdir(probe)
    except OSError as e:
        raise UserInputError(
            f"{option} {path}: cannot write in {probe_root} ({e.strerror or e}); choose a writable location"
        ) from e
    return path


TENSORBOARD_GROUPS = ("stage", "policy", "event")
"""String fields of a metrics row that name its TensorBoard group; other strings (a model-based row's
`collected_with`) are not numbers and are left out."""


class RunDir:
    """An output directory with `config.json`, `log.txt` and `metrics.jsonl` (see the module docstring).

    `RunDir(path, config)` opens and starts at once (for scripts and benchmarks whose inputs need no
    checking); commands use `open_run`, which validates first and starts when the command says so.
    `option` is the flag that named the directory (for messages); `resume` continues a run in it, `overwrite`
    replaces it once this one finishes, `staged` builds the run beside it and swaps it in at the end,
    `keep_on_failure` keeps a failed run's files; `resume_hint` names how the command continues a run (e.g.
    "--append to add episodes to it") in the message that refuses a non-empty directory; `tensorboard` also
    logs metrics to OUT/tensorboard.
    """

    def __init__(
        self,
        path: str | Path,
        config: Any | None = None,
        *,
        console: bool = True,
        option: str = "--out",
        resume: bool = False,
        overwrite: bool = False,
        keep_on_failure: bool = False,
        staged: bool = False,
        start: bool = True,
        resume_hint: str | None = None,
        tensorboard: bool = False,
    ):
        self.final = Path(path)
        self.tensorboard = tensorboard
        self._tb: Any = None
        self._tb_counts: dict[str, int] = {}
        self.config = config
        self.option = option
        self.resume = resume
        self.overwrite = overwrite
        self.keep_on_failure = keep_on_failure
        self.staged = staged
        self.started = False
        self._existed = self.final.exists()
        self._replaced: Path | None = None
        self._metrics = None
        self._handler: logging.Handler | None = None
        check_output_location(self.final, option)
        held = sorted(p.name for p in self.final.iterdir()) if self._existed else []
        self._was_empty = not held
        if held and not resume:
            if not overwrite:
                more = f"{resume_hint}, " if resume_hint else ""
                raise UserInputError(
                    f"{option} {self.final}: already holds {_list(held)}; pass {more}--overwrite to replace that "
                    f"run, or choose another {option}"
                )
            if not any(m in held for m in RUN_MARKERS):
                raise UserInputError(
                    f"{option} {self.final}: holds {_list(held)}, which is not a worldmodel run (no "
                    f"{' or '.join(RUN_MARKERS)}); --overwrite replaces only a previous run, so choose "
                    f"another {option} or move those files yourself"
                )
        self.path = self.final
        self._console(console)
        self._buffer = _Buffer()
        logging.getLogger().addHandler(self._buffer)
        if start:
            self.start()

    # ------------------------------------------------------------------ life cycle
    def start(self, resume_step: int | None = None) -> RunDir:
        """Accept the run: create its directory, write the resolved config, open log.txt (with what was
        logged since opening) and metrics.jsonl. With `resume_step`, metrics rows of later steps (logged
        after the checkpoint the run resumes from) are dropped, so no step is repeated."""
        if self.started:
            return self
        if not self._was_empty and not self.resume:
            # --overwrite: keep the previous run aside until this one has finished.
            self._replaced = _sibling(self.final, "replaced")
            os.rename(self.final, self._replaced)
            LOG.warning(
                "%s %s: replacing the previous run there (--overwrite): %s",
                self.option,
                self.final,
                _list(sorted(p.name for p in self._replaced.iterdir())),
            )
            self._existed = False
        if self.staged:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.path = _sibling(self.final, "tmp")
        self.path.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            _drop_metrics_after(self.path / "metrics.jsonl", resume_step)
        self._metrics = open(self.path / "metrics.jsonl", "a", buffering=1)
        self._handler = logging.FileHandler(self.path / "log.txt")
        self._handler.setFormatter(logging.Formatter(_FORMAT))
        root = logging.getLogger()
        for record in self._buffer.records:
            self._handler.handle(record)
        root.removeHandler(self._buffer)
        root.addHandler(self._handler)
        if self.config is not None:
            self.write_config(self.config)
        self.started = True
        return self

    def finish(self) -> None:
        """The run succeeded: close files; a staged run is renamed into place; a replaced run goes."""
        if not self.started:
            self.start()
        self.close()
        if self.staged:
            if self.final.exists() and not any(self.final.iterdir()):
                self.final.rmdir()
            os.rename(self.path, self.final)
            self.path = self.final
        if self._replaced is not None:
            shutil.rmtree(self._replaced, ignore_errors=True)
            self._replaced = None

    def fail(self, error: BaseException) -> None:
        """The run failed: write why to log.txt, then remove what it created (keeping a resumable run's
        finished work) and put back a run --overwrite was replacing."""
        if isinstance(error, UserInputError):
            line = f"error: {error}"
        elif isinstance(error, KeyboardInterrupt):
            line = "interrupted"
        else:
            line = "".join(traceback.format_exception(type(error), error, error.__traceback__)).rstrip()
        if self.started and self._handler is not None:
            self._handler.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} FAILED {line}\n")
        self.close()
        keep = self.started and (self.resume and self._existed or self.keep_on_failure) and not self.staged
        if keep:
            LOG.info("the run's log, with the error, is in %s", self.path / "log.txt")
        elif self.path != self.final or not self._existed:
            _remove(self.path)
        elif self._was_empty:
            for p in list(self.path.iterdir()):
                _remove(p)
        if self._replaced is not None:
            os.rename(self._replaced, self.final)
            self._replaced = None

    # ------------------------------------------------------------------ writing
    def write_config(self, config: Any) -> None:
        data = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
        write_json(self.path / "config.json", data)

    def log_metrics(self, step: int | None = None, **metrics: Any) -> None:
        """Append one JSON line: {"time": ..., "step": ..., **metrics}."""
        if self._metrics is None:
            raise RuntimeError(f"{self.path}: log_metrics before start()")
        row = {"time": round(time.time(), 3)}
        if step is not None:
            row["step"] = step
        row.update({k: _plain(v) for k, v in metrics.items()})
        self._metrics.write(json.dumps(row) + "\n")
        if self.tensorboard:
            self._scalars(step, metrics)

    def _scalars(self, step: int | None, metrics: dict[str, Any]) -> None:
        """The row's numbers as TensorBoard scalars in RUN/tensorboard, grouped by its TENSORBOARD_GROUPS fields
        (a validate row of policy "clone" gives clone/reality_return); rows without a step count up per group."""
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.path / "tensorboard"))
        group = "/".join(metrics[k] for k in TENSORBOARD_GROUPS if isinstance(metrics.get(k), str))
        if step is None:
            step = self._tb_counts.get(group, 0)
            self._tb_counts[group] = step + 1
        for k, v in metrics.items():
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v):
                self._tb.add_scalar(f"{group}/{k}" if group else k, float(v), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        root = logging.getLogger()
        root.removeHandler(self._buffer)
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self._handler is not None:
            root.removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.finish()
        else:
            self.fail(exc)

    @staticmethod
    def _console(console: bool) -> None:
        root = logging.getLogger()
        if console and not any(getattr(h, "_wm_console", False) for h in root.handlers):
            ch = logging.StreamHandler(sys.stderr)
            ch.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
            ch._wm_console = True  # type: ignore[attr-defined]
            root.addHandler(ch)
        root.setLevel(logging.INFO)


@contextlib.contextmanager
def open_run(
    path: str | Path, config: Any | None = None, *, enabled: bool = True, **options: Any
) -> Iterator[RunDir | None]:
    """Open a command's run directory (validated, nothing written); the body checks its inputs, calls
    `run.start()` once the run is accepted, and does the work. Success finishes the run; an exception
    fails it (see RunDir.fail) and propagates. `options` are RunDir's (option, resume, overwrite,
    keep_on_failure, staged, console, resume_hint, tensorboard); `enabled=False` (a non-main process)
    yields None."""
    if not enabled:
        yield None
        return
    if "start" in options:
        raise TypeError("open_run starts the run when the body calls run.start()")
    with RunDir(path, config, start=False, **options) as run:
        yield run


def _sibling(path: Path, kind: str) -> Path:
    """A new hidden directory beside `path`, with the mode the umask asks for (mkdtemp makes 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{kind}-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~current_umask())
    return tmp


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _list(names: list[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _drop_metrics_after(path: Path, step: int) -> None:
    """Rewrite metrics.jsonl without the rows of steps after `step` (atomically)."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a kill
        if not isinstance(row, dict) or not isinstance(row.get("step"), int) or row["step"] <= step:
            kept.append(line)
    write_text(path, "".join(k + "\n" for k in kept))


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and getattr(v, "ndim", 0) == 0:
        return v.item()
    if isinstance(v, Path):
        return str(v)
    return v
