"""One policy protocol and resolver; reality (the true room) beside its twin; the world model's reduced
resolution; the data-coverage check; cloning demonstrations; recent-episode weighting."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from helpers import tiny_model_based_loop

from envs.reality import FloorMap, make_place_env, make_room_env, nearest_free
from scenes.room_scene import RoomScene
from scenes.synthetic import EXAMPLE_DIR, SyntheticRoom
from training.policies import (
    CallablePolicy,
    NoisyPolicy,
    Policy,
    RandomPolicy,
    StickyPolicy,
    act,
    load_policy,
    resolve_policy,
)
from wmcore.errors import UserInputError
from worldmodel.action_space import ActionSpace
from worldmodel.dataset import DatasetWriter, TrajectoryDataset

GOAL = (-2.2, -0.8)


@pytest.fixture(scope="module")
def room_env():
    return make_room_env(EXAMPLE_DIR, width=40, height=40, max_steps=60, goal=GOAL)


def test_every_policy_kind_resolves_to_the_protocol(room_env, tmp_path):
    from training.actor_critic import ActorCritic, ActorCriticNetConfig

    ActorCritic(ActorCriticNetConfig((40, 40, 3), channels=(8, 16, 16), hidden=32)).save(tmp_path / "p")
    obs, _ = room_env.reset(seed=0)
    specs = [
        "random",
        "sticky",
        "expert",
        "oracle",
        "noisy:0.5:expert",
        str(tmp_path / "p"),
        "training.examples.carracing_driver:Driver",
    ]
    for spec in specs[:-1]:
        policy = resolve_policy(spec, room_env, seed=1)
        assert isinstance(policy, Policy), spec
        a = act(policy, obs[None], deterministic=False, episode_start=[True])
        assert a.shape == (1,) and room_env.action_space.contains(int(a[0])), spec
        single, state = policy.predict(obs, deterministic=True)
        assert np.asarray(single).shape == () and state is None, spec
    box = spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    assert isinstance(resolve_policy(specs[-1], action_space=box, seed=0), Policy)
    with pytest.raises(UserInputError, match="noisy:EPS:SPEC"):
        resolve_policy("noisy:2:expert", room_env)
    with pytest.raises(UserInputError, match="not found"):
        resolve_policy(str(tmp_path / "missing"), room_env)
    with pytest.raises(UserInputError, match="cannot act in"):
        resolve_policy("expert", action_space=spaces.Discrete(3))


def test_a_saved_policy_samples_from_its_own_seeded_stream(tmp_path):
    """The seed given to resolve_policy decides a saved network's sampled actions, whatever else draws from
    torch in between, and sampling leaves the process's generator where it was."""
    from training.actor_critic import ActorCritic, ActorCriticNetConfig

    ActorCritic(ActorCriticNetConfig((40, 40, 3), channels=(8, 16, 16), hidden=32)).save(tmp_path / "p")
    obs = np.random.default_rng(0).integers(0, 256, (64, 40, 40, 3), dtype=np.uint8)
    space = spaces.Discrete(3)

    def sampled(seed: int) -> np.ndarray:
        policy = resolve_policy(str(tmp_path / "p"), action_space=space, seed=seed)
        torch.rand(1000)  # another user of torch's generator
        return np.concatenate([act(policy, obs, deterministic=False) for _ in range(3)])

    first = sampled(1)
    assert len(set(first.tolist())) > 1  # it samples (a fresh network is near uniform)
    np.testing.assert_array_equal(sampled(1), first)
    assert not np.array_equal(sampled(2), first)
    policy = resolve_policy(str(tmp_path / "p"), action_space=space, seed=1)
    torch.manual_seed(7)
    act(policy, obs, deterministic=False)
    after = torch.rand(3)
    torch.manual_seed(7)
    np.testing.assert_array_equal(after, torch.rand(3))


