"""SceneEnv: Gymnasium and SB3 API checks, determinism, collisions against the true geometry,
tasks, rendering, registration and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the environments)
from envs.scene_env import SceneEnv
from scenes.synthetic import SyntheticRoom
from scenes.truth_scene import truth_scene
from wmcore.errors import UserInputError


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return truth_scene(tmp_path_factory.mktemp("scene") / "room", num_gaussians=6000, views=12)


@pytest.fixture(scope="module")
def room():
    return SyntheticRoom.default()


def test_gymnasium_and_sb3_checkers(scene_dir):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    check_env(SceneEnv(scene_dir, max_steps=20), skip_render_check=True)
    sb3_check_env(SceneEnv(scene_dir, max_steps=20), warn=False)
    check_env(SceneEnv(scene_dir, actions="continuous", depth=True, state=True, max_steps=20), skip_render_check=True)


def test_same_seed_same_episode(scene_dir):
    def rollout(seed):
        env = SceneEnv(scene_dir, max_steps=15)
        obs, _ = env.reset(seed=seed)
        out = [obs]
        rng = np.random.default_rng(0)
        for _ in range(15):
            obs, r, term, trunc, _ = env.step(int(rng.integers(3)))
            out.append((obs, r, term, trunc))
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    np.testing.assert_array_equal(a[0], b[0])
    for x, y in zip(a[1:], b[1:]):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:]
    assert not np.array_equal(a[0], c[0])


def test_random_walk_never_passes_through_true_obstacles(scene_dir, room):
    env = SceneEnv(scene_dir, extended_actions=True, max_steps=500)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    collisions = 0
    for _ in range(1500):
        before = env.pos.copy()
        _, _, term, trunc, info = env.step(int(rng.integers(env.action_space.n)))
        after = env.pos
        seg = before[None] + np.linspace(0, 1, 12)[:, None] * (after - before)[None]
        for z in (room.floor_z + 0.3, after[2]):  # low on the body and at the camera
            pts = seg.copy()
            pts[:, 2] = z
            assert room.is_free(pts, 0.0).all(), f"passed through an obstacle between {before} and {after}"
        collisions += info["collided"]
        if term or trunc:
            env.reset()
    assert collisions > 0  # the walk did run into things, and was stopped


def test_pointnav_reward_and_success(scene_dir):
    """The shortest-path policy reaches goals (positive progress rewards, success bonus); a random
    policy mostly does not."""
    from envs.oracle import ShortestPathPolicy, rollout_success

    env = SceneEnv(scene_dir, max_steps=150, state=True)
    obs, info = env.reset(seed=1)
    policy = ShortestPathPolicy(env)
    total, term = 0.0, False
    while not term:
        obs, r, term, trunc, info = env.step(policy(obs))
        total += r
        assert not trunc
    assert info["success"] and total > env.task.success_bonus
    assert obs["state"].shape == env.observation_space["state"].shape
    assert rollout_success(env, policy, 5, seed=10).mean() == 1.0
    assert rollout_success(env, lambda o: env.action_space.sample(), 5, seed=10).mean() < 0.5


def test_explore_rewards_new_cells_only(scene_dir):
    env = SceneEnv(scene_dir, task="explore", max_steps=50)
    env.reset(seed=0)
    _, r_turn, *_ = env.step(1)  # turning reveals new floor
    assert r_turn > 0
    for _ in range(30):  # turning in place: eventually nothing is new
        _, r, *_ = env.step(1)
    assert r == pytest.approx(0.0, abs=1e-9)


def test_continuous_and_flying_bodies(scene_dir):
    env = SceneEnv(scene_dir, actions="continuous", max_steps=10)
    env.reset(seed=0)
    z0 = env.pos[2]
    env.step(np.array([1.0, 0.5], np.float32))
    assert env.pos[2] == z0  # ground robots stay on the floor
    fly = SceneEnv(scene_dir, body="flying", actions="continuous", max_steps=10)
    fly.reset(seed=0)
    z0 = fly.pos[2]
    fly.step(np.array([0.0, 0.0, 1.0], np.float32))
    assert fly.pos[2] > z0


def test_render_and_registration(scene_dir):
    env = gym.make("worldmodel/SceneNav-v0", scene=str(scene_dir), render_mode="rgb_array", render_size=96)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape[0] == 96 and frame.shape[1] > 96 + 4
    assert env.observation_space.shape == (64, 64, 3)


def test_bad_actions_and_paths(scene_dir, tmp_path):
    env = SceneEnv(scene_dir)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside the action space"):
        env.step(7)
    cont = SceneEnv(scene_dir, actions="continuous")
    cont.reset(seed=0)
    with pytest.raises(ValueError, match="NaN"):
        cont.step(np.array([np.nan, 0.0], np.float32))
    with pytest.raises(ValueError, match="outside"):
        cont.step(np.array([3.0, 0.0], np.float32))
    with pytest.raises(UserInputError, match="no such scene"):
        gym.make("worldmodel/SceneNav-v0", scene=str(tmp_path / "nope"))
    with pytest.raises(TypeError, match="unknown options"):
        SceneEnv(scene_dir, speed=3)


def test_fixed_goal_is_the_same_every_episode_and_the_expert_reaches_it(scene_dir):
    """A fixed goal (what an RGB-only policy can learn to find): every episode heads for it, starts
    are at least min_goal_distance away along free space, and the shortest-path expert arrives."""
    from envs.oracle import ShortestPathPolicy, rollout_success

    env = SceneEnv(scene_dir, max_steps=150, goal=(-2.2, -0.8))
    starts = []
    for seed in range(6):
        _, info = env.reset(seed=seed)
        assert np.allclose(env.task.goal, (-2.2, -0.8))
        assert env.task.distance(info["position"]) >= env.task.min_goal_distance
        starts.append(info["position"][:2])
    assert len({tuple(np.round(s, 3)) for s in starts}) == 6  # the starts vary
    assert rollout_success(env, ShortestPathPolicy(env), 4, seed=20).all()


def test_fixed_goal_inside_an_obstacle_is_refused(scene_dir):
    env = SceneEnv(scene_dir, goal=(2.3, -2.0))  # inside the crates
    with pytest.raises(ValueError, match=r"goal \(2.3, -2.0\) is not in the scene's free floor space"):
        env.reset(seed=0)
    with pytest.raises(ValueError, match="not in the scene's free floor space"):
        SceneEnv(scene_dir, goal=(40.0, 0.0)).reset(seed=0)


def test_import_envs_registers_atari_when_ale_py_is_installed():
    pytest.importorskip("ale_py")
    assert "ALE/Breakout-v5" in gym.registry


def test_installed_package_registers_with_gymnasium_without_an_import(tmp_path):
    """Gymnasium 1.x has no entry-point plugins; the installed worldmodel-gym.pth hook registers our
    ids whenever gymnasium is imported. A fresh interpreter, outside the repository, imports nothing
    of ours and makes the env."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium as gym\n"
        "assert 'torch' not in sys.modules, 'the start-up hook must stay light'\n"
        "env = gym.make('worldmodel/SceneNav-v0', scene=sys.argv[1], width=16, height=16)\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(obs.shape, gym.spec('worldmodel/Dream-v0').vector_entry_point)\n"
    )
    scene = truth_scene(tmp_path / "room", num_gaussians=500, views=4)
    out = subprocess.run([sys.executable, "-c", code, str(scene)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["(16,", "16,", "3)", "envs.dream_env:DreamVectorEnv"]


def test_reset_start_option_places_the_body(scene_dir):
    """options={"start": (x, y, heading)}: the episode starts there (matched starts across worlds); the
    first reward is the geodesic progress from that start; a start inside an obstacle is refused."""
    env = SceneEnv(scene_dir, goal=(-2.2, -0.8), max_steps=20)
    _, info = env.reset(seed=0, options={"start": (1.5, -0.8, np.pi)})
    np.testing.assert_allclose(info["position"][:2], (1.5, -0.8))
    assert info["heading"] == pytest.approx(-np.pi)  # headings are wrapped to [-pi, pi)
    before = env.task.distance(env.pos)
    _, reward, _, _, info = env.step(0)  # forward, toward the goal
    assert reward == pytest.approx(before - info["distance_to_goal"] - env.task.step_cost)
    assert info["distance_to_goal"] < before
    _, again = env.reset(seed=0)  # without the option, the seed's sampled start
    assert not np.allclose(again["position"][:2], (1.5, -0.8))
    with pytest.raises(ValueError, match=r"start \(2.3, -2.0, 0.0\) .* is not free"):
        env.reset(seed=0, options={"start": (2.3, -2.0, 0.0)})
    with pytest.raises(ValueError, match="not numbers"):
        env.reset(seed=0, options={"start": "door"})


def test_collision_penalty_is_the_task_s_price_of_a_bump(scene_dir):
    """A bump costs `collision_penalty` on top of the step's reward, and nothing else changes; a negative price is
    refused with its option named."""
    from wmcore.errors import UserValueError

    def bumps(penalty: float) -> list[tuple[float, bool]]:
        env = SceneEnv(scene_dir, max_steps=200, collision_penalty=penalty)
        env.reset(seed=1)
        out = []
        for _ in range(80):  # forward until blocked, and push on
            _, r, term, trunc, info = env.step(0)
            out.append((r, bool(info["collided"])))
            if term or trunc:
                break
        return out

    cheap, dear = bumps(0.05), bumps(0.5)
    assert [c for _, c in cheap] == [c for _, c in dear] and any(c for _, c in cheap)
    for (r1, c), (r2, _) in zip(cheap, dear):
        assert r2 == pytest.approx(r1 - (0.45 if c else 0.0))
    with pytest.raises(UserValueError, match="collision_penalty"):
        SceneEnv(scene_dir, collision_penalty=-1.0)


def test_supersample_averages_a_larger_render_into_the_observation(scene_dir):
    """supersample=2 observes the 2x2 block means of the same view rendered at twice the size (same field of
    view); the spaces keep the observation's size."""
    import numpy as np

    big = SceneEnv(scene_dir, width=32, height=24, depth=True, max_steps=5)
    small = SceneEnv(scene_dir, width=16, height=12, depth=True, supersample=2, max_steps=5)
    a, _ = big.reset(seed=3)
    start = (*big.unwrapped.pos[:2], big.unwrapped.heading)
    b, _ = small.reset(seed=3, options={"start": start})
    assert b["rgb"].shape == (12, 16, 3) and small.observation_space["rgb"].shape == (12, 16, 3)
    want = a["rgb"].astype(np.float64).reshape(12, 2, 16, 2, 3).mean((1, 3))
    assert np.abs(b["rgb"].astype(np.float64) - want).max() <= 1.0  # both rounded to uint8 once
    assert np.allclose(b["depth"][..., 0], a["depth"][..., 0].reshape(12, 2, 16, 2).mean((1, 3)), rtol=1e-5)
    with pytest.raises(ValueError, match="supersample"):
        SceneEnv(scene_dir, supersample=0)
