"""`true_episodes` runs a SceneEnv's episodes side by side (one body each, the policy asked once per step for
all of them): the episodes must be those the env gives one at a time, step for step."""

from __future__ import annotations

import numpy as np
import pytest

from envs.reality import make_room_env
from envs.scene_env import SceneEnv
from scenes.synthetic import EXAMPLE_DIR
from scenes.truth_scene import truth_scene
from training.policies import CallablePolicy, NoisyPolicy, resolve_policy
from training.rollouts import scene_episodes, true_episode, true_episodes


def _looks(obs: np.ndarray) -> int:
    """A deterministic policy of the observation alone: forward when the middle is brighter than the sides,
    else a turn towards the brighter half."""
    o = np.asarray(obs, np.float32)
    if o[:, 12:28].mean() > o[:, :12].mean() + 2:
        return 0
    return 1 if o[:, :20].mean() > o[:, 20:].mean() else 2


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    kw = {"width": 40, "height": 40, "max_steps": 30, "collision_penalty": 0.25, "goal": (-2.2, -0.8)}
    scene = truth_scene(tmp_path_factory.mktemp("rollouts") / "scene", num_gaussians=3000, views=8)
    return {"reality": make_room_env(EXAMPLE_DIR, **kw), "twin": SceneEnv(scene, **{**kw, "goal": None})}


@pytest.mark.parametrize("world", ["reality", "twin"])
def test_side_by_side_episodes_are_the_sequential_ones(worlds, world):
    env = worlds[world]
    policy = CallablePolicy(_looks)
    seeds = [3, 4, 5, 6, 7]
    one = [true_episode(env, policy, s, 30, deterministic=True) for s in seeds]
    # two starts beside the goal, facing it, so that some episodes end early and others run on
    goal = env.unwrapped.bodies.goals[0]
    starts = [e["start"] for e in one[:3]] + [(goal[0] + 0.25, goal[1], np.pi), (goal[0], goal[1] + 0.25, -np.pi / 2)]
    from_starts = [true_episode(env, policy, s, 30, True, start) for s, start in zip(seeds, starts)]
    assert {len(e["actions"]) for e in from_starts} != {30} and any(e["success"] for e in from_starts)
    for seq, batch in (
        (one, scene_episodes(env, policy, seeds, 30, deterministic=True)),
        (from_starts, scene_episodes(env, policy, seeds, 30, deterministic=True, starts=starts)),
    ):
        for a, b in zip(seq, batch):
            assert np.array_equal(a["frames"], b["frames"]) and np.array_equal(a["actions"], b["actions"])
            assert np.allclose(a["rewards"], b["rewards"]) and np.allclose(a["poses"], b["poses"])
            for key in ("terminated", "success", "success_reported", "bumps"):
                assert a[key] == b[key], key
            assert (a["goal"] is None and b["goal"] is None) or np.allclose(a["goal"], b["goal"])


def test_expert_runs_one_env_at_a_time(worlds):
    """The expert reads its own env's map and pose: true_episodes keeps stepping it alone (and its noisy
    variant), and it still arrives."""
    env = worlds["reality"]
    expert = resolve_policy("expert", env)
    assert expert.reads_env and NoisyPolicy(expert, env.action_space, 0.3).reads_env
    eps = true_episodes(env, expert, [0, 1, 2], 30)
    assert all(e["success"] for e in eps)