def test_stateful_policies_follow_episode_starts():
    space = spaces.Discrete(3)
    sticky = StickyPolicy(space, seed=0, hold_prob=1.0)  # never changes its mind within an episode
    obs = np.zeros((4, 8, 8, 3), np.uint8)
    first = act(sticky, obs, episode_start=np.ones(4, bool))
    for _ in range(5):
        np.testing.assert_array_equal(act(sticky, obs, episode_start=np.zeros(4, bool)), first)
    restarted = [act(sticky, obs, episode_start=np.ones(4, bool)) for _ in range(10)]
    assert any((r != first).any() for r in restarted)  # a new episode draws a new held action
    # noisy: eps 0 is the base policy, eps 1 is random, and about eps of the actions are replaced
    base = StickyPolicy(space, seed=1, hold_prob=1.0)
    base_first = act(base, obs, episode_start=np.ones(4, bool))
    assert (act(NoisyPolicy(base, space, 0.0), obs) == base_first).all()
    noisy = NoisyPolicy(CallablePolicy(lambda o: 0), space, 0.5, seed=3)
    acts = np.stack([act(noisy, obs) for _ in range(200)])
    assert 0.28 < (acts != 0).mean() < 0.39  # half replaced, a third of those by the same action
    rand = RandomPolicy(space, seed=0)
    assert len(set(act(rand, np.zeros((300, 8, 8, 3), np.uint8)).tolist())) == 3


def test_sb3_zip_loads_without_unpickling(tmp_path, room_env):
    from stable_baselines3 import PPO

    model = PPO(
        "CnnPolicy",
        room_env,
        n_steps=8,
        batch_size=8,
        seed=0,
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}},
    )
    model.save(tmp_path / "ppo.zip")
    policy = resolve_policy(str(tmp_path / "ppo.zip"), room_env)
    obs = np.stack([room_env.reset(seed=s)[0] for s in range(3)])
    want, _ = model.predict(obs, deterministic=True)
    got, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(got, want)
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="not a Stable-Baselines3 model zip"):
        resolve_policy(str(tmp_path / "bad.zip"), room_env)


def test_reality_is_the_true_room_behind_the_scene_interface(room_env):
    room = SyntheticRoom.load(EXAMPLE_DIR)
    scene = RoomScene(room)
    pts = np.array([[0.2, 0.1, 1.0], [-1.0, 1.0, 1.4]])  # inside the pillar; in free space
    np.testing.assert_array_equal(scene.is_free(pts, 0.1), [False, True])
    obs, info = room_env.reset(seed=3)
    K = SyntheticRoom.intrinsics(40, 40, room_env.cfg.hfov_deg)
    c2w = room_env.bodies.cameras()[0]  # the observation is the room's own ray-cast view from the body's camera
    rgb, _ = room.render(np.asarray(c2w, np.float64), K, 40, 40, 2)
    np.testing.assert_allclose(obs, rgb, atol=1)  # float32 poses in the env: a rounding step apart at most
    # the expert reaches the goal in the true room; moves never pass through its solids
    policy = resolve_policy("expert", room_env)
    for seed in range(3):
        obs, _ = room_env.reset(seed=seed)
        for _ in range(60):
            obs, _, term, trunc, info = room_env.step(act(policy, obs[None])[0])
            assert room.clearance(np.array([[*info["position"][:2], 0.5]]))[0] > room_env.cfg.body_radius - 1e-6
            if term or trunc:
                break
        assert info["success"]
    assert isinstance(make_place_env(f"room:{EXAMPLE_DIR}", width=40, height=40).unwrapped.scene, RoomScene)


