"""Continue a finished world-model run (its checkpoints copied into OUT) for more steps with one of three
motion weightings: batch (as shipped), sample (--motion-per-sample), off (--motion-weight 0).

    python benchmarks/imagination/finetune_world_model.py RUN {batch,sample,off} OUT STEPS
"""

import json
import shutil
import sys
from pathlib import Path

import torch

from training.train_world_model import TrainWorldModelConfig, train_world_model
from worldmodel.config import WorldModelConfig

run, variant, out, steps = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
src = json.loads((run / "config.json").read_text())
out.mkdir(parents=True, exist_ok=True)
if not (out / "checkpoints").exists():
    shutil.copytree(run / "checkpoints", out / "checkpoints")
src["model"] = WorldModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in src["model"].items()})
src.update(
    out=out,
    dataset=Path(src["dataset"]),
    steps=steps,
    motion_weight=0.0 if variant == "off" else 25.0,
    motion_per_sample=variant == "sample",
)
torch.set_num_threads(1)
train_world_model(
    TrainWorldModelConfig(**{k: v for k, v in src.items() if k in TrainWorldModelConfig.__dataclass_fields__})
)
