"""One worker process beside the main one, for work that needs nothing the main process is computing.

On the 2-core CPU most of the demo's stages keep about one core busy: sampled every 2 s over a whole
demo run (2026-12-07), reconstruction used 1.3 cores, the model-based loop 1.0 (the world model's small
convolutions are too small for a second thread), validation 1.2. A stage that waits on no other can run
beside them: two reconstructions of the example at once took 161 s where one after the other took
297 s, with identical outputs (BENCHMARKS.md, *Three worlds*).

The worker is spawned, not forked (a fork copies the parent's OpenMP and Numba thread pools half-made),
so what it runs must be importable: a module-level function and picklable arguments. Its stdout and
stderr, progress bars and log lines included, go to a file, so the console shows the main line alone.
Results are deterministic as long as the work is: the worker is a fresh interpreter with the same
environment and the same thread counts as the main process.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any


def _redirect(log: str) -> None:
    """Worker initializer: its stdout and stderr (file descriptors 1 and 2, so native libraries' output
    too) append to `log`."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _timed(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
    t0 = time.time()
    return fn(*args), time.time() - t0


class SideProcess:
    """A single spawned worker: `submit(fn, *args)` runs fn(*args) there and returns a Future of
    (result, seconds it ran). An exception in the worker is raised by the Future's `result()`.
    Use as a context manager: leaving it waits for the work submitted and stops the worker."""

    def __init__(self, log: str | Path):
        self.log = Path(log)
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        if self._pool is None:  # started on first use: a run that needs no side work spawns nothing
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._pool = ProcessPoolExecutor(
                1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_redirect,
                initargs=(str(self.log),),
            )
        return self._pool.submit(_timed, fn, args)

    def close(self, cancel: bool = False) -> None:
        """Wait for the submitted work and stop the worker; with `cancel`, stop it at once (the main line
        failed: what runs beside it is not wanted)."""
        if self._pool is None:
            return
        if cancel:
            for proc in list(getattr(self._pool, "_processes", {}).values()):  # no public terminate before 3.14
                proc.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
        self._pool = None

    def __enter__(self) -> SideProcess:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(cancel=exc is not None)
