"""SceneVectorEnv: the same episodes as N single SceneNav envs (checked against Gymnasium's
SyncVectorEnv step by step, infos included, across autoresets in both modes), one render call and
one collision query per step, matched starts, observations on the scene's device, registration,
SB3 training through the generic adapter, and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from helpers import small_cnn_ppo

import envs  # noqa: F401  (registers the environments)
from envs.oracle import ShortestPathPolicy
from envs.sb3 import SB3VecEnv
from envs.scene_env import SceneEnv
from envs.scene_vector_env import SceneVectorEnv
from scenes.scene import Scene
from scenes.truth_scene import truth_scene
from wmcore.errors import UserInputError

GOAL = (-2.2, -0.8)  # free floor in front of the example room's brick wall


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return truth_scene(tmp_path_factory.mktemp("scene") / "room", num_gaussians=6000, views=12)


@pytest.fixture(scope="module")
def scene(scene_dir):
    return Scene.load(scene_dir)


def assert_same(a, b, where: str) -> None:
    """Equal to the bit, dtypes and shapes included, through dicts and object arrays (final_obs)."""
    if isinstance(a, tuple):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        for i, (x, y) in enumerate(zip(a, b)):
            assert (x is None) == (y is None), f"{where}[{i}]"
            if x is not None:
                assert_same(x, y, f"{where}[{i}]")
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        np.testing.assert_array_equal(a, b, err_msg=where)


CASES = {
    "pointnav-next-step": ("SceneNav", AutoresetMode.NEXT_STEP, {"goal": GOAL, "state": True}),
    "pointnav-same-step": ("SceneNav", AutoresetMode.SAME_STEP, {"goal": GOAL}),
    "random-goals-flying-depth": (
        "SceneNav",
        AutoresetMode.SAME_STEP,
        {"body": "flying", "actions": "continuous", "depth": True, "state": True},
    ),
    "explore-next-step": ("SceneExplore", AutoresetMode.NEXT_STEP, {"extended_actions": True}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_same_seeds_same_trajectories_as_single_envs(scene_dir, case):
    """make_vec's vector entry point against N single envs under Gymnasium's SyncVectorEnv, seeds
    seed + i: observations, rewards, terminated/truncated and infos (positions, goals, final_obs,
    final_info) equal at every step, through arrivals and time limits."""
    name, mode, options = CASES[case]
    n = 3
    kw = {"scene": str(scene_dir), "width": 24, "height": 16, "max_steps": 25, **options}
    vec = gym.make_vec(
        f"worldmodel/{name}-v0", num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kw
    )
    ref = gym.make_vec(
        f"worldmodel/{name}-v0", num_envs=n, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}, **kw
    )
    assert isinstance(vec, SceneVectorEnv) and vec.metadata["autoreset_mode"] == mode
    assert vec.single_observation_space == ref.single_observation_space
    assert vec.single_action_space == ref.single_action_space
    singles = [e.unwrapped for e in ref.envs]
    experts = [ShortestPathPolicy(e) for e in singles] if name == "SceneNav" and "actions" not in options else None
    rng = np.random.default_rng(1)
    assert_same(vec.reset(seed=7), ref.reset(seed=7), "reset")
    ended = {"terminated": 0, "truncated": 0}
    for t in range(70):
        actions = (
            vec.action_space.sample()
            if experts is None
            else np.array([e(None) if rng.random() > 0.1 else rng.integers(3) for e in experts])
        )
        got, want = vec.step(actions), ref.step(actions)
        for part, a, b in zip(("obs", "reward", "terminated", "truncated", "info"), got, want):
            assert_same(a, b, f"step {t} {part}")
        np.testing.assert_array_equal(vec.bodies.pos, [e.pos for e in singles])
        ended["terminated"] += int(got[2].sum())
        ended["truncated"] += int(got[3].sum())
    assert ended["truncated"] > 0  # autoresets were crossed
    if experts is not None:
        assert ended["terminated"] > 0


class CountingScene:
    """A Scene with the same interface that counts the calls the env makes (a real scene inside)."""

    def __init__(self, scene: Scene):
        self.inner, self.calls = scene, {"render": [], "is_free": []}
        for a in ("floor_z", "bounds_min", "bounds_max", "occupancy", "raycast"):
            setattr(self, a, getattr(scene, a))

    def render(self, c2w, K, width, height, depth=True):
        self.calls["render"].append(len(c2w))
        return self.inner.render(c2w, K, width, height, depth=depth)

    def is_free(self, points, radius=0.0):
        self.calls["is_free"].append(len(points))
        return self.inner.is_free(points, radius)


def test_one_render_call_and_one_collision_query_per_step(scene):
    """All N cameras in one render call and every body's sub-steps in one is_free query; the scene
    may be any object with the Scene interface."""
    counting = CountingScene(scene)
    env = SceneVectorEnv(counting, num_envs=5, width=16, height=16)
    env.reset(seed=0)
    for _ in range(4):
        counting.calls = {"render": [], "is_free": []}
        env.step(np.zeros(5, np.int64))  # all move forward
        assert counting.calls["render"] == [5]
        assert len(counting.calls["is_free"]) == 1 and counting.calls["is_free"][0] > 5 * 3


def test_start_option_places_bodies(scene):
    env = SceneVectorEnv(scene, num_envs=2, width=16, height=16, goal=GOAL)
    starts = np.array([[1.5, -0.8, 0.3], [-1.0, 0.8, -2.0]])
    _, info = env.reset(seed=0, options={"start": starts})
    np.testing.assert_allclose(info["position"][:, :2], starts[:, :2])
    np.testing.assert_allclose(info["heading"], starts[:, 2])
    single = SceneEnv(scene, width=16, height=16, goal=GOAL)
    obs, info1 = single.reset(seed=0, options={"start": tuple(starts[1])})
    np.testing.assert_array_equal(obs, env.bodies.observe()[1])
    _, reward, *_ = single.step(0)
    assert np.isfinite(reward)
    _, info = env.reset(seed=1, options={"start": (1.5, -0.8, 0.0)})  # one start for every body
    np.testing.assert_allclose(info["position"][:, :2], [[1.5, -0.8]] * 2)
    with pytest.raises(ValueError, match=r"start \(2.3, -2.0, 0.0\) .* is not free"):  # inside the crates
        env.reset(seed=0, options={"start": [[1.5, -0.8, 0.0], [2.3, -2.0, 0.0]]})
    with pytest.raises(ValueError, match=r"start \(40.0, 0.0, 0.0\) .* is not free"):
        single.reset(options={"start": (40.0, 0.0, 0.0)})
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        env.reset(options={"start": np.zeros((3, 3))})


def test_observations_on_the_scene_device(scene):
    """observation_device="scene": torch tensors on the scene's device (CPU here), the same values."""
    kw = {"num_envs": 3, "width": 16, "height": 12, "depth": True, "state": True}
    host, dev = SceneVectorEnv(scene, **kw), SceneVectorEnv(scene, observation_device="scene", **kw)
    a, _ = host.reset(seed=3)
    b, _ = dev.reset(seed=3)
    assert isinstance(b["rgb"], torch.Tensor) and b["rgb"].dtype == torch.uint8 and b["rgb"].device == scene.device
    for key in a:
        np.testing.assert_array_equal(a[key], b[key].numpy())
    b, *_, info = dev.step(np.zeros(3, np.int64))
    assert b["rgb"].shape == (3, 12, 16, 3) and b["depth"].dtype == torch.float32


