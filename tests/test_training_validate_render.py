"""validate: statistics for several policies in both worlds, consistent numbers, report files;
render: readable H.264 MP4s and GIFs with the expected frame counts."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from helpers import tiny_world_model
from test_training_policy import build_setup

from scenes.synthetic import EXAMPLE_DIR
from training.actor_critic import ActorCritic, ActorCriticNetConfig
from training.stats import rank_agreement, regret, separated, split_half_agreement, t_interval, wilson_interval
from training.validate import ValidateConfig, validate
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


def test_rank_agreement_on_known_inputs():
    rng = np.random.default_rng(0)
    truth = [rng.normal(m, 0.1, 40) for m in (0.0, 1.0, 2.0, 3.0)]
    same = rank_agreement([t + 5 for t in truth], truth, spread=3.0)  # a shifted judge ranks alike
    assert same["spearman_rho"] == pytest.approx(1.0) and same["kendall_tau"] == pytest.approx(1.0)
    assert same["regret"] == 0.0 and same["spearman_rho_ci95"][0] > 0.7 and same["regret_fraction"] == 0.0
    backwards = rank_agreement([-t for t in truth], truth, spread=3.0)
    assert backwards["spearman_rho"] == pytest.approx(-1.0) and backwards["kendall_tau"] == pytest.approx(-1.0)
    # the judge picks the truly worst policy: regret = best - worst true mean
    assert backwards["regret"] == pytest.approx(np.mean(truth[3]) - np.mean(truth[0]))
    assert backwards["regret_fraction"] == pytest.approx(backwards["regret"] / 3.0)
    assert backwards["picked"] == 0 and backwards["truly_best"] == 3
    # regret on ties: the worst of the policies the judge ties at the top
    assert regret(np.array([1.0, 1.0, 0.0]), np.array([5.0, 2.0, 0.0])) == 3.0
    # noise wide enough to swap neighbours widens the bootstrap interval
    noisy = rank_agreement([t + rng.normal(0, 3.0, 40) for t in truth], truth)
    assert noisy["spearman_rho_ci95"][1] - noisy["spearman_rho_ci95"][0] > 0.3
    assert separated([0.6, 0.8], [0.1, 0.5]) and not separated([0.4, 0.8], [0.1, 0.5])


def test_split_half_agreement_is_the_noise_ceiling():
    rng = np.random.default_rng(0)
    apart = split_half_agreement([rng.normal(m, 0.1, 40) for m in (0.0, 1.0, 2.0, 3.0)], splits=200)
    assert apart["spearman_rho_median"] == pytest.approx(1.0) and apart["spearman_rho_ci95"][0] == pytest.approx(1.0)
    close = split_half_agreement([rng.normal(m, 3.0, 40) for m in (0.0, 0.1, 0.2, 0.3)], splits=200)
    assert close["spearman_rho_ci95"][0] < 0 < close["spearman_rho_ci95"][1]  # too close to rank at n = 40


def test_decisions_kept_on_known_inputs():
    """A policy that acts on a pixel keeps every decision when imagination shows it the true frames, none when it
    shows frames that flip that pixel; a random policy is judged fairly (about 1) whatever it is shown."""
    from training.policies import RandomPolicy
    from training.rollouts import decisions_kept

    class Bright:  # forward when the top-left pixel is bright, else turn
        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            return (np.asarray(obs)[:, 0, 0, 0] <= 127).astype(np.int64), None

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (8, 20, 6, 6, 3), dtype=np.uint8)
    truths = [{"frames": f} for f in frames]
    same = [{"frames": list(f[4:])} for f in frames]
    flipped = [{"frames": list(255 - f[4:])} for f in frames]
    assert decisions_kept(Bright(), truths, same, 4) == 1.0
    assert decisions_kept(Bright(), truths, flipped, 4) == 0.0
    import gymnasium as gym

    kept = decisions_kept(RandomPolicy(gym.spaces.Discrete(3), seed=0), truths, flipped, 4)
    assert 0.6 < kept < 1.6  # chance on both: the ratio is about 1
    assert decisions_kept(Bright(), truths, [{"frames": []} for _ in frames], 4) is None


def test_validate_three_worlds_report(setup, tmp_path):
    """Reality (the true room), the twin (a Scene of the same room) and imagination: every policy in every
    world from matched starts, rank agreement per pair, trust figures, plots."""
    env, model, data, root = setup
    metrics = tmp_path / "metrics.json"
    metrics.write_text(
        json.dumps({"psnr_by_horizon": {"1": 30.0, "5": 25.0}, "copy_last_psnr_by_horizon": {"1": 28.0, "5": 20.0}})
    )
    cfg = ValidateConfig(
        model,
        data,
        policies=("random", "sticky", str(root / "run" / "policy"), "expert"),
        names=("random", "sticky", "learned", "expert"),
        reality="room:" + str(EXAMPLE_DIR),
        scene=root / "scene",
        env_kwargs=json.dumps({"goal": [-2.2, -0.8]}),
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
        "pair_imagination_reality.png",
        "pair_twin_reality.png",
        "pair_imagination_twin.png",
        "psnr_horizon.png",
        "frames_0.png",
        "frames_3.png",
        "config.json",
    ):
        assert (out / name).is_file(), name
    assert json.loads((out / "report.json").read_text()) == json.loads(json.dumps(report))
    assert report["worlds"] == ["reality", "twin", "imagination"]
    assert set(report["policies"]) == {"random", "sticky", "learned", "expert"}
    for name, r in report["policies"].items():
        worlds = {"reality", "twin"} if name == "expert" else {"reality", "twin", "imagination"}
        assert set(r["worlds"]) == worlds and r["reference"] == (name == "expert")
        for s in r["worlds"].values():
            assert s["episodes"] == 3 and np.isclose(s["mean_return"], np.mean(s["returns"]))
            assert s["return_ci95"][0] <= s["mean_return"] <= s["return_ci95"][1]
            assert 0 <= s["success_ci95"][0] <= s["success"] <= s["success_ci95"][1] <= 1
        if name != "expert":
            assert 0 <= r["trust"]["outside_data"] <= 1 and r["trust"]["spread"] >= 0
            kept = r["trust"]["decisions_kept"]
            assert kept is None or kept >= 0
            assert ("sees differently" in r["flags"]) == (kept is not None and kept < 0.8)
    # the expert in reality is the map-reading planner in the true room, episode i from seed + i
    from envs.reality import make_room_env
    from training.policies import resolve_policy
    from training.rollouts import true_episodes

    room = make_room_env(EXAMPLE_DIR, width=40, height=40, max_steps=6, goal=(-2.2, -0.8))
    again = true_episodes(room, resolve_policy("expert", room), [0, 1, 2], 6)
    assert all(0 <= e["bumps"] <= len(e["actions"]) for e in again)  # the room reports its collisions
    np.testing.assert_allclose(
        report["policies"]["expert"]["worlds"]["reality"]["returns"], [e["rewards"].sum() for e in again], rtol=1e-6
    )
    for key in ("imagination-reality", "twin-reality", "imagination-twin"):
        p = report["pairs"][key]
        assert p["policies"] == 3 and p["family"] == ["random", "sticky", "learned"]  # the expert is a reference
        assert p["spearman_rho"] is None or -1.0 <= p["spearman_rho"] <= 1.0
        assert p["regret"] >= 0
    # the diagnosis: the reward model on reality's frames, reality's actions replayed, the closed loop
    d = report["diagnosis"]
    assert d["truth"] == "reality" and set(d["pairs"]) == {"reward_model", "replay", "imagination"}
    assert d["pairs"]["imagination"]["spearman_rho"] == report["pairs"]["imagination-reality"]["spearman_rho"]
    assert d["self_agreement"]["policies"] == 3
    for name in ("random", "sticky", "learned"):
        diag = report["policies"][name]["diagnosis"]
        assert set(diag) == {"reward_model", "replay"} and all(s["episodes"] == 3 for s in diag.values())
        # the first L-1 rewards are reality's own in both, so short episodes score exactly as in reality
        real = report["policies"][name]["worlds"]["reality"]["returns"]
        for judge in ("reward_model", "replay"):
            assert all(np.isfinite(diag[judge]["returns"])) and len(diag[judge]["returns"]) == len(real)
    md = (out / "report.md").read_text()
    assert "Spearman" in md and "pair_imagination_reality.png" in md and "| expert |" in md
    assert "Where does imagination lose the ranking" in md and "against itself" in md
    # reality's and the twin's episodes ran in the side process: run in this one, they are the same
    from training.validate import true_worlds
    from training.worlds import Worlds
    from worldmodel.dataset import TrajectoryDataset

    assert (out / "side.log").is_file()
    here = Worlds(cfg, TrajectoryDataset(data))
    for p_idx, (spec, name) in enumerate(zip(cfg.policies, cfg.names)):
        episodes, _ = true_worlds(cfg, p_idx, spec, here)
        for world, eps in episodes.items():
            returns = [float(e["rewards"].sum()) for e in eps]
            np.testing.assert_allclose(report["policies"][name]["worlds"][world]["returns"], returns, rtol=1e-6)


def test_validate_diagnoses_fewer_episodes(setup, tmp_path):
    """--diagnose-episodes 2 of 3: the replay and the reward head judge each policy's first two episodes (on a
    smaller core), ranked against reality's same two; the worlds keep all three."""
    env, model, data, root = setup
    cfg = ValidateConfig(
        model,
        data,
        policies=("random", str(root / "run" / "policy")),
        reality="room:" + str(EXAMPLE_DIR),
        env_kwargs=json.dumps({"goal": [-2.2, -0.8]}),
        episodes=3,
        max_steps=6,
        diagnose_episodes=2,
        out=tmp_path / "val",
    )
    report = validate(cfg)
    for r in report["policies"].values():
        assert all(s["episodes"] == 3 for s in r["worlds"].values())
        assert all(s["episodes"] == 2 for s in r["diagnosis"].values())
    assert set(report["diagnosis"]["pairs"]) == {"reward_model", "replay", "imagination"}
    assert report["diagnosis"]["episodes"] == 2 and "first 2 episodes" in (tmp_path / "val" / "report.md").read_text()
    with pytest.raises(UserInputError, match="--diagnose-episodes 0"):
        validate(ValidateConfig(model, data, diagnose_episodes=0, out=tmp_path / "bad"))


