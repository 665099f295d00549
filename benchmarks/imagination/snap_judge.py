"""Does snapping imagined frames to the model's data make imagination a better judge? A demo run's family (its
validate config), each policy run for the same 30 episodes in reality, then closed loop in the run's world model
from reality's first frames twice: plain, and with every imagined frame snapped to the nearest frame of the loop's
data (`snap_to_data`). Same world model, policies, starts and sampling seed; only the snap differs. Prints each
policy's mean returns and success, and Spearman rho against reality with its bootstrap interval.

    python benchmarks/imagination/snap_judge.py RUN [--json OUT]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from training.policies import resolve_policy
from training.rollouts import imagined_episodes, true_episodes
from training.stats import rank_agreement
from training.validate import REFERENCE_POLICIES, ValidateConfig
from training.worlds import Worlds
from worldmodel.dataset import TrajectoryDataset
from worldmodel.frame_memory import FrameMemory

parser = argparse.ArgumentParser()
parser.add_argument("run", type=Path)
parser.add_argument("--json", type=Path)
args = parser.parse_args()
saved = json.loads((args.run / "validate" / "config.json").read_text())
fields = {k: v for k, v in saved.items() if k in ValidateConfig.__dataclass_fields__}
fields.update(scene=None, snap_to_data=False, out=Path("/tmp/snap_judge"))
for k in ("model", "dataset", "eval_metrics"):
    fields[k] = Path(fields[k]) if fields.get(k) else None
cfg = ValidateConfig(**fields)
torch.manual_seed(cfg.seed)
data = TrajectoryDataset(cfg.dataset)
worlds = Worlds(cfg, data)
core = worlds.core
memory = FrameMemory.from_dataset(data, core.model.config.downsample)
print(f"{args.run}: {len(memory)} frames in the memory")
seeds = [cfg.seed + i for i in range(cfg.episodes)]
rows: dict[str, dict] = {}
for p, spec in enumerate(cfg.policies):
    if spec in REFERENCE_POLICIES:
        continue
    name = cfg.names[p] if cfg.names else spec
    real = true_episodes(worlds.reality, resolve_policy(spec, worlds.reality, seed=cfg.seed + p), seeds, cfg.max_steps)
    row = {
        "reality": [float(e["rewards"].sum()) for e in real],
        "reality_success": float(np.mean([e["success"] for e in real])),
    }
    for variant, mem in (("plain", None), ("snapped", memory)):
        t0 = time.time()
        core.memory = mem
        core.seed(cfg.seed)
        policy = resolve_policy(spec, action_space=worlds.reality.action_space, seed=cfg.seed + p)
        eps = imagined_episodes(core, policy, real, cfg.max_steps)
        row[variant] = [float(e["rewards"].sum()) for e in eps]
        row[f"{variant}_success"] = float(np.mean([e["success"] for e in eps]))
        row[f"{variant}_seconds"] = time.time() - t0
    rows[name] = row
    print(
        f"{name[:32]:32s} reality {np.mean(row['reality']):6.2f} ({row['reality_success']:.0%})  "
        + "  ".join(
            f"{v} {np.mean(row[v]):6.2f} ({row[v + '_success']:.0%}, {row[v + '_seconds']:.0f} s)"
            for v in ("plain", "snapped")
        ),
        flush=True,
    )
names = list(rows)
summary = {}
for v in ("plain", "snapped"):
    ra = rank_agreement(
        [np.array(rows[n][v]) for n in names], [np.array(rows[n]["reality"]) for n in names], seed=cfg.seed
    )
    summary[v] = {"spearman_rho": ra["spearman_rho"], "spearman_rho_ci95": ra["spearman_rho_ci95"]}
    lo, hi = ra["spearman_rho_ci95"]
    print(
        f"{v}: Spearman rho {ra['spearman_rho']:.2f} ({lo:.2f}-{hi:.2f}),",
        f"{len(names)} policies, {cfg.episodes} episodes each",
    )
if args.json:
    args.json.write_text(json.dumps({"run": str(args.run), "policies": rows, "rank": summary}, indent=1))
