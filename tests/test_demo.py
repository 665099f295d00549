"""`worldmodel demo` end to end at toy sizes: every stage runs for real on the bundled capture and
the report holds the measured checks; --resume reuses finished stages; a used --output is refused."""

from __future__ import annotations

import json

import pytest

from scenes.ingest import IngestConfig
from scenes.reconstruct import ReconstructConfig
from scenes.strategy import DefaultStrategy
from scenes.synthetic import EXAMPLE_DIR
from scenes.train_splats import SplatTrainConfig
from training.actor_critic import PPOHyperparameters
from training.demo import DemoConfig, demo
from wmcore.errors import UserInputError


def tiny(out) -> DemoConfig:
    return DemoConfig(
        output=out,
        reconstruct=ReconstructConfig(
            EXAMPLE_DIR / "capture.mp4",
            ingest=IngestConfig(num_frames=48, max_size=192, sfm_max_size=320),
            train=SplatTrainConfig(iterations=400, max_size=64, eval_every=400, sh_degree=1,
                                   strategy=DefaultStrategy(refine_start_iter=50, refine_every=50,
                                                            refine_stop_iter=300, max_gaussians=6000)),
        ),
        resolution=36,
        episode_steps=60,  # the expert needs up to ~45 steps from the far corners of the room
        random_episodes=4,
        expert_episodes=4,
        world_model_steps=6,
        world_model_batch_size=4,
        world_model_channels=(8, 16, 16),
        policy_steps=64,
        policy_envs=4,
        ppo=PPOHyperparameters(rollout_steps=8),
        validate_episodes=3,
    )


def test_demo_runs_every_stage_and_reports_its_checks(tmp_path):
    out = demo(tiny(tmp_path / "demo"))
    report = json.loads((out / "report.json").read_text())
    assert set(report["seconds_by_stage"]) == {"reconstruct", "collect", "train_world_model", "evaluate_world_model",
                                                "train_policy", "validate", "videos"}
    c = report["checks"]
    wm = c["world_model_beats_copy_last"]
    assert wm["passed"] == (wm["psnr"] > wm["copy_last_psnr"])
    pol = c["policy_success_at_least_twice_random"]
    assert 0 <= pol["random"] <= 1 and 0 <= pol["policy"] <= 1
    assert report["policies_in_scene"]["expert (reads the map)"]["success_rate"] > 0  # the goal is reachable
    # the fixed goal the data was recorded with is the one validation used
    data = json.loads((out / "data" / "dataset.json").read_text())
    assert data["source"]["env_kwargs"]["goal"] == report["env_kwargs"]["goal"]
    assert data["source"]["frames"] == "observation" and data["height"] == 36
    for name in ("report.md", "validate/report.md", "validate/returns.png", "world_model_eval/psnr_horizon.png",
                 "videos/policy_in_scene/video.mp4", "videos/imagined_vs_scene/video.gif", "scene/splats.ply"):
        assert (out / name).exists(), name
    assert "MISS" in (out / "report.md").read_text() or "PASS" in (out / "report.md").read_text()

    with pytest.raises(UserInputError, match="is not empty; pass --resume"):
        demo(tiny(out))
    cfg = tiny(out)
    cfg.resume = True
    again = json.loads((demo(cfg) / "report.json").read_text())
    assert again["stages_reused"] == list(report["seconds_by_stage"]) and again["seconds_by_stage"] == {}


def test_expert_collection_needs_a_scene_env(tmp_path):
    from training.collect import CollectConfig, collect

    with pytest.raises(UserInputError, match="--policy expert needs worldmodel/SceneNav-v0"):
        collect(CollectConfig("CartPole-v1", out=tmp_path / "d", episodes=1, policy="expert"))


def test_stage_times_read_as_minutes_and_seconds():
    from training.demo import _mmss

    assert [_mmss(s) for s in (0.4, 59.4, 239.6, 3599.5)] == ["0 min 0 s", "0 min 59 s", "4 min 0 s", "60 min 0 s"]


def test_quality_preset_on_cpu_warns_before_anything_runs(tmp_path, caplog):
    from wmcore.errors import UserInputError

    (tmp_path / "old").write_text("x")  # a non-empty --output is refused before any stage runs
    with caplog.at_level("WARNING", logger="worldmodel.demo"), pytest.raises(UserInputError, match="not empty"):
        demo(DemoConfig(output=tmp_path, quality=True))
    assert "--device cuda" in caplog.text