def test_validate_bad_input(setup, tmp_path, capsys):
    from training.cli import main

    _, model, data, root = setup
    with pytest.raises(UserInputError, match="differ from the model"):
        validate(ValidateConfig(model, data, policies=("random",), reality="CartPole-v1", out=tmp_path / "a"))
    with pytest.raises(UserInputError, match="cannot import"):
        validate(ValidateConfig(model, data, policies=("nosuchmodule:fn",), scene=root / "scene", out=tmp_path / "b"))
    with pytest.raises(UserInputError, match="one distinct label per policy"):
        validate(ValidateConfig(model, data, policies=("random", "sticky"), names=("a",), out=tmp_path / "d"))
    with pytest.raises(UserInputError, match="--spread-episodes 0"):
        validate(ValidateConfig(model, data, policies=("random",), spread_episodes=0, out=tmp_path / "e"))
    assert not (tmp_path / "e").exists()
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
        snap_to=data if kind == "compare" else None,  # imagination shown as the data's nearest frames
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
    """Without --reality, reality is the dataset's source env observed through render(), as `collect` saw it."""
    from training.collect import CollectConfig, collect

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
    tiny_world_model(resolution=(40, 40), num_steps=1).save_pretrained(tmp_path / "model")
    report = validate(
        ValidateConfig(
            tmp_path / "model",
            data,
            policies=("random",),
            episodes=2,
            max_steps=4,
            snap_to_data=True,
            out=tmp_path / "val",
        )
    )
    assert report["reality"] == "worldmodel/SceneNav-v0" and report["worlds"] == ["reality", "imagination"]
    # imagination snapped to the data: every imagined frame is one of the dataset's, at a reported distance
    assert report["snap_to_data"] and report["policies"]["random"]["trust"]["snap_distance"] >= 0
    assert "snap distance" in (tmp_path / "val" / "report.md").read_text()
    true_frames = iio.imread(tmp_path / "val" / "frames_0.png")
    assert true_frames.shape[0] == 2 * 40 + 2  # the real row above the imagined row, at the model's resolution
    assert len(report["policies"]["random"]["worlds"]["reality"]["returns"]) == 2
