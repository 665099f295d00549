"""Atomic writes, safetensors errors, run directories and image metrics."""

from __future__ import annotations

import json

import pytest
import torch

from wmcore.atomic import atomic_path, write_json
from wmcore.errors import UserInputError
from wmcore.metrics import psnr, ssim
from wmcore.rundir import RunDir
from wmcore.tensors import load_tensors, save_tensors


def test_atomic_write_keeps_previous_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_directory_replace(tmp_path):
    target = tmp_path / "ckpt"
    for v in (1, 2):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "x.txt").write_text(str(v))
    assert (target / "x.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_safetensors_roundtrip_and_truncated_file(tmp_path):
    path = tmp_path / "w.safetensors"
    t = {"a": torch.arange(10.0), "b": torch.ones(3, 4, dtype=torch.uint8)}
    save_tensors(path, t)
    back = load_tensors(path)
    assert torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"])
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(UserInputError, match="truncated or corrupt"):
        load_tensors(path)
    with pytest.raises(UserInputError, match="not found"):
        load_tensors(tmp_path / "missing.safetensors")


def test_rundir_writes_config_log_metrics(tmp_path):
    import dataclasses
    import logging

    @dataclasses.dataclass
    class Cfg:
        lr: float = 0.1

    with RunDir(tmp_path / "run", Cfg(), console=False) as run:
        logging.getLogger("worldmodel").info("hello")
        run.log_metrics(step=3, loss=torch.tensor(0.5))
    assert json.loads((tmp_path / "run/config.json").read_text()) == {"lr": 0.1}
    row = json.loads((tmp_path / "run/metrics.jsonl").read_text().splitlines()[0])
    assert row["step"] == 3 and row["loss"] == 0.5
    assert "hello" in (tmp_path / "run/log.txt").read_text()


def test_psnr_and_ssim():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 32, 32, 3, generator=g)
    assert torch.allclose(ssim(a, a), torch.ones(2), atol=1e-5)
    noisy = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(0, 1)
    assert (ssim(noisy, a) < 0.95).all()
    b = a + 0.1
    assert torch.allclose(psnr(b, a), torch.full((2,), 20.0), atol=1e-3)


def test_open_run_writes_nothing_before_start_and_removes_a_failed_new_run(tmp_path):
    from wmcore.errors import UserInputError
    from wmcore.rundir import open_run

    out = tmp_path / "run"
    with pytest.raises(UserInputError):
        with open_run(out, {"seed": 1}, console=False):
            raise UserInputError("bad input found while checking")
    assert not out.exists()
    with pytest.raises(RuntimeError):
        with open_run(out, {"seed": 1}, console=False) as run:
            run.start()
            (run.path / "artifact.bin").write_bytes(b"half")
            raise RuntimeError("a bug after the run started")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_open_run_resumed_failure_keeps_the_run_and_logs_why(tmp_path):
    from wmcore.errors import UserInputError
    from wmcore.rundir import open_run

    out = tmp_path / "run"
    with open_run(out, {"seed": 1}, console=False) as run:
        run.start()
        for step in range(1, 11):
            run.log_metrics(step=step, loss=1.0 / step)
    with pytest.raises(UserInputError):
        with open_run(out, {"seed": 2}, resume=True, console=False) as run:
            run.start(resume_step=6)  # the checkpoint the run resumes from
            raise UserInputError("the data went missing")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert "FAILED error: the data went missing" in (out / "log.txt").read_text()


def test_open_run_overwrite_replaces_a_run_only_when_the_new_one_finishes(tmp_path):
    from wmcore.errors import UserInputError
    from wmcore.rundir import open_run

    out = tmp_path / "run"
    with open_run(out, {"v": 1}, console=False) as run:
        run.start()
        (run.path / "old.txt").write_text("old")
    with pytest.raises(UserInputError, match="--overwrite"):
        open_run(out, {"v": 2}, console=False).__enter__()
    with pytest.raises(RuntimeError):
        with open_run(out, {"v": 2}, overwrite=True, console=False) as run:
            run.start()
            raise RuntimeError("crash")
    assert (out / "old.txt").read_text() == "old" and json.loads((out / "config.json").read_text()) == {"v": 1}
    with open_run(out, {"v": 3}, overwrite=True, console=False) as run:
        run.start()
    assert not (out / "old.txt").exists() and json.loads((out / "config.json").read_text()) == {"v": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_safetensors_and_staged_runs_follow_the_umask(tmp_path):
    import os

    from wmcore.rundir import open_run

    old = os.umask(0o022)
    try:
        save_tensors(tmp_path / "w.safetensors", {"a": torch.zeros(2)})
        with open_run(tmp_path / "scene", None, staged=True, console=False) as run:
            run.start()
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "scene").stat().st_mode & 0o777 == 0o755


def test_run_metrics_also_go_to_tensorboard(tmp_path):
    """With tensorboard=True every numeric metric is a TensorBoard scalar too, grouped by the row's string
    fields; rows without a step count up within their group."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from wmcore.rundir import RunDir

    with RunDir(tmp_path / "run", {"a": 1}, tensorboard=True) as run:
        run.log_metrics(step=1, loss=0.5, steps_per_second=10.0)
        run.log_metrics(step=2, loss=0.25, steps_per_second=11.0)
        run.log_metrics(policy="clone", reality_return=3.0, flag=True, note=float("nan"))
        run.log_metrics(policy="clone", reality_return=4.0)
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"loss", "steps_per_second", "clone/reality_return"} <= tags and "clone/flag" not in tags
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 0.5), (2, 0.25)]
    assert [(e.step, e.value) for e in acc.Scalars("clone/reality_return")] == [(0, 3.0), (1, 4.0)]


def test_side_process_runs_work_in_a_spawned_worker_and_reports_its_errors(tmp_path):
    """What the side process runs comes back with its duration; its output goes to the log file, not the
    console; an error there is raised where the result is asked for; nothing is spawned until work is given."""
    import os

    from wmcore.side_process import SideProcess

    log = tmp_path / "side.log"
    with SideProcess(log) as side:
        assert side._pool is None
        pid, seconds = side.submit(os.getpid).result()
        assert pid != os.getpid() and seconds >= 0
        side.submit(print, "from the side").result()
        with pytest.raises(ValueError, match="invalid literal"):
            side.submit(int, "not a number").result()
    assert "from the side" in log.read_text()
