"""`worldmodel demo` end to end at toy sizes: every stage runs for real on the bundled capture and
the report holds the measured checks; --resume reuses finished stages; a used --out is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import short_splat_training

from scenes.ingest import IngestConfig
from scenes.reconstruct import ReconstructConfig
from scenes.synthetic import EXAMPLE_DIR
from training.actor_critic import PPOHyperparameters
from training.demo import DemoConfig, demo
from training.model_based import ModelBasedConfig
from wmcore.errors import UserInputError
from worldmodel.config import WorldModelConfig
from worldmodel.reward_refit import RewardRefitConfig


def tiny(out) -> DemoConfig:
    return DemoConfig(
        out=out,
        reconstruct=ReconstructConfig(
            EXAMPLE_DIR / "capture.mp4",
            ingest=IngestConfig(num_frames=48, max_size=192, sfm_max_size=320),
            train=short_splat_training(
                400, max_size=64, sh_degree=1, refine_every=50, refine_stop_iter=300, max_gaussians=6000
            ),
        ),
        resolution=40,
        episode_steps=60,  # the expert needs up to ~45 steps from the far corners of the room
        random_episodes=4,
        expert_episodes=4,
        loop=ModelBasedConfig(
            "room:assets/example_room",
            iterations=2,
            real_episodes=2,
            world_model_first_steps=6,
            world_model_steps=2,
            world_model_batch_size=4,
            world_model=WorldModelConfig(block_out_channels=(8, 16), reward_channels=(8, 16), downsample=2),
            policy_steps=64,
            final_policy_steps=32,
            deploy="best_real",
            num_envs=4,
            snap_to_data=True,
            reward_refit=RewardRefitConfig(steps=2, batch_size=4, imagined_fraction=0.0),  # the demo's, small
            hp=PPOHyperparameters(rollout_steps=8),
            channels=(8, 16, 16),
            hidden=32,
        ),
        clone_steps=10,
        clone_dagger_rounds=2,
        clone_dagger_episodes=1,
        loop_from_clone=True,
        validate_episodes=3,
        deployment_episodes=5,
        transfer_episodes=4,
    )


def test_demo_runs_every_stage_and_reports_its_checks(tmp_path):
    out = demo(tiny(tmp_path / "demo"))
    report = json.loads((out / "report.json").read_text())
    rows = [json.loads(r) for r in (out / "loop" / "world_model" / "metrics.jsonl").read_text().splitlines()]
    refits = [r for r in rows if r.get("event") == "reward_refit"]
    assert len(refits) == 2 and all(r["reward_refit_imagined"] == 0 for r in refits)  # one per world-model training
    assert list(report["seconds_by_stage"]) == [
        "reconstruct",
        "reconstruct_2",
        "collect_twin",
        "clone",
        "model_based_loop",
        "collect_heldout",
        "evaluate_world_model",
        "family",
        "validate",
        "twin_transfer",
        "deployment",
        "videos",
    ]
    # the second twin and the clone's transfer check ran in the side process, their logs in its file
    assert report["stages_beside"] == ["reconstruct_2", "twin_transfer"]
    side_log = (out / "side_stages.log").read_text()
    assert str(out / "scene_2") in side_log and "(beside)" in (out / "report.md").read_text()
    c = report["checks"]
    floor = report["scene"]["floor"]  # the twin's collision geometry against the room's
    assert all(0 <= floor[k] <= 1 for k in ("blocked_in_twin", "free_in_twin_only", "iou")) and floor["iou"] > 0
    assert "of the room's free floor" in (out / "report.md").read_text()
    wm = c["world_model_beats_copy_last"]
    assert wm["horizon"] == 15 and wm["passed"] == (wm["gain_ci95"][0] > 0)
    assert wm["gain_ci95"][0] <= wm["gain_ci95"][1]
    for key in (
        "imagination_policy_in_reality",
        "imagination_policy_vs_ppo_in_reality",
        "ranking_imagination_reality",
        "ranking_twin_reality",
        "twin_policy_transfers",
        "demo_within_budget",
    ):
        assert isinstance(c[key]["passed"], bool), key
    pol = c["imagination_policy_in_reality"]
    assert pol["passed"] == (pol["success"] >= 0.5 and pol["success_ci95"][0] > pol["random_success_ci95"][1])
    # the deployment checks rest on the deployment stage's own episodes in reality, not validation's 3
    dep = json.loads((out / "deployment" / "deployment.json").read_text())["policies"]
    assert pol["episodes"] == 5 and pol["success"] == dep["imagination-trained"]["success"]
    assert {n.split(",")[0] for n in dep} == {"imagination-trained", "random", "PPO in reality"}
    assert json.loads((out / "family" / "ppo_reality" / "summary.json").read_text())["world"] == "reality"
    # the twin-transfer check rests on the clone's paired episodes in reality and the twin from the same starts
    paired = json.loads((out / "deployment" / "deployment.json").read_text())["twin_transfer"]
    assert paired["policy"] == "clone" and paired["episodes"] == 4
    beside = json.loads((out / "deployment" / "twin_transfer.json").read_text())  # measured beside the loop
    assert paired == beside and len(beside["policy_digest"]) == 64  # and for the clone's weights it measured
    assert paired["reality"]["episodes"] == paired["twin"]["episodes"] == 4
    diff = np.subtract(*(np.asarray(paired[w]["successes"], float) for w in ("reality", "twin")))
    assert paired["reality_minus_twin"] == pytest.approx(diff.mean())
    assert paired["gap_ci95"][0] <= diff.mean() <= paired["gap_ci95"][1]
    assert c["twin_policy_transfers"]["paired"] and c["twin_policy_transfers"]["episodes"] == 4
    assert "the twin-transfer check 4 episodes of the clone" in (out / "report.md").read_text()
    val = report["validation"]
    # every family member in all three worlds; the expert in reality and the twin only
    assert val["policies"]["expert (reads the map)"]["reality"]["success"] > 0  # the goal is reachable in reality
    assert set(val["policies"]["expert (reads the map)"]) == {"reality", "twin"}
    family = [n for n in val["policies"] if n != "expert (reads the map)"]
    assert len(family) >= 8 and all(set(val["policies"][n]) == {"reality", "twin", "imagination"} for n in family)
    assert {"imagination-reality", "twin-reality", "imagination-twin"} == set(val["pairs"])
    specs = json.loads((out / "family" / "family.json").read_text())["policies"].values()
    assert not any(s.endswith(report["deploy"]["deployed"]) for s in specs)  # deployed once: as OUT/loop/policy
    # reality and the twin chase the same spot: the room's goal, carried into the reconstruction's frame
    assert report["worlds"]["reality"]["goal"] == [-2.2, -0.8]
    # by default each world renders as its own (the room casts 2x2 rays a pixel, the twin renders as observed)
    assert "supersample" not in report["worlds"]["reality"] and "supersample" not in report["worlds"]["twin"]
    assert report["deploy"]["deployed"] in {"policy_iter_0", "final_policy"}
    assert [c["policy"] for c in report["deploy"]["candidates"]] == ["policy_iter_0", "final_policy"]
    assert "Deployed: **" in (out / "report.md").read_text()
    # imagination snapped to the loop's data, in the loop, the validation and the video
    assert "snapped to the nearest frame of the loop's data" in (out / "report.md").read_text()
    val = json.loads((out / "validate" / "report.json").read_text())
    assert val["snap_to_data"] and all(
        p["trust"]["snap_distance"] >= 0 for p in val["policies"].values() if not p["reference"]
    )
    assert json.loads((out / "videos" / "imagined_vs_reality" / "config.json").read_text())["snap_to"]
    data = json.loads((out / "loop" / "data" / "dataset.json").read_text())
    worlds = [e.get("meta", {}).get("world") for e in data["episodes"]]
    # 2 real episodes per iteration, 2 more by the final policy, by which the loop chooses the one it deploys
    assert worlds.count("reality") == 6 and report["real_steps"] == sum(
        e["steps"] for e in data["episodes"] if e.get("meta", {}).get("world") == "reality"
    )
    assert data["height"] == 40
    # the loop's policy started from the clone (corrected in the twin), which also collected the first real episodes
    trained_in = json.loads((out / "loop" / "policy" / "policy.json").read_text())["trained_in"]
    assert trained_in["init_policy"] == str(out / "family" / "clone" / "policy")
    assert json.loads((out / "loop" / "summary.json").read_text())["iterations"][0]["collected_with"] == "init_policy"
    for name in (
        "report.md",
        "validate/report.md",
        "validate/pair_imagination_reality.png",
        "world_model_eval/psnr_horizon.png",
        "videos/policy_in_reality/video.mp4",
        "videos/imagined_vs_reality/video.gif",
        "scene/splats.ply",
        "family/clone/policy/policy.json",
    ):
        assert (out / name).exists(), name
    assert "MISS" in (out / "report.md").read_text() or "PASS" in (out / "report.md").read_text()

    # `worldmodel view OUT` finds the twin, the datasets and the final model, and has every episode's path:
    # the twin's in its own frame, reality's carried into it
    from training.view import Episodes, ViewConfig, find_sources

    src = find_sources(ViewConfig(out))
    assert src.kind == "demo" and src.scene == out / "scene" and src.model == out / "loop" / "world_model" / "model"
    assert set(src.datasets.values()) == {out / "data", out / "heldout", out / "loop" / "data"}
    for name, path in src.datasets.items():
        eps = Episodes(path, src.scene)
        scenes = [(e.meta or {}).get("scene") for e in eps.data.episodes]
        drawn = [s in (None, str(out / "scene")) for s in scenes]  # the second twin's episodes are in its own frame
        assert [p is not None for p in eps.poses] == drawn, name
        assert all(len(p) == e.steps + 1 for p, e in zip(eps.poses, eps.data.episodes) if p is not None), name
    from envs.reality import FloorMap

    held = Episodes(out / "heldout", src.scene)  # reality's goal, carried into the twin's frame
    np.testing.assert_allclose(
        held.goals[0], FloorMap.for_scene(out / "scene", EXAMPLE_DIR).to_twin([-2.2, -0.8]), atol=1e-4
    )

    # --twins 2 (the default): a second reconstruction from another seed shares the twin episodes (the expert's
    # and the random walk's, each in its own twin with the room's goal carried into that twin's frame) and the
    # clone's DAgger rounds, in turn; the first stays the twin the other stages use
    assert (out / "scene" / "splats.ply").read_bytes() != (out / "scene_2" / "splats.ply").read_bytes()
    assert (
        report["scene"]["more_twins_psnr"] and "1 more reconstruction (held-out PSNR" in (out / "report.md").read_text()
    )
    meta = [e["meta"] for e in json.loads((out / "data" / "dataset.json").read_text())["episodes"]]
    twin_eps = [(m["scene"], m["policy"].split(":")[-1]) for m in meta]
    assert (
        twin_eps
        == [(str(out / "scene"), "expert")] * 2
        + [(str(out / "scene"), "sticky")] * 2
        + [(str(out / "scene_2"), "expert")] * 2
        + [(str(out / "scene_2"), "sticky")] * 2
    )
    rounds = json.loads((out / "family" / "clone" / "summary.json").read_text())["dagger"]
    assert [r["scene"] for r in rounds] == [str(out / "scene"), str(out / "scene_2")]

    with pytest.raises(UserInputError, match="is not empty; pass --resume"):
        demo(tiny(out))
    cfg = tiny(out)
    cfg.resume = True
    again = json.loads((demo(cfg) / "report.json").read_text())
    # every stage reused (those beside are looked at when they would start, so the order differs)
    assert sorted(again["stages_reused"]) == sorted(report["seconds_by_stage"]) and again["seconds_by_stage"] == {}


def test_a_demo_needs_one_twin_at_least(tmp_path):
    with pytest.raises(UserInputError, match="--twins"):
        demo(DemoConfig(out=tmp_path / "none", twins=0))
    with pytest.raises(UserInputError, match="--transfer-episodes"):
        demo(DemoConfig(out=tmp_path / "none", transfer_episodes=-1))
    assert not (tmp_path / "none").exists()


def test_expert_collection_needs_a_scene_env(tmp_path):
    from training.collect import CollectConfig, collect

    with pytest.raises(UserInputError, match="plans on a SceneEnv's map"):
        collect(CollectConfig("CartPole-v1", out=tmp_path / "d", episodes=1, policy="expert"))


def test_supersample_reaches_both_worlds_alike():
    """--supersample N means N rays a pixel side in reality and the twin (the room's option and SceneEnv's share
    the name); left out, each world keeps its own default."""
    from training.demo import world_options

    assert world_options(DemoConfig(supersample=2))["supersample"] == 2
    assert "supersample" not in world_options(DemoConfig())
    assert set(world_options(DemoConfig())) == {"width", "height", "max_steps", "collision_penalty"}


def test_stage_times_read_as_minutes_and_seconds():
    from training.demo_report import mmss

    assert [mmss(s) for s in (0.4, 59.4, 239.6, 3599.5)] == ["0 min 0 s", "0 min 59 s", "4 min 0 s", "60 min 0 s"]


def test_quality_preset_on_cpu_warns_before_anything_runs(tmp_path, caplog):
    from wmcore.errors import UserInputError

    (tmp_path / "old").write_text("x")  # a non-empty --out is refused before any stage runs
    with caplog.at_level("WARNING", logger="worldmodel.demo"), pytest.raises(UserInputError, match="not empty"):
        demo(DemoConfig(out=tmp_path, quality=True))
    assert "--device cuda" in caplog.text


def test_twin_transfer_is_judged_on_a_policy_that_learned_in_the_twin():
    """Two failures agreeing are no transfer: a twin PPO at 0 % in both worlds does not pass; the clone, best in the
    twin, is judged instead, and passes only when the whole interval of its gap lies within 10 points; the
    deployment stage's paired episodes of that policy, where there are any, decide instead of validation's."""
    from training.demo_report import twin_transfer
    from training.stats import wilson_interval

    def worlds(real: float, twin: float, n: int) -> dict:
        def one(p: float) -> dict:
            return {"success": p, "episodes": n, "success_ci95": list(wilson_interval(round(p * n), n)[1:])}

        return {"worlds": {"reality": one(real), "twin": one(twin)}}

    val = {"policies": {"random": worlds(0.0, 0.0, 30), "PPO in twin, 20k steps": worlds(0.0, 0.0, 30)}}
    assert twin_transfer(val)["passed"] is False and twin_transfer(val)["learned_in_twin"] is False
    val["policies"]["clone"] = worlds(0.45, 0.6, 30)
    judged = twin_transfer(val)
    assert judged["policy"] == "clone" and judged["learned_in_twin"] and not judged["passed"]  # ±25 points at n = 30
    assert not judged["decidable"]  # no gap could pass at n = 30
    val["policies"]["clone"] = worlds(0.58, 0.6, 2000)
    assert twin_transfer(val)["passed"] and twin_transfer(val)["decidable"]
    assert twin_transfer({"policies": {"random": worlds(0.0, 0.0, 30)}}) is None
    # the deployment stage's paired episodes of the clone replace validation's 30 per world
    val["policies"]["clone"] = worlds(0.45, 0.6, 30)
    paired = {"policy": "clone", "episodes": 200, "reality": {"success": 0.6}, "twin": {"success": 0.66}}
    paired["twin"]["success_ci95"] = list(wilson_interval(132, 200)[1:])
    judged = twin_transfer(val, {"twin_transfer": {**paired, "gap_ci95": [-0.13, -0.01]}})
    assert judged["paired"] and judged["episodes"] == 200 and judged["decidable"] and not judged["passed"]
    assert twin_transfer(val, {"twin_transfer": {**paired, "gap_ci95": [-0.09, 0.03]}})["passed"]
    other = {"twin_transfer": {**paired, "policy": "PPO in twin, 20k steps", "gap_ci95": [-0.09, 0.03]}}
    assert not twin_transfer(val, other)["paired"]  # figures of another policy than the one judged are not used
