"""Reality's renderer (the example room's ray caster, `SyntheticRoom.render`) with and without its depth ray cast:
the environments observe RGB only, and since 2026-12-07 `RoomScene` asks for depth only when the SceneEnv
observes it. Alternates the two for ROUNDS rounds over the same 32 poses (a SceneVectorEnv's reset), 40x40 at
2x2 rays a pixel as reality renders; prints the median ms per frame of each and their ratio.

    python benchmarks/bench_room_render.py [ROUNDS]
"""

import sys
import time

import numpy as np

from envs.reality import make_room_env
from envs.scene_vector_env import SceneVectorEnv

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
scene = make_room_env(width=40, height=40).unwrapped.scene
venv = SceneVectorEnv(scene, num_envs=32, width=40, height=40, max_steps=50)
venv.reset(seed=0)
c2w, Ks = np.asarray(venv.bodies.cameras(), np.float64), np.asarray(venv.bodies.Ks, np.float64)
times: dict[bool, list[float]] = {True: [], False: []}
for _ in range(rounds):
    for depth in (True, False):
        t0 = time.perf_counter()
        for i in range(len(c2w)):
            scene.room.render(c2w[i], Ks[i], 40, 40, scene.supersample, depth=depth)
        times[depth].append((time.perf_counter() - t0) / len(c2w) * 1000)
with_d, without = float(np.median(times[True])), float(np.median(times[False]))
print(
    f"with depth {with_d:.2f} ms/frame, RGB only {without:.2f} ms/frame, "
    f"ratio {with_d / without:.2f}x ({rounds} rounds)"
)
