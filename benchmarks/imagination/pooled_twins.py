"""Does pooling two reconstructions' twin data protect a clone from a deceptive twin?

Plain clones (the demo's cloning without DAgger) from run A's twin episodes alone, run B's alone, and half of each
(A's first and third quarters, B's second and fourth: half the expert and half the random-walk episodes of each,
160 in all), each judged on N real episodes (seeds 1,000,000+) in the true room.

    python benchmarks/imagination/pooled_twins.py OUT N SEED RUN_A RUN_B   # two `worldmodel demo` outputs
"""

import json
import shutil
import sys
from pathlib import Path

from envs.reality import make_room_env
from training.demo import DemoConfig, world_options
from training.demo_family import clone_policy
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import wilson_interval

OUT, A, B = Path(sys.argv[1]), Path(sys.argv[4]), Path(sys.argv[5])


def merged(name, parts):
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    (d / "episodes").mkdir(parents=True)
    head = json.loads((parts[0][0] / "data" / "dataset.json").read_text())
    eps = []
    for run, idx in parts:
        src = json.loads((run / "data" / "dataset.json").read_text())["episodes"]
        for i in idx:
            e = dict(src[i])
            new = f"ep_{len(eps):06d}"
            for f in (run / "data" / "episodes").glob(e["id"] + ".*"):
                shutil.copy(f, d / "episodes" / (new + f.name[len(e["id"]) :]))
            e["id"] = new
            eps.append(e)
    head["episodes"] = eps
    (d / "dataset.json").write_text(json.dumps(head))
    return d


sets = {
    f"{A.name} only": merged("d_a", [(A, range(160))]),
    f"{B.name} only": merged("d_b", [(B, range(160))]),
    "half each": merged("d_mix", [(A, range(0, 40)), (B, range(40, 80)), (A, range(80, 120)), (B, range(120, 160))]),
}
SEED = int(sys.argv[3])
cfg = DemoConfig(seed=SEED, clone_dagger_rounds=0)
common = world_options(cfg)
env = make_room_env(**common, goal=list(cfg.goal_in_room))
twin = {**common, "goal": json.loads((A / "report.json").read_text())["worlds"]["twin"]["goal"]}
n = int(sys.argv[2])
for name, data in sets.items():
    pol = clone_policy(cfg, [A / "scene"], [twin], data, OUT / (f"clone{SEED}_" + data.name))
    eps = true_episodes(env, resolve_policy(str(pol), env, seed=1), list(range(1_000_000, 1_000_000 + n)), 50)
    k = int(sum(e["success"] for e in eps))
    _, lo, hi = wilson_interval(k, n)
    print(f"{name}: {k}/{n} = {k / n:.0%} ({lo:.0%}-{hi:.0%}) in reality", flush=True)
