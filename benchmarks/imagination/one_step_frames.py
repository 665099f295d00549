"""The world model's imagined frames one to five steps ahead of a true 4-frame context (8 held-out episodes),
PSNR against the truth and against copying the last frame, and a picture of truth | imagined for the first.

    python benchmarks/imagination/one_step_frames.py MODEL HELDOUT_DATA [DENOISING_STEPS]   # -> imagN.png here
"""

import sys

import numpy as np
from PIL import Image

from envs.dream_env import DreamCore
from worldmodel.dataset import TrajectoryDataset

model, data = sys.argv[1], sys.argv[2]
ds = TrajectoryDataset(data)
core = DreamCore(model, ds, 8, 15, "cpu", int(sys.argv[3]) if len(sys.argv) > 3 else None)
L = core.L
print(
    "context",
    L,
    "num_steps",
    core.model.config.num_steps,
    "downsample",
    core.model.config.downsample,
    "delta",
    core.model.config.predict_delta,
)
eps = ds.episodes[-8:]
for i, ep in enumerate(eps):
    core.set_context(i, ep.frames[:L], ep.actions[: L - 1])
core.seed(0)
rows = []
for t in range(L - 1, L + 4):
    acts = np.array([ep.actions[t] for ep in eps])
    nxt, r, term, _ = core.step(acts)
    truth = np.stack([ep.frames[t + 1] for ep in eps]).astype(float)
    last = np.stack([ep.frames[t] for ep in eps]).astype(float)
    mse = ((nxt.astype(float) - truth) ** 2).mean()
    mse_c = ((last - truth) ** 2).mean()
    print(t, f"psnr model {10 * np.log10(255**2 / mse):.2f} copy-last {10 * np.log10(255**2 / mse_c):.2f}")
    rows.append(np.concatenate([truth[0], nxt[0].astype(float)], 1))

Image.fromarray(np.concatenate(rows, 0).astype(np.uint8)).resize((160, 400), Image.NEAREST).save(
    f"imag{sys.argv[3] if len(sys.argv) > 3 else 0}.png"
)