def test_floor_map_round_trip_and_snapping(room_env):
    yaw, scale, t = 0.7, 1.3, np.array([0.5, -0.2])
    T = np.eye(4)
    T[:3, :3] = scale * np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
    T[:2, 3] = t
    fm = FloorMap(T)
    assert fm.scale == pytest.approx(scale) and fm.yaw == pytest.approx(yaw)
    p = np.array([1.0, -0.5])
    np.testing.assert_allclose(fm.to_room(fm.to_twin(p)), p)
    x, y, h = fm.pose_to_twin((1.0, -0.5, 0.3))
    np.testing.assert_allclose(fm.to_room((x, y)), p)
    assert h == pytest.approx(0.3 - yaw)
    np.testing.assert_allclose(fm.pose_to_room((x, y, h)), (1.0, -0.5, 0.3))  # and back
    assert np.array_equal(FloorMap(np.eye(4)).to_twin(p), p)
    many = np.array([[1.0, -0.5], [0.3, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(fm.to_twin(many), [fm.to_twin(q) for q in many])  # point by point
    np.testing.assert_allclose(fm.to_room(fm.to_twin(many)), many, atol=1e-12)
    inside_pillar = nearest_free(room_env, (0.2, 0.1))
    i, j = room_env.grid.cell_of(inside_pillar)
    assert room_env.grid.free[i, j] and np.linalg.norm(inside_pillar - [0.2, 0.1]) < 0.8


def test_downsampled_world_model_predicts_full_size_frames():
    from worldmodel.config import WorldModelConfig
    from worldmodel.model import WorldModel

    torch.manual_seed(0)
    m = WorldModel(
        WorldModelConfig(
            resolution=(40, 40),
            action_space={"kind": "discrete", "n": 3},
            downsample=2,
            block_out_channels=(8, 16),
            reward_channels=(8,),
            num_steps=2,
        )
    ).eval()
    assert m.config.network_resolution == (20, 20) and m.unet.config.sample_size == 20
    frames = torch.randint(0, 256, (2, 5, 40, 40, 3), dtype=torch.uint8)
    actions = torch.randint(0, 3, (2, 4))
    loss, _, _ = m(frames, actions, torch.zeros(2), torch.zeros(2, dtype=torch.bool))
    assert torch.isfinite(loss)
    nxt, reward, term = m.step(frames[:, :4], actions)
    assert nxt.shape == (2, 40, 40, 3) and nxt.dtype == torch.uint8
    assert (nxt[:, ::2, ::2] == nxt[:, 1::2, 1::2]).all()  # each predicted pixel covers 2x2 observed ones
    with pytest.raises(UserInputError, match="downsample"):
        WorldModelConfig(resolution=(40, 40), downsample=3)


def _episodes(root, n_expert=3, n_random=2):
    """A tiny dataset: expert episodes (recorded policy 'noisy:0.3:expert') then random ones, from the true room."""
    from training.collect import RecordEpisodes

    env = make_room_env(EXAMPLE_DIR, width=40, height=40, max_steps=12, goal=GOAL)
    rec = RecordEpisodes(env, root, (40, 40), frames="observation", meta={"policy": "noisy:0.3:expert"})
    for spec, count in (("noisy:0.3:expert", n_expert), ("random", n_random)):
        rec.meta = {"policy": spec, "world": "reality"}
        policy = resolve_policy(spec, env, seed=0)
        for ep in range(count):
            obs, _ = rec.reset(seed=ep)
            done, t = False, 0
            while not done:
                obs, _, te, tr, _ = rec.step(act(policy, obs[None], episode_start=[t == 0])[0])
                done, t = te or tr, t + 1
    rec.close()
    return TrajectoryDataset(root)


def test_episode_meta_cloning_and_coverage(tmp_path):
    from training.behaviour_cloning import BehaviourCloningConfig, behaviour_cloning, demonstrations
    from training.policies import load_policy
    from worldmodel.coverage import DataCoverage

    ds = _episodes(tmp_path / "data")
    assert [e.meta["policy"] for e in ds.episodes] == ["noisy:0.3:expert"] * 3 + ["random"] * 2
    obs, acts = demonstrations(ds, "expert")
    assert len(obs) == sum(e.steps for e in ds.episodes[:3]) == len(acts)
    path = behaviour_cloning(
        BehaviourCloningConfig(
            tmp_path / "data", out=tmp_path / "bc", steps=150, batch_size=32, channels=(8, 16, 16), hidden=32
        )
    )
    summary = json.loads((tmp_path / "bc" / "summary.json").read_text())
    assert summary["pairs"] == len(obs) and summary["train_action_agreement"] > 0.6  # it fits its demonstrations
    clone = load_policy(path)
    assert json.loads((path / "policy.json").read_text())["algorithm"] == "behaviour-cloning"
    assert clone.predict(obs[:5], deterministic=True)[0].shape == (5,)
    with pytest.raises(UserInputError, match="no episode was recorded"):
        behaviour_cloning(BehaviourCloningConfig(tmp_path / "data", out=tmp_path / "bc2", demonstrations="nobody"))
    cov = DataCoverage.from_dataset(ds, holdout=1)
    assert cov.outside_fraction(np.asarray(ds.episodes[0].frames)) == 0.0  # training frames are in the data
    noise = np.random.default_rng(0).integers(0, 256, (20, 40, 40, 3), dtype=np.uint8)
    assert cov.outside_fraction(noise) == 1.0
    with pytest.raises(UserInputError, match="not plain JSON"):
        DatasetWriter(tmp_path / "data", ds.action_space, (40, 40), append=True).add(
            np.zeros((2, 40, 40, 3), np.uint8), [0], [0.0], [False], [True], meta={"x": object()}
        )
    assert len(TrajectoryDataset(tmp_path / "data")) == 5  # the refused episode left nothing behind


def test_dagger_labels_what_the_clone_meets_with_the_experts_actions(tmp_path):
    """DAgger: the expert labels every observation the driver met; driven by the expert itself, the labels are
    the actions it took and it succeeds. A clone corrected for two rounds gains those labels and says so."""
    import torch

    from envs.scene_config import SceneEnvConfig
    from training.augment import augment
    from training.behaviour_cloning import BehaviourCloningConfig, behaviour_cloning, drive_and_label

    env = make_room_env(EXAMPLE_DIR, width=40, height=40, max_steps=60, goal=GOAL)
    expert = resolve_policy("expert", env)

    class Recorder:  # the expert driving, its actions kept
        taken: list[int] = []

        def predict(self, obs, episode_start=None, deterministic=False):
            a = int(expert.predict(None)[0])
            self.taken.append(a)
            return np.array(a), None

    driver = Recorder()
    obs, labels, success = drive_and_label(driver, env, expert, 2, seed=3)
    assert success == 1.0 and labels.tolist() == driver.taken and len(obs) == len(labels)
    aug = augment(torch.as_tensor(obs[:8]), torch.Generator().manual_seed(0))
    assert aug.shape == obs[:8].shape and aug.dtype == torch.float32 and 0 <= aug.min() and aug.max() <= 255

    _episodes(tmp_path / "data")
    cfg = BehaviourCloningConfig(
        tmp_path / "data",
        out=tmp_path / "bc",
        steps=30,
        batch_size=16,
        channels=(8, 16, 16),
        hidden=32,
        input_size=20,
        dagger_scene=f"room:{EXAMPLE_DIR}",
        env=SceneEnvConfig(width=40, height=40, max_steps=12, goal=GOAL),
        dagger_rounds=2,
        dagger_episodes=2,
        dagger_steps=10,
    )
    path = behaviour_cloning(cfg)
    rounds = json.loads((tmp_path / "bc" / "summary.json").read_text())["dagger"]
    pairs = json.loads((tmp_path / "bc" / "summary.json").read_text())["pairs"]
    assert [r["round"] for r in rounds] == [0, 1] and pairs < rounds[0]["labels"] < rounds[1]["labels"]
    meta = json.loads((path / "policy.json").read_text())
    assert meta["algorithm"] == "behaviour-cloning + DAgger" and meta["net"]["input_size"] == 20
    # a clone that sees its last two views: fitted on each demonstrated step's two latest frames, corrected alike
    two = behaviour_cloning(dataclasses.replace(cfg, out=tmp_path / "bc2", frames=2, dagger_rounds=1))
    clone = load_policy(two)
    assert clone.config.frames == 2 and json.loads((tmp_path / "bc2" / "summary.json").read_text())["pairs"] == pairs
    assert env.action_space.contains(int(clone.predict(env.reset(seed=0)[0], episode_start=[True])[0]))
    cfg.out, cfg.env = tmp_path / "bc3", SceneEnvConfig(width=32, height=32, goal=GOAL)
    with pytest.raises(UserInputError, match="recorded at"):
        behaviour_cloning(cfg)
    assert not (tmp_path / "bc3").exists()
    cfg.env, cfg.dagger_scene, cfg.dagger_goals = (
        SceneEnvConfig(width=40, height=40),
        (cfg.dagger_scene[0],) * 2,
        (1, 2, 3),
    )
    with pytest.raises(UserInputError, match="two numbers .x y. per --dagger-scene"):
        behaviour_cloning(cfg)  # each scene's goal in its own frame
    cfg.dagger_scene, cfg.dagger_goals = (), (1, 2)
    with pytest.raises(UserInputError, match="two numbers .x y. per --dagger-scene"):
        behaviour_cloning(cfg)  # goals for scenes that were not given
    assert not (tmp_path / "bc3").exists()


def test_recent_episodes_get_their_share_of_every_batch(tmp_path):
    from worldmodel.segments import SegmentSampler

    w = DatasetWriter(tmp_path / "d", ActionSpace.from_dict({"kind": "discrete", "n": 3}), (8, 8))
    for _ in range(8):
        w.add(np.zeros((11, 8, 8, 3), np.uint8), [0] * 10, [0.0] * 10, [False] * 10, [False] * 9 + [True])
    s = SegmentSampler(TrajectoryDataset(tmp_path / "d").episodes, context=2)
    rng = np.random.default_rng(0)
    eps = np.array([s.locate(int(i))[0] for i in s.sample_indices(4000, rng, recent_fraction=0.7, recent_episodes=2)])
    share = (eps >= 6).mean()  # 70% drawn from the last two, plus their uniform share of the rest
    assert share == pytest.approx(0.7 + 0.3 * 2 / 8, abs=0.03)
    uniform = np.array([s.locate(int(i))[0] for i in s.sample_indices(4000, rng)])
    assert (uniform >= 6).mean() == pytest.approx(2 / 8, abs=0.03)


@pytest.mark.parametrize("command", ["collect", "model-based"])
def test_env_kwargs_are_parsed_in_one_place(command, tmp_path, capsys):
    from training.cli import main

    args = {
        "collect": ["collect", "CartPole-v1", "--out", str(tmp_path / "d")],
        "model-based": ["model-based", f"room:{EXAMPLE_DIR}", "--out", str(tmp_path / "m")],
    }[command]
    assert main([*args, "--env-kwargs", "{bad"]) == 2
    assert "--env-kwargs '{bad' is not valid JSON" in capsys.readouterr().err
    assert main([*args, "--env-kwargs", "[1, 2]"]) == 2
    assert "give a JSON object" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() and not (tmp_path / "m").exists()  # nothing written


def test_model_based_loop_on_a_standard_env_with_continuous_actions(tmp_path):
    """CarRacing-v3: reality is the env itself (no twin), frames are its render() resized, actions a Box."""
    pytest.importorskip("Box2D")
    from training.model_based import ModelBasedConfig, model_based
    from training.policies import load_policy

    result = model_based(
        ModelBasedConfig(
            "CarRacing-v3",
            out=tmp_path / "mb",
            resolution=(32, 32),
            episode_steps=12,
            real_episodes=1,
            initial_policy="random",
            deploy="best_real",
            **tiny_model_based_loop(),
        )
    )
    assert result["real_steps"] == 36 and result["free_episodes"] == 0
    # CarRacing reports no success (leaving the track ends an episode too): none is claimed, return decides
    assert all(it["collected_success"] is None for it in result["iterations"])
    assert result["deploy"]["success"] is None and len(result["deploy"]["candidates"]) == 2
    policy = load_policy(tmp_path / "mb" / "policy")
    a, _ = policy.predict(np.zeros((32, 32, 3), np.uint8), deterministic=False)
    assert a.shape == (3,) and (a >= [-1, 0, 0]).all() and (a <= [1, 1, 1]).all()


def test_psnr_gain_interval_over_segments():
    from worldmodel.evaluation import gain_interval

    rng = np.random.default_rng(0)
    copy = torch.as_tensor(rng.uniform(0.01, 0.02, (64, 3)))
    ci = gain_interval(copy / 10, copy, (1, 3))  # a tenth of copy-last's error: exactly +10 dB
    assert ci["1"] == pytest.approx([10.0, 10.0]) and ci["3"] == pytest.approx([10.0, 10.0])
    noisy = copy * torch.as_tensor(rng.uniform(0.5, 1.6, (64, 3)))  # no gain on average: the interval spans 0
    lo, hi = gain_interval(noisy, copy, (2,))["2"]
    assert lo < 0 < hi


def test_floor_agreement_compares_where_the_body_fits(room_env):
    """The room against itself agrees everywhere; a fatter body in a "twin" is blocked near every wall but
    never free where the room is solid; a twin shifted by half a metre errs both ways."""
    from envs.reality import floor_agreement

    same = floor_agreement(room_env, room_env, FloorMap(np.eye(4)))
    assert same["blocked_in_twin"] == 0 and same["free_in_twin_only"] == 0 and same["iou"] == 1
    fat = make_room_env(EXAMPLE_DIR, width=40, height=40, max_steps=60, goal=GOAL, body_radius=0.35)
    cautious = floor_agreement(fat, room_env, FloorMap(np.eye(4)))
    assert 0.05 < cautious["blocked_in_twin"] < 0.6 and cautious["free_in_twin_only"] == 0
    shift = np.eye(4)
    shift[0, 3] = 0.5
    shifted = floor_agreement(room_env, room_env, FloorMap(shift))
    assert shifted["blocked_in_twin"] > 0.02 and shifted["free_in_twin_only"] > 0.02 and shifted["iou"] < 0.95
