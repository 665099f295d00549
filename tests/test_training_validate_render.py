"""validate: statistics for several policies in both worlds, consistent numbers, report files;
render: readable H.264 MP4s and GIFs with the expected frame counts."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from test_training_policy import build_setup

from training.actor_critic import ActorCritic, ActorCriticNetConfig
from training.validate import ValidateConfig, t_interval, validate, wilson_interval
from wmcore.errors import UserInputError


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("validate")
    env, model, data = build_setup(root)
    policy = ActorCritic(ActorCriticNetConfig(observation_shape=(40, 40, 3), channels=(8, 16, 16), hidden=32))
    policy.save(root / "run" / "policy")
    return env, model, data, root


def test_intervals():
    m, lo, hi = t_interval(np.array([1.0, 2.0, 3.0]))
    assert m == 2.0 and lo < 2.0 < hi and np.isclose(hi - m, m - lo)
    p, lo, hi = wilson_interval(0, 10)
    assert p == 0.0 and lo == 0.0 and 0.0 < hi < 0.35  # Wilson stays informative at 0%
    p, lo, hi = wilson_interval(7, 10)
    assert lo < 0.7 < hi


def test_validate_reports_statistics_for_several_policies(setup, tmp_path):
    env, model, data, root = setup
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"psnr_by_horizon": {"1": 30.0, "5": 25.0}, "copy_last_psnr_by_horizon": {"1": 28.0, "5": 20.0}})
    )
    cfg = ValidateConfig(
        model,
        data,
        policies=("random", "oracle", str(root / "run" / "policy")),
        scene=root / "scene",
        episodes=3,
        max_steps=6,
        eval_metrics=metrics,
        out=tmp_path / "val",
    )
    report = validate(cfg)
    out = tmp_path / "val"
    for name in (
        "report.json",
        "report.md",
        "returns.png",
        "psnr_horizon.png",
        "frames_0.png",
        "frames_2.png",
        "config.json",
        "log.txt",
        "metrics.jsonl",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert set(report["policies"]) == {"random", "oracle", "run/policy"}
    for r in report["policies"].values():
        t, im = r["true"], r["imagined"]
        assert len(t["returns"]) == len(im["returns"]) == 3
        assert np.isclose(r["gap"]["return"], im["mean_return"] - t["mean_return"])
        assert np.isclose(r["gap"]["success_rate"], im["success_rate"] - t["success_rate"])
        assert np.isclose(t["mean_return"], np.mean(t["returns"]))
        assert t["return_ci95"][0] <= t["mean_return"] <= t["return_ci95"][1]
        assert 0 <= im["success_ci95"][0] <= im["success_rate"] <= im["success_ci95"][1] <= 1
    # The oracle's true returns are those of ShortestPathPolicy in the SceneEnv with the same seeds.
    from envs.oracle import ShortestPathPolicy

    oracle = ShortestPathPolicy(env)
    ret = []
    for i in range(3):
        obs, _ = env.reset(seed=i)
        total = 0.0
        for _ in range(6):
            obs, r, te, tr, _ = env.step(oracle(obs))
            total += r
            if te or tr:
                break
        ret.append(total)
    np.testing.assert_allclose(report["policies"]["oracle"]["true"]["returns"], ret, rtol=1e-6)
    rho = report["rank_agreement"]["spearman_rho"]
    assert rho is None or -1.0 <= rho <= 1.0
    md = (out / "report.md").read_text()
    assert "Spearman" in md and "returns.png" in md and "| oracle (open-loop replay) |" in md


def test_validate_bad_input(setup, tmp_path, capsys):
    from training.cli import main

    _, model, data, root = setup
    with pytest.raises(UserInputError, match="differ from the model"):
        validate(ValidateConfig(model, data, policies=("random",), env_id="CartPole-v1", out=tmp_path / "a"))
    with pytest.raises(UserInputError, match="cannot import"):
        validate(ValidateConfig(model, data, policies=("nosuchmodule:fn",), scene=root / "scene", out=tmp_path / "b"))
    assert (
        main(["validate", str(model), str(data), "--scene", str(tmp_path / "missing"), "--out", str(tmp_path / "c")])
        == 2
    )
    assert "no such scene" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["scene", "imagined", "compare"])
def test_render_writes_playable_mp4_and_gif(setup, tmp_path, kind):
    import cv2

    from training.render import RenderConfig, render

    _, model, data, root = setup
    cfg = RenderConfig(
        kind=kind,
        scene=root / "scene",
        model=model,
        dataset=data,
        policy="oracle" if kind == "scene" else str(root / "run" / "policy"),
        max_steps=4,
        scale=3,
        out=tmp_path / kind,
        env_kwargs='{"width": 40, "height": 40, "render_size": 64}',
    )
    mp4 = render(cfg)
    # scene/imagined: the first frame plus one per step (an episode may end early); compare: the
    # L=2 context frames plus one per replayed step.
    expected = json.loads((tmp_path / kind / "video.json").read_text())["frames"]
    assert expected == (2 + 4 if kind == "compare" else expected) and 2 <= expected <= 5 + (kind == "compare")
    cap = cv2.VideoCapture(str(mp4))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == expected
    assert int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"avc1", b"h264", b"H264")
    gif = iio.imread(tmp_path / kind / "video.gif")
    assert gif.shape[0] == expected and gif.shape[-1] in (3, 4)
    first = gif[0][..., :3]
    assert first[:18].max() > 150 and first[:18].mean() < 60  # white caption on the black band


def test_validate_against_the_gymnasium_env_the_dataset_came_from(setup, tmp_path):
    """Without --scene, the ground truth is the dataset's source env observed through render(), as `collect` saw it."""
    import torch

    from training.collect import CollectConfig, collect
    from worldmodel.config import WorldModelConfig
    from worldmodel.model import WorldModel

    root = setup[3]
    kwargs = {"scene": str(root / "scene"), "width": 40, "height": 40, "render_size": 40}
    data = collect(
        CollectConfig(
            "worldmodel/SceneNav-v0",
            out=tmp_path / "data",
            episodes=2,
            max_steps=4,
            resolution=(40, 40),
            env_kwargs=json.dumps(kwargs),
        )
    )
    torch.manual_seed(0)
    WorldModel(
        WorldModelConfig(
            resolution=(40, 40),
            action_space={"kind": "discrete", "n": 3},
            context=2,
            block_out_channels=(16, 32),
            action_embed_dim=8,
            reward_channels=(8,),
            num_steps=1,
        )
    ).save_pretrained(tmp_path / "model")
    report = validate(
        ValidateConfig(tmp_path / "model", data, policies=("random",), episodes=2, max_steps=4, out=tmp_path / "val")
    )
    assert report["ground_truth"] == "worldmodel/SceneNav-v0"
    true_frames = iio.imread(tmp_path / "val" / "frames_0.png")
    assert true_frames.shape[0] == 2 * 40 + 2  # true row above imagined row, at the model's resolution
    assert len(report["policies"]["random"]["true"]["returns"]) == 2
