"""DreamEnv and DreamVectorEnv: spaces identical to the SceneEnv the model learned, seeding,
batched stepping, both autoreset modes, make/make_vec, API checkers and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from helpers import small_cnn_ppo, tiny_world_model

import envs  # noqa: F401  (registers the environments)
from envs.dream_env import DreamEnv, DreamVectorEnv
from envs.scene_env import SceneEnv
from scenes.truth_scene import truth_scene
from training.collect import RecordEpisodes
from wmcore.errors import UserInputError

RES = 40


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A SceneEnv at 40x40 (the smallest SB3 CnnPolicy takes), a dataset recorded in it, and a tiny
    (untrained) model on that data."""
    root = tmp_path_factory.mktemp("dream")
    scene = truth_scene(root / "scene", num_gaussians=3000, views=8)
    env = SceneEnv(scene, width=RES, height=RES, max_steps=12)
    recorder = RecordEpisodes(env, root / "data", (RES, RES), frames="observation")
    rng = np.random.default_rng(0)
    for ep in range(3):
        recorder.reset(seed=ep)
        done = False
        while not done:
            _, _, te, tr, _ = recorder.step(int(rng.integers(3)))
            done = te or tr
    recorder.close()
    tiny_world_model(resolution=(RES, RES)).save_pretrained(root / "model")
    return env, root / "model", root / "data"


def test_spaces_identical_to_scene_env(setup):
    env, model, data = setup
    dream = DreamEnv(model, data)
    assert dream.observation_space == env.observation_space
    assert dream.action_space == env.action_space
    vec = DreamVectorEnv(model, data, num_envs=4)
    assert vec.single_observation_space == env.observation_space
    assert vec.single_action_space == env.action_space


def test_checkers(setup):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    _, model, data = setup
    check_env(DreamEnv(model, data, max_steps=5), skip_render_check=True)
    sb3_check_env(DreamEnv(model, data, max_steps=5), warn=False)


