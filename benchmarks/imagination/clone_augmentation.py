"""Does a stronger augmentation make the clone transfer from the twin to the room? A clone trained as the demo
trains it (`training.demo_family.clone_policy`, on RUN's two twins and twin episodes, training seed TRAIN_SEED)
with the default augmentation (VARIANT base) or a stronger one (strong: the blur mix reaching into sharpening,
since reality is sharper than a twin; per-channel gain ±8 %; contrast 0.75–1.25; brightness ±25; pixel noise
up to σ 6), then N paired episodes in reality and the twin from the deployment stage's starts
(`training.demo_family.paired_transfer`, as the demo's twin-transfer check). Prints one RESULT line (JSON).

    python benchmarks/imagination/clone_augmentation.py OUT RUN TRAIN_SEED VARIANT N
"""

import functools
import json
import sys
import time
from pathlib import Path

import training.behaviour_cloning as bc
from training.augment import augment
from training.demo import DemoConfig, twin_goal, twin_scenes, world_options
from training.demo_family import clone_policy, paired_transfer

out, run, seed, variant, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])


STRONG = {"contrast": 0.25, "brightness": 25.0, "sharpen": 0.6, "gain": 0.08, "noise": 6.0}
"""The stronger augmentation (`training.augment.augment`'s options; its defaults are the cloning's)."""

if variant == "strong":
    bc.augment = functools.partial(augment, **STRONG)
rc = json.loads((run / "config.json").read_text())
run_seed = rc["seed"]
cfg = DemoConfig(seed=seed)
common = world_options(cfg)
scenes = twin_scenes(run, 2)
twins = [{**common, "goal": twin_goal(s, cfg.goal_in_room, {**common, "device": "cpu"})} for s in scenes]
t0 = time.time()
dest = out / f"{run.name}_{variant}_s{seed}"
policy = clone_policy(cfg, scenes, twins, run / "data", dest)
t1 = time.time()
worlds = {"reality": {**common, "goal": list(cfg.goal_in_room)}, "twin": twins[0]}
r = paired_transfer(DemoConfig(seed=run_seed, transfer_episodes=n), worlds, scenes[0], "clone", str(policy))
res = {
    "run": run.name,
    "variant": variant,
    "train_seed": seed,
    "reality": r["reality"]["success"],
    "reality_ci95": r["reality"]["success_ci95"],
    "twin": r["twin"]["success"],
    "gap": r["reality_minus_twin"],
    "gap_ci95": r["gap_ci95"],
    "clone_s": round(t1 - t0),
    "transfer_s": round(time.time() - t1),
}
print("RESULT", json.dumps(res), flush=True)
(dest / "result.json").write_text(json.dumps(res))
