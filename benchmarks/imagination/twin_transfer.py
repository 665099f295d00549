"""Does a policy succeed in the twin as often as in the room? A demo run's clone (or any POLICY) on N
episodes in reality (seeds 6000+) and in the twin from the same starts (reality's start carried over by
the run's FloorMap and snapped to the twin's free floor), the run's own world options: success in each
world (Wilson 95 %), the paired difference reality − twin (Student-t 95 % over episodes), the share of
steps that bumped, and the difference apart for starts that had to move onto the twin's floor (more than
5 cm) and for the rest. The demo's own check judges 30 episodes per world, too few for its ±10-point window.

    python benchmarks/imagination/twin_transfer.py RUN N [POLICY [SCENE]]

POLICY defaults to RUN/family/clone/policy; SCENE replaces the run's twin (a copy of RUN/scene rebuilt
with `worldmodel rebuild-collision`, say).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np

from envs.reality import FloorMap, make_room_env
from envs.scene_env import SceneEnv
from training.policies import resolve_policy
from training.rollouts import true_episode
from training.stats import t_interval, wilson_interval

run, n = Path(sys.argv[1]), int(sys.argv[2])
spec = sys.argv[3] if len(sys.argv) > 3 else str(run / "family" / "clone" / "policy")
scene = Path(sys.argv[4]) if len(sys.argv) > 4 else run / "scene"
worlds = json.loads((run / "report.json").read_text())["worlds"]
room, twin = make_room_env(**worlds["reality"]), SceneEnv(scene, **worlds["twin"])
floor = FloorMap.for_scene(scene)

t0 = time.time()
policies = {name: resolve_policy(spec, env, seed=1) for name, env in (("reality", room), ("twin", twin))}
episodes: dict[str, list] = {"reality": [], "twin": []}
moved: list[bool] = []  # the start had to be snapped more than 5 cm to the twin's free floor
for i in range(n):
    real = true_episode(room, policies["reality"], 6000 + i, worlds["reality"]["max_steps"])
    start = floor.start_in_twin(twin, real["start"])
    moved.append(float(np.linalg.norm(start[:2] - floor.to_twin(real["start"][:2]))) > 0.05)
    episodes["reality"].append(real)
    episodes["twin"].append(true_episode(twin, policies["twin"], 6000 + i, worlds["twin"]["max_steps"], start=start))
out = {"run": str(run), "policy": spec, "scene": str(scene), "episodes": n}
for name, eps in episodes.items():
    p, lo, hi = wilson_interval(sum(e["success"] for e in eps), n)
    bumps = sum(e["bumps"] for e in eps) / sum(len(e["actions"]) for e in eps)
    out[name] = {"success": p, "success_ci95": [lo, hi], "bumps_share": bumps}
diff = np.array([float(r["success"]) - float(t["success"]) for r, t in zip(episodes["reality"], episodes["twin"])])
m, lo, hi = t_interval(diff)
out["reality_minus_twin"] = {"mean": m, "ci95": [lo, hi], "within_10_points": bool(-0.1 <= lo and hi <= 0.1)}
moved_arr = np.array(moved)
out["starts_moved"] = {
    "share": float(moved_arr.mean()),
    "reality_minus_twin_if_moved": float(diff[moved_arr].mean()) if moved_arr.any() else None,
    "reality_minus_twin_if_not": float(diff[~moved_arr].mean()) if (~moved_arr).any() else None,
}
out["seconds"] = round(time.time() - t0, 1)
print(json.dumps(out, indent=2))