def test_seeded_rollouts_repeat(setup):
    _, model, data = setup

    def run(seed):
        env = DreamVectorEnv(model, data, num_envs=3, max_steps=50)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for t in range(4):
            obs, r, te, tr, _ = env.step(np.array([t % 3, 1, 2]))
            out += [obs, r, te]
        return out

    a, b = run(0), run(0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(run(1)[1], a[1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dream_vector_env_with_the_model_on_cuda(setup):
    """The model on the GPU, the environment's state on the host: observations, rewards and flags come
    back as numpy, with CPU runs' shapes and dtypes, and seeded rollouts repeat."""
    _, model, data = setup

    def run(device):
        env = DreamVectorEnv(model, data, num_envs=3, max_steps=50, device=device)
        assert env.core.model.device.type == device
        obs, _ = env.reset(seed=0)
        out = [obs]
        for t in range(4):
            obs, r, te, tr, _ = env.step(np.array([t % 3, 1, 2]))
            out += [obs, r, te, tr]
        return out

    gpu, cpu = run("cuda"), run("cpu")
    for x, y, z in zip(gpu, run("cuda"), cpu):
        np.testing.assert_array_equal(x, y)
        assert isinstance(x, np.ndarray) and x.dtype == z.dtype and x.shape == z.shape


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_autoreset_modes(setup, mode):
    _, model, data = setup
    env = DreamVectorEnv(model, data, num_envs=2, max_steps=2, autoreset_mode=mode)
    assert env.metadata["autoreset_mode"] == mode
    with torch.no_grad():  # the untrained model must not end episodes itself: only the step limit does
        env.core.model.reward_model.head[-1].bias[1] = -1e4
    env.reset(seed=0)
    env.step(np.array([0, 0]))
    obs, r, te, tr, info = env.step(np.array([0, 0]))
    assert (tr | te).all()  # step limit reached
    if mode == AutoresetMode.SAME_STEP:
        assert info["_final_obs"].all() and info["final_obs"].shape == obs.shape
        # the returned observation is already the first of a new episode: a dataset frame
        assert env.core.steps.tolist() == [0, 0]
    else:
        obs2, r2, te2, tr2, _ = env.step(np.array([1, 1]))  # this step resets, ignoring the action
        assert (r2 == 0).all() and not (te2 | tr2).any()
        assert env.core.steps.tolist() == [0, 0]


def test_make_and_make_vec(setup):
    _, model, data = setup
    env = gym.make("worldmodel/Dream-v0", model=str(model), dataset=str(data))
    obs, _ = env.reset(seed=0)
    assert obs.shape == (RES, RES, 3)
    vec = gym.make_vec(
        "worldmodel/Dream-v0", num_envs=3, vectorization_mode="vector_entry_point", model=str(model), dataset=str(data)
    )
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (3, RES, RES, 3)
    obs, *_ = vec.step(vec.action_space.sample())
    assert obs.shape == (3, RES, RES, 3)


def test_bad_input(setup, tmp_path):
    _, model, data = setup
    env = DreamEnv(model, data)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(5)
    with pytest.raises(UserInputError, match="no such world model"):
        DreamEnv(tmp_path / "missing", data)
    with pytest.raises(UserInputError):
        DreamEnv(model, tmp_path / "missing")


def test_sb3_ppo_trains_on_scene_env_and_dream_vector_env(setup):
    """PPO runs its real update loop on both; the imagined batch stays one model call per step."""
    from envs.sb3 import SB3DreamVecEnv

    env, model, data = setup
    ppo = small_cnn_ppo(env, n_steps=16, batch_size=16, features_dim=32, normalize_images=True)
    ppo.learn(32)
    vec = DreamVectorEnv(model, data, num_envs=4, max_steps=6, autoreset_mode=AutoresetMode.SAME_STEP)
    calls = []
    sample = vec.core.model.sample_next
    vec.core.model.sample_next = lambda *a, **k: calls.append(a[0].shape[0]) or sample(*a, **k)
    ppo2 = small_cnn_ppo(SB3DreamVecEnv(vec), n_steps=8, batch_size=16, features_dim=32)
    ppo2.learn(32)
    assert calls and set(calls) == {4}  # every model call carried the whole batch
    # The policy trained in imagination acts in the SceneEnv unchanged.
    obs, _ = env.reset(seed=0)
    action, _ = ppo2.predict(obs, deterministic=True)
    env.step(action)


def test_uncertainty_penalty_is_the_spread_of_two_sampled_futures(setup):
    """MOPO-style: the penalised reward is the model's reward for the returned frame minus lambda times the
    RMS difference (pixels in [0, 1]) between it and a second sample from the same context."""
    _, model, data = setup
    vec = DreamVectorEnv(model, data, num_envs=3, uncertainty_penalty=2.0)
    vec.reset(seed=0)
    frames, actions = vec.core.frames.clone(), vec.core.actions.clone()
    acts = np.array([0, 1, 2])
    obs, reward, _, _, info = vec.step(acts)
    u = info["uncertainty"]
    assert u.shape == (3,) and (u > 0).all() and (u <= 1).all()  # an untrained model is unsure everywhere
    actions[:, -1] = torch.as_tensor(acts)
    plain, _ = vec.core.model.predict_reward_termination(frames, actions, torch.as_tensor(obs))
    np.testing.assert_allclose(reward, plain.numpy() - 2.0 * u, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="uncertainty_penalty"):
        DreamVectorEnv(model, data, num_envs=1, uncertainty_penalty=-1.0)


def test_the_spread_can_be_measured_on_the_first_envs_only(setup, monkeypatch):
    """spread_envs=k draws the second sample for the first k envs only (one call of n + k frames): their spread is
    measured, the others' is NaN, and every env still steps."""
    from envs.dream_env import DreamCore

    _, model, data = setup
    core = DreamCore(model, data, 3, 8, "cpu", None)
    core.seed(0)
    core.reset_envs(np.arange(3), np.random.default_rng(0))
    sizes = []
    sample_next = core.model.sample_next

    def counting(frames, *args, **kw):
        sizes.append(len(frames))
        return sample_next(frames, *args, **kw)

    monkeypatch.setattr(core.model, "sample_next", counting)
    obs, reward, _, _ = core.step(np.array([0, 1, 2]), spread=True, spread_envs=1)
    assert sizes == [4] and obs.shape[0] == 3 and reward.shape == (3,)
    assert np.isfinite(core.spread[0]) and core.spread[0] > 0 and np.isnan(core.spread[1:]).all()
    core.step(np.array([0, 1, 2]), spread=True)
    assert sizes[-1] == 6 and np.isfinite(core.spread).all()


def test_frame_memory_finds_the_nearest_stored_frame():
    """Against a brute-force search at the pooled resolution: the same frames and RMS distances, across chunks."""
    import worldmodel.frame_memory as fm

    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    queries = torch.as_tensor(rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8))
    queries[2] = torch.as_tensor(stored[17])  # a stored frame is its own nearest, at distance 0
    old = fm.CHUNK
    try:
        fm.CHUNK = 16  # several chunks
        memory = fm.FrameMemory(stored, factor=2)
        frames, dist = memory.nearest(queries)
    finally:
        fm.CHUNK = old
    keys = stored.reshape(50, 4, 2, 4, 2, 3).astype(np.float64).mean((2, 4)).reshape(50, -1)
    q = queries.numpy().reshape(6, 4, 2, 4, 2, 3).astype(np.float64).mean((2, 4)).reshape(6, -1)
    d = ((q[:, None] - keys[None]) ** 2).mean(2)
    np.testing.assert_array_equal(frames.numpy(), stored[d.argmin(1)])
    np.testing.assert_allclose(dist.numpy(), np.sqrt(d.min(1)), rtol=1e-3, atol=0.05)
    assert dist[2] < 0.05
    with pytest.raises(ValueError, match="divide"):
        fm.FrameMemory(stored, factor=3)


def test_snap_to_data_shows_dataset_frames(setup):
    """With snap_to_data every imagined frame is a frame of the dataset, the one nearest to the model's sample;
    the reward is predicted on it and info carries the snap distance."""
    from worldmodel.dataset import TrajectoryDataset

    _, model, data = setup
    stored = np.concatenate([ep.frames for ep in TrajectoryDataset(data).episodes])
    vec = DreamVectorEnv(model, data, num_envs=3, max_steps=6, snap_to_data=True)
    vec.reset(seed=0)
    plain = DreamVectorEnv(model, data, num_envs=3, max_steps=6)
    plain.reset(seed=0)
    for t in range(4):
        frames, actions = vec.core.frames.clone(), vec.core.actions.clone()
        acts = np.array([0, 1, 2])
        live = ~vec._done  # envs that ended last step restart (reward 0) instead
        obs, reward, _, _, info = vec.step(acts)
        sample, *_ = plain.step(acts)
        for i in range(3):
            assert (stored == obs[i]).all((1, 2, 3)).any()  # a stored frame
        nearest, dist = vec.core.memory.nearest(torch.as_tensor(sample))
        if t == 0:  # same context and generator: the plain env's sample is the one snapped
            np.testing.assert_array_equal(obs, nearest.numpy())
            np.testing.assert_allclose(info["snap_distance"], dist.numpy(), rtol=1e-5)
        actions[:, -1] = torch.as_tensor(acts)
        expected, _ = vec.core.model.predict_reward_termination(frames, actions, torch.as_tensor(obs))
        np.testing.assert_allclose(reward[live], expected.numpy()[live], rtol=1e-5, atol=1e-6)
        assert (
            info["snap_distance"].shape == (3,) and (info["snap_distance"] >= 0).all() and info["_snap_distance"].all()
        )
    assert "snap_distance" not in plain.step(np.array([0, 1, 2]))[4]
