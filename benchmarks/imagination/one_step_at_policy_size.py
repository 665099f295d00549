"""One imagined step from true 4-frame contexts of held-out episodes, judged at the size the loop's policies see
(frames area-averaged 2x, 20x20 for the demo): PSNR over the steps where the view changed, for each model, beside
copying the last frame; for a warp model also its warped last frame alone and its mean flow per action.

    python benchmarks/imagination/one_step_at_policy_size.py HELDOUT_DATA MODEL [MODEL ...]
"""

import sys

import numpy as np
import torch
import torch.nn.functional as F

from wmcore import metrics
from worldmodel.dataset import TrajectoryDataset
from worldmodel.model import WorldModel
from worldmodel.warp import warp

ds = TrajectoryDataset(sys.argv[1])
models = {p: WorldModel.from_pretrained(p) for p in sys.argv[2:]}
L = next(iter(models.values())).config.context
segs = [
    (np.asarray(e.frames[t - L : t + 1]), np.asarray(e.actions[t - L : t]))
    for e in ds.episodes
    for t in range(L, e.steps + 1, 3)
]
fr = torch.from_numpy(np.stack([s[0] for s in segs]))
ac = torch.from_numpy(np.stack([s[1] for s in segs]))
moved = (fr[:, -1].int() - fr[:, -2].int()).abs().amax((1, 2, 3)) > 2
print(f"segments {len(segs)}, view changed in {int(moved.sum())}")


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean PSNR at half the size (channels last for wmcore.metrics.psnr) over the steps where the view changed."""
    a, b = (F.avg_pool2d(v.float().permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1) for v in (a, b))
    return float(metrics.psnr(a, b, max_val=255.0)[moved].mean())


print(f"copy the last frame: {psnr(fr[:, -2], fr[:, -1]):.2f} dB")
for path, m in models.items():
    with torch.no_grad():
        out = m.sample_next(fr[:, :-1], ac, generator=torch.Generator().manual_seed(0))
        line = f"{path}: {psnr(out, fr[:, -1]):.2f} dB"
        if m.flow_net is not None:
            x = m._unit(fr[:, :-1]).flatten(1, 2)
            flow = m.flow_net(x, ac)
            base = ((warp(x[:, -3:], flow).clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1)
            base = base.repeat_interleave(m.config.downsample, 1).repeat_interleave(m.config.downsample, 2)
            per_action = [round(float(flow[ac[:, -1] == a, 0].mean()), 2) for a in range(int(ac.max()) + 1)]
            line += f" | warped last frame alone {psnr(base, fr[:, -1]):.2f} dB | x-flow per action {per_action} px"
    print(line)
