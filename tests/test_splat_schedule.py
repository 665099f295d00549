"""The reconstruction's densification schedule fits the run's length, and a run never writes a final
state whose held-out PSNR collapsed (issue 16: a run ending on an opacity reset wrote a black scene)."""

from __future__ import annotations

import pytest

from scenes.example_dataset import write_example_dataset
from scenes.nerfstudio_io import read_transforms
from scenes.strategy import DefaultStrategy
from scenes.train_splats import KEEP_BEST_MARGIN_DB, SplatTrainConfig, scheduled_strategy, train_splats


def test_schedule_stops_refining_and_resetting_by_half_the_run():
    s = DefaultStrategy(refine_stop_iter=2000, reset_every=1500)
    assert scheduled_strategy(s, 1500).refine_stop_iter == 750
    assert scheduled_strategy(s, 30_000).refine_stop_iter == 2000
    assert s.refine_stop_iter == 2000  # the configured strategy is left alone


@pytest.fixture(scope="module")
def posed(tmp_path_factory):
    return read_transforms(
        write_example_dataset(tmp_path_factory.mktemp("ds") / "ds", num_frames=16, width=64, height=48)
    )


@pytest.mark.parametrize("iterations", [120, 240])
def test_final_psnr_is_not_below_the_best_seen(posed, iterations):
    """Without the schedule's fit, both lengths would end on (or just after) an opacity reset."""
    strategy = DefaultStrategy(refine_start_iter=30, refine_every=30, refine_stop_iter=1000, reset_every=120)
    cfg = SplatTrainConfig(iterations=iterations, max_size=64, eval_every=40, sh_degree=0, strategy=strategy)
    seen: list[float] = []
    result = train_splats(posed, cfg, "cpu", lambda step, m: seen.append(m["psnr"]))
    assert len(seen) == iterations // 40
    assert result.metrics["psnr"] >= max(seen) - KEEP_BEST_MARGIN_DB
    assert result.metrics["psnr"] > 14.0
