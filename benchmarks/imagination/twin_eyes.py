"""Which part of the twin flatters the policy trained in it, its looks or its floor? A policy (the demo run's
clone by default) on N episodes in four worlds from the same starts: the room's body seeing with the room's eyes
(reality), the room's body seeing with the twin's eyes (the twin's render at the room's pose, carried over by the
run's FloorMap), the twin's body with the twin's eyes (the twin), and the twin's body with the room's eyes. The
body decides where a step goes and what it bumps into; the eyes what the policy sees. Each world's success
(Wilson 95 %) and its paired difference from reality's (Student-t 95 % over episodes), and bumps per episode.

    python benchmarks/imagination/twin_eyes.py RUN N [POLICY]
"""

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from envs.reality import FloorMap, make_room_env
from envs.scene_env import SceneEnv
from training.policies import resolve_policy
from training.rollouts import true_episode
from training.stats import t_interval, wilson_interval


class Eyes(gym.Wrapper):
    """`env`'s body seeing through `eyes` (a SceneEnv): at every step the body's pose (x, y, heading), carried into
    the eyes' frame by `carry`, is rendered there."""

    def __init__(self, env: Any, eyes: SceneEnv, carry: Callable[[np.ndarray], np.ndarray]):
        super().__init__(env)
        self.eyes, self.carry = eyes, carry
        eyes.reset(seed=0)  # sets the camera height

    def _look(self) -> np.ndarray:
        b = self.env.unwrapped
        x, y, h = self.carry(np.array([*b.pos[:2], b.heading]))
        e = self.eyes.bodies
        e.pos[0, 0], e.pos[0, 1], e.heading[0] = x, y, h
        return np.asarray(e.observe())[0]

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        _, info = self.env.reset(**kwargs)
        return self._look(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        _, r, term, trunc, info = self.env.step(action)
        return self._look(), r, term, trunc, info


if __name__ == "__main__":
    run, n = Path(sys.argv[1]), int(sys.argv[2])
    spec = sys.argv[3] if len(sys.argv) > 3 else str(run / "family" / "clone" / "policy")
    worlds = json.loads((run / "report.json").read_text())["worlds"]
    floor = FloorMap.for_scene(run / "scene")

    def room() -> SceneEnv:
        return make_room_env(**worlds["reality"])

    def twin() -> SceneEnv:
        return SceneEnv(run / "scene", **worlds["twin"])

    envs = {
        "room body, room eyes (reality)": room(),
        "room body, twin eyes": Eyes(room(), twin(), floor.pose_to_twin),
        "twin body, twin eyes (the twin)": twin(),
        "twin body, room eyes": Eyes(twin(), room(), floor.pose_to_room),
    }
    policies = {k: resolve_policy(spec, env, seed=1) for k, env in envs.items()}
    t0, steps = time.time(), worlds["reality"]["max_steps"]
    episodes: dict[str, list] = {k: [] for k in envs}
    reality = "room body, room eyes (reality)"
    for i in range(n):
        for k, env in envs.items():
            start = None
            if k.startswith("twin"):  # reality's start, carried onto the twin's floor
                start = floor.start_in_twin(envs["twin body, twin eyes (the twin)"], episodes[reality][i]["start"])
            episodes[k].append(true_episode(env, policies[k], 6000 + i, steps, start=start))
    out: dict[str, Any] = {"run": str(run), "policy": spec, "episodes": n, "seconds": round(time.time() - t0)}
    base = np.array([float(e["success"]) for e in episodes[reality]])
    for k, eps in episodes.items():
        s = np.array([float(e["success"]) for e in eps])
        p, lo, hi = wilson_interval(int(s.sum()), n)
        m, dlo, dhi = t_interval(s - base)
        out[k] = {
            "success": p,
            "success_ci95": [lo, hi],
            "minus_reality": m,
            "minus_reality_ci95": [dlo, dhi],
            "bumps_per_episode": float(np.mean([e["bumps"] or 0 for e in eps])),
        }
    print(json.dumps(out, indent=2))
