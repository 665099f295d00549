"""Trajectory datasets: on-disk format round trip, memory mapping, bad input, segments, recording."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from wmcore.errors import UserInputError
from worldmodel.action_space import ActionSpace
from worldmodel.dataset import DatasetWriter, TrajectoryDataset
from worldmodel.segments import SegmentSampler


def square_episode(rng: np.random.Generator, steps: int, size: int = 16, continuous: bool = False):
    """A white square moved left/stay/right by the action; reward +1 when it hits a wall.

    Returns (frames [steps+1,size,size,3] uint8, actions, rewards, terminated, truncated)."""
    x, y = int(rng.integers(2, size - 6)), int(rng.integers(2, size - 6))
    frames, actions, rewards = [], [], []

    def draw(px: int) -> np.ndarray:
        f = np.zeros((size, size, 3), np.uint8)
        f[:, :, 2] = 40
        f[y : y + 4, px : px + 4] = 255
        return f

    frames.append(draw(x))
    for _ in range(steps):
        if continuous:
            a = rng.uniform(-1, 1, size=2).astype(np.float32)
            dx = int(np.round(a[0] * 2))
        else:
            a = int(rng.integers(0, 3))
            dx = (a - 1) * 2
        nx = int(np.clip(x + dx, 0, size - 4))
        rewards.append(1.0 if nx != x + dx else 0.0)
        x = nx
        actions.append(a)
        frames.append(draw(x))
    terminated = np.zeros(steps, bool)
    terminated[-1] = True
    return (
        np.stack(frames),
        np.stack(actions),
        np.array(rewards, np.float32),
        terminated,
        np.zeros(steps, bool),
    )


def make_dataset(
    path: Path,
    episodes: int = 3,
    steps: int = 30,
    size: int = 16,
    continuous: bool = False,
    seed: int = 0,
    text: str | None = None,
) -> Path:
    rng = np.random.default_rng(seed)
    space = ActionSpace.box([-1, -1], [1, 1]) if continuous else ActionSpace.discrete(3)
    w = DatasetWriter(path, space, (size, size), source={"test": "squares"})
    for i in range(episodes):
        w.add(*square_episode(rng, steps, size, continuous), text=(f"{text} {i}" if text else None))
    return path


def test_round_trip_is_memory_mapped_and_exact(tmp_path):
    rng = np.random.default_rng(0)
    ep = square_episode(rng, 12)
    w = DatasetWriter(tmp_path / "d", ActionSpace.discrete(3), (16, 16))
    w.add(*ep, text="push the square")
    ds = TrajectoryDataset(tmp_path / "d")
    e = ds.episodes[0]
    assert isinstance(e.frames, np.memmap) and not e.frames.flags.writeable
    np.testing.assert_array_equal(e.frames, ep[0])
    np.testing.assert_array_equal(e.actions, ep[1])
    np.testing.assert_array_equal(e.rewards, ep[2])
    assert e.terminated[-1] and e.text == "push the square" and e.steps == 12
    index = json.loads((tmp_path / "d" / "dataset.json").read_text())
    assert index["action_space"] == {"kind": "discrete", "n": 3} and index["episodes"][0]["steps"] == 12


def test_continuous_action_space_round_trip(tmp_path):
    ds = TrajectoryDataset(make_dataset(tmp_path / "d", episodes=1, continuous=True))
    assert ds.action_space == ActionSpace.box([-1, -1], [1, 1])
    assert ds.episodes[0].actions.dtype == np.float32 and ds.episodes[0].actions.shape == (30, 2)


def test_writer_rejects_bad_episodes(tmp_path):
    w = DatasetWriter(tmp_path / "d", ActionSpace.discrete(3), (16, 16))
    frames, actions, rewards, term, trunc = square_episode(np.random.default_rng(0), 5)
    with pytest.raises(UserInputError, match="empty episode"):
        w.add(frames[:1], actions[:0], rewards[:0], term[:0], trunc[:0])
    with pytest.raises(UserInputError, match=r"uint8 \[N\+1,16,16,3\]"):
        w.add(np.zeros((6, 8, 8, 3), np.uint8), actions, rewards, term, trunc)
    bad = rewards.copy()
    bad[2] = np.nan
    with pytest.raises(UserInputError, match="NaN"):
        w.add(frames, actions, bad, term, trunc)
    with pytest.raises(UserInputError, match=r"0\.\.2"):
        w.add(frames, actions + 5, rewards, term, trunc)
    with pytest.raises(UserInputError, match="already exists"):
        w.add(frames, actions, rewards, term, trunc)
        DatasetWriter(tmp_path / "d", ActionSpace.discrete(3), (16, 16))


def test_reader_names_the_bad_file(tmp_path):
    d = make_dataset(tmp_path / "d", episodes=2)
    frames_file = d / "episodes" / "ep_000001.frames.npy"
    # mismatched frame size on disk
    np.save(frames_file, np.zeros((31, 8, 8, 3), np.uint8))
    with pytest.raises(UserInputError, match=r"ep_000001\.frames\.npy.*resolution"):
        TrajectoryDataset(d)
    # truncated .npy
    make_dataset(tmp_path / "e", episodes=1)
    f = tmp_path / "e" / "episodes" / "ep_000000.frames.npy"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(UserInputError, match="truncated"):
        TrajectoryDataset(tmp_path / "e")
    # truncated safetensors
    make_dataset(tmp_path / "g", episodes=1)
    s = tmp_path / "g" / "episodes" / "ep_000000.safetensors"
    s.write_bytes(s.read_bytes()[:50])
    with pytest.raises(UserInputError, match="safetensors"):
        TrajectoryDataset(tmp_path / "g")
    # NaN reward on disk
    from wmcore.tensors import load_tensors, save_tensors

    make_dataset(tmp_path / "n", episodes=1)
    p = tmp_path / "n" / "episodes" / "ep_000000.safetensors"
    t = load_tensors(p)
    t["rewards"][3] = float("nan")
    save_tensors(p, t)
    with pytest.raises(UserInputError, match="NaN/inf reward at step 3"):
        TrajectoryDataset(tmp_path / "n")
    # empty episode in the index
    make_dataset(tmp_path / "z", episodes=1)
    idx = json.loads((tmp_path / "z" / "dataset.json").read_text())
    idx["episodes"][0]["steps"] = 0
    (tmp_path / "z" / "dataset.json").write_text(json.dumps(idx))
    with pytest.raises(UserInputError, match="empty"):
        TrajectoryDataset(tmp_path / "z")
    with pytest.raises(UserInputError, match="no dataset.json"):
        TrajectoryDataset(tmp_path / "missing")


def test_segments_align_frames_actions_and_rewards(tmp_path):
    ds = TrajectoryDataset(make_dataset(tmp_path / "d", episodes=2, steps=10))
    s = SegmentSampler(ds.episodes, context=4, horizon=3)
    assert len(s) == 2 * (10 + 2 - 7)
    b = s.batch(s.sample_indices(5, np.random.default_rng(0)))
    assert b["frames"].shape == (5, 7, 16, 16, 3) and b["frames"].dtype == torch.uint8
    assert b["actions"].shape == (5, 6) and b["rewards"].shape == (5, 6)
    e, start = s.locate(len(s) - 1)
    one = s.batch([len(s) - 1])
    ep = ds.episodes[e]
    np.testing.assert_array_equal(one["frames"][0].numpy(), ep.frames[start : start + 7])
    np.testing.assert_array_equal(one["actions"][0].numpy(), ep.actions[start : start + 6])
    assert start + 7 == ep.steps + 1  # the last segment ends on the final observation
    with pytest.raises(UserInputError, match="long enough"):
        SegmentSampler(ds.episodes, context=4, horizon=20)


def collect_breakout(**config) -> Path:
    """`collect` on ALE Breakout at 16x16 with sticky actions off; `config` adds CollectConfig fields."""
    from training.collect import CollectConfig, collect

    sticky_off = '{"repeat_action_probability": 0.0}'
    return collect(CollectConfig("ALE/Breakout-v5", resolution=(16, 16), env_kwargs=sticky_off, **config))


def test_collect_records_a_real_atari_env(tmp_path):
    out = collect_breakout(out=tmp_path / "bo", episodes=2, max_steps=25)
    ds = TrajectoryDataset(out)
    assert len(ds) == 2 and ds.action_space == ActionSpace.discrete(4) and ds.resolution == (16, 16)
    assert all(e.steps == 25 and e.truncated[-1] for e in ds.episodes)
    assert ds.episodes[0].frames.std() > 0  # real pixels, not a blank render
    assert (out / "config.json").is_file() and (out / "metrics.jsonl").is_file()


def test_carracing_driver_steers_toward_the_track():
    import gymnasium as gym

    from training.examples.carracing_driver import Driver, track_centre
    from training.policies import resolve_policy

    grass = np.zeros((96, 96, 3), np.uint8)
    grass[...] = (102, 204, 102)
    right = grass.copy()
    right[:, 60:80] = 105  # grey track to the right of the car (column 48)
    assert track_centre(grass) is None and track_centre(right) == pytest.approx(69.5)
    space = gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    driver = resolve_policy("training.examples.carracing_driver:Driver", action_space=space, seed=0)
    assert isinstance(driver, Driver)  # a class is built as Driver(action_space, seed)
    actions = np.array([driver.predict(right, deterministic=False)[0] for _ in range(400)])
    assert all(space.contains(a) for a in actions)
    assert np.median(actions[:, 0]) > 0.5  # mostly steering right, toward the track
    assert 0.02 < (actions[:, 0] < 0).mean() < 0.4  # with random excursions


def test_recorder_wrapper_in_a_user_loop(tmp_path):
    import ale_py
    import gymnasium as gym

    from training.collect import RecordEpisodes

    gym.register_envs(ale_py)
    env = RecordEpisodes(
        gym.make("ALE/Pong-v5", render_mode="rgb_array", repeat_action_probability=0.0),
        tmp_path / "pong",
        resolution=(32, 32),
        text="pong",
    )
    env.reset(seed=0)
    for _ in range(12):
        env.step(env.action_space.sample())
    env.reset(seed=1)  # an unfinished episode is stored as truncated
    for _ in range(5):
        env.step(env.action_space.sample())
    env.close()
    ds = TrajectoryDataset(tmp_path / "pong")
    assert [e.steps for e in ds.episodes] == [12, 5]
    assert ds.episodes[0].truncated[-1] and ds.episodes[0].text == "pong"
    assert ds.episodes[1].frames.shape == (6, 32, 32, 3)


def test_minari_dataset_imports(tmp_path, monkeypatch):
    """A real Minari dataset (recorded here with minari's DataCollector from ALE Pong, stored in a
    temporary MINARI_DATASETS_PATH) becomes a trajectory dataset; a missing one is a clear error."""
    minari = pytest.importorskip("minari")
    import ale_py
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer

    from worldmodel.minari_import import import_minari

    gym.register_envs(ale_py)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    env = gym.make("ALE/Pong-v5", repeat_action_probability=0.0, max_episode_steps=7)
    episodes = []
    for seed in (0, 1):  # whole episodes, as minari's own buffers hold them (its step-wise collector needs jax)
        obs, _ = env.reset(seed=seed)
        ep = {"observations": [obs], "actions": [], "rewards": [], "terminations": [], "truncations": []}
        done = False
        while not done:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in zip(ep, (obs, action, reward, terminated, truncated)):
                ep[key].append(value)
            done = terminated or truncated
        episodes.append(EpisodeBuffer(id=seed, **{k: np.asarray(v) for k, v in ep.items()}))
    minari.create_dataset_from_buffers(
        "test/pong-random-v0", episodes, env=env, algorithm_name="random", data_format="hdf5"
    )
    env.close()
    out = import_minari("test/pong-random-v0", tmp_path / "wm", (16, 16))
    ds = TrajectoryDataset(out)
    assert len(ds) == 2 and ds.action_space == ActionSpace.discrete(6) and ds.resolution == (16, 16)
    assert [e.steps for e in ds.episodes] == [7, 7] and all(e.truncated[-1] for e in ds.episodes)
    assert ds.episodes[0].frames.shape == (8, 16, 16, 3) and ds.episodes[0].frames.std() > 0
    with pytest.raises(UserInputError, match="not available locally"):
        import_minari("no-such/dataset-v0", tmp_path / "m", (16, 16))


def test_action_repeat_applies_each_action_several_env_steps():
    import gymnasium as gym

    from envs.action_repeat import ActionRepeat, make_rgb_env

    plain, wrapped = gym.make("CartPole-v1"), ActionRepeat(gym.make("CartPole-v1"), 3)
    plain.reset(seed=0)
    wrapped.reset(seed=0)
    for _ in range(3):
        inner = plain.step(1)
    obs, reward, term, trunc, info = wrapped.step(1)
    np.testing.assert_array_equal(obs, inner[0])  # the state after three steps of the same action
    assert reward == 3.0 and info["action_repeat_steps"] == 3
    while not term:  # pushing right topples the pole: the last step stops where the episode ends
        obs, reward, term, trunc, info = wrapped.step(1)
    assert 1 <= info["action_repeat_steps"] <= 3 and reward == info["action_repeat_steps"]
    with pytest.raises(ValueError, match="repeat"):
        ActionRepeat(gym.make("CartPole-v1"), 0)
    env = make_rgb_env("CartPole-v1", max_steps=4, action_repeat=2)
    env.reset(seed=1)
    steps = [env.step(i % 2) for i in range(4)]  # alternating pushes keep the pole up for 8 env steps
    assert [s[3] for s in steps] == [False, False, False, True]  # the limit counts agent steps


def test_collect_with_action_repeat_records_agent_steps(tmp_path):
    from training.collect import CollectConfig, collect
    from training.worlds import make_real_env

    out = collect_breakout(out=tmp_path / "bo", episodes=1, max_steps=5, action_repeat=3)
    ds = TrajectoryDataset(out)
    assert ds.index["source"]["action_repeat"] == 3
    assert ds.episodes[0].steps == 5 and ds.episodes[0].truncated[-1]  # the limit counts agent steps
    truth = make_real_env("ALE/Breakout-v5", 5, {}, ds.index["source"], (16, 16))
    truth.reset(seed=0)
    info = truth.step(0)[-1]
    # validation steps the real env as the data was recorded: 3 env steps of ALE's frameskip 4
    assert info["action_repeat_steps"] == 3 and info["frame_number"] == 12
    with pytest.raises(UserInputError, match="action-repeat"):
        collect(CollectConfig("CartPole-v1", out=tmp_path / "bad", episodes=1, action_repeat=0))
    assert not (tmp_path / "bad").exists()
