"""How well reality ranks a demo run's family against itself: each policy's 30 validation episodes run again
in reality from the same starts (the same env seeds) with other action-sampling seeds, and the retest's
Spearman rho against the run's own reality returns, with its bootstrap interval (paired by start). This is the
ceiling any judging world's rho can reach with that many episodes: a twin identical to the room would score
about this.

    python benchmarks/imagination/reality_retest.py RUN [RETESTS]
"""

import json
import sys
from pathlib import Path

import numpy as np

from envs.reality import make_room_env
from training.policies import resolve_policy
from training.rollouts import true_episodes
from training.stats import rank_agreement

run = Path(sys.argv[1])
retests = int(sys.argv[2]) if len(sys.argv) > 2 else 3
cfg = json.loads((run / "validate" / "config.json").read_text())
rep = json.loads((run / "validate" / "report.json").read_text())
kw = {**cfg["env_kwargs"], "goal": tuple(cfg["env_kwargs"]["goal"])}
room = make_room_env("assets/example_room", **kw)
seeds = [cfg["seed"] + i for i in range(cfg["episodes"])]
real = {n: p["worlds"]["reality"]["mean_return"] for n, p in rep["policies"].items()}
family = [(i, spec, n) for i, (spec, n) in enumerate(zip(cfg["policies"], cfg["names"])) if spec != "expert"]
truth = [np.array(rep["policies"][n]["worlds"]["reality"]["returns"]) for _, _, n in family]
rhos = []
for k in range(1, retests + 1):
    again = []
    for p_idx, spec, _ in family:
        policy = resolve_policy(spec, room, seed=cfg["seed"] + p_idx + 1000 * k)
        eps = true_episodes(room, policy, seeds, cfg["max_steps"], False)
        again.append(np.array([e["rewards"].sum() for e in eps]))
    r = rank_agreement(again, truth, real["expert (reads the map)"] - real["random"], seed=cfg["seed"])
    gap = np.mean([abs(a.mean() - t.mean()) for a, t in zip(again, truth)])
    rhos.append(r["spearman_rho"])
    print(
        f"retest {k}: reality-reality rho {r['spearman_rho']:.3f} (95 % {r['spearman_rho_ci95']}), "
        f"regret {r['regret_fraction']:.2f}, mean |gap| {gap:.2f}; means " + " ".join(f"{a.mean():.2f}" for a in again)
    )
print(f"{run.name}: median reality-reality rho over {retests} retests {np.median(rhos):.3f}, {len(family)} policies")
