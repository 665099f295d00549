"""Data-parallel ranks on this machine, started from inside a running program.

`run_ranks(fn, args, n)` spawns n processes that torch.distributed and HF accelerate see as one job, as
`torchrun --nproc_per_node n` would start them (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR/PORT set;
accelerate then runs its MULTI_CPU mode over gloo), calls fn(*args) in each and waits for all of them.

Why: a small model on a CPU keeps about one core busy whatever torch's thread count — the world model's
20×20 convolutions kept 0.93 of the 2-core CPU's cores busy (BENCHMARKS.md, *Three worlds*) — while two
processes of one thread, each on half of every batch, train the same steps about twice as fast. The ranks
are spawned, not forked (a fork copies the parent's OpenMP and Numba pools half-made), so fn must be a
module-level function and args picklable. A `UserInputError` in a rank is raised again here as one, so
bad input still ends a command with its one line and exit status 2.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable
from typing import Any

from wmcore.errors import UserInputError


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which a container's quota sets), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def inside_launched_job() -> bool:
    """True in a process that `torchrun`, `accelerate launch` or `run_ranks` started as one of several ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def _free_port() -> int:
    """A port free now (the OS's pick); another program could take it before rank 0 binds it, a rare race that
    ends in a clear gloo error rather than a wrong result."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_main(
    rank: int,
    n: int,
    port: int,
    threads: int,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    errors: Any,
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(n),
        LOCAL_WORLD_SIZE=str(n),
        OMP_NUM_THREADS=str(threads),  # what accelerate reads (it warns and sets 1 when unset)
        MKL_NUM_THREADS=str(threads),
    )
    import torch

    torch.set_num_threads(threads)
    try:
        fn(*args)
    except UserInputError as e:
        errors.put(str(e))
        raise


def run_ranks(fn: Callable[..., Any], args: tuple[Any, ...], processes: int, threads: int | None = None) -> None:
    """Run fn(*args) in `processes` spawned ranks of one torch.distributed job and wait for all of them.

    threads: torch CPU threads per rank (None: this process's usable cores shared out, at least 1). An error
    in any rank stops the others and is raised here (a `UserInputError` as itself)."""
    import torch.multiprocessing as tmp

    if processes < 1:
        raise UserInputError(f"{processes} processes: give 1 or more")
    if inside_launched_job():
        raise UserInputError(
            "already one rank of a launched job (WORLD_SIZE is set): start one process per rank with "
            "`torchrun`/`accelerate launch`, or spawn them here, not both"
        )
    threads = threads or max(1, usable_cores() // processes)
    errors = multiprocessing.get_context("spawn").SimpleQueue()
    # torch warns as it stops the other ranks after one failed; the failure itself is raised below
    logging.getLogger("torch.multiprocessing.spawn").setLevel(logging.ERROR)
    try:
        tmp.start_processes(
            _rank_main,
            args=(processes, _free_port(), threads, fn, args, errors),
            nprocs=processes,
            join=True,
            start_method="spawn",
        )
    except (tmp.ProcessRaisedException, tmp.ProcessExitedException) as e:
        if not errors.empty():
            raise UserInputError(errors.get()) from None
        raise RuntimeError(f"a rank of {processes} failed:\n{e}") from None