@pytest.mark.cuda
def test_observations_stay_on_cuda(scene_dir):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    env = SceneVectorEnv(scene_dir, num_envs=8, device="cuda", observation_device="scene")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.zeros(8, np.int64))
    assert obs.is_cuda and obs.dtype == torch.uint8 and obs.shape == (8, 64, 64, 3)


def test_sb3_ppo_trains_on_scene_vector_env(scene):
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(SceneVectorEnv(scene, num_envs=2, width=40, height=40))
    vec = SceneVectorEnv(
        scene, num_envs=2, width=40, height=40, max_steps=5, goal=GOAL, autoreset_mode=AutoresetMode.SAME_STEP
    )
    model = small_cnn_ppo(SB3VecEnv(vec), n_steps=8, batch_size=8, features_dim=16)
    model.learn(16)
    assert model.num_timesteps == 16
    assert len(model.ep_info_buffer) >= 2 and len(model.ep_success_buffer) >= 2  # episodes of 5 steps ended


def test_render_and_bad_input(scene, scene_dir, tmp_path):
    env = SceneVectorEnv(scene, num_envs=2, width=16, height=16, render_mode="rgb_array", render_size=48)
    env.reset(seed=0)
    env.step(np.array([0, 1]))
    frames = env.render()
    assert len(frames) == 2 and frames[0].shape[0] == 48 and frames[0].dtype == np.uint8
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(np.array([0, 7]))
    with pytest.raises(ValueError, match="DISABLED"):
        SceneVectorEnv(scene, autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(TypeError, match="unknown options"):
        SceneVectorEnv(scene, speed=3)
    with pytest.raises(TypeError, match="lacks"):
        SceneVectorEnv(object())
    with pytest.raises(UserInputError, match="no such scene"):
        gym.make_vec(
            "worldmodel/SceneNav-v0", num_envs=2, vectorization_mode="vector_entry_point", scene=str(tmp_path / "nope")
        )
    with pytest.raises(gym.error.ResetNeeded):
        SceneVectorEnv(scene, num_envs=2).step(np.zeros(2, np.int64))


def test_vector_env_over_a_scene_that_is_not_splats():
    """Reality's RoomScene (ray-cast true geometry, one camera at a time inside its render) behind the
    Scene interface: the vector env's bodies see and move as single SceneEnvs over it do."""
    from scenes.room_scene import RoomScene

    room = RoomScene.load()
    kw = {"width": 16, "height": 12, "goal": GOAL, "max_steps": 5}
    vec = SceneVectorEnv(room, num_envs=2, autoreset_mode=AutoresetMode.SAME_STEP, **kw)
    singles = [SceneEnv(room, **kw) for _ in range(2)]
    obs, _ = vec.reset(seed=4)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=4 + i)[0])
    for t in range(6):  # across a time-limit autoreset
        actions = np.array([t % 3, 0])
        obs, reward, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, _ = env.step(int(actions[i]))
            if te or tr:
                np.testing.assert_array_equal(info["final_obs"][i], o)
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
            assert (reward[i], term[i], trunc[i]) == (r, te, tr)
            np.testing.assert_array_equal(vec.bodies.pos[i], env.pos)
