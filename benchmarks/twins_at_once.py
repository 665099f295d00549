"""The demo's two reconstructions at once: the first here, the second in a spawned worker (wmcore.side_process);
prints each one's seconds and the wall clock. Compare with the demo's own reconstruct + reconstruct_2 times of the
same seed, and the outputs byte for byte (`cmp`), to see what running them beside each other costs.

    python benchmarks/twins_at_once.py OUT [--seed 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from training.demo import DemoConfig, _reconstruct, twin_scenes
from wmcore.side_process import SideProcess

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    cfg = DemoConfig(seed=args.seed)
    first, second = twin_scenes(args.out, 2)
    t0 = time.time()
    with SideProcess(args.out / "side.log") as side:
        beside = side.submit(_reconstruct, cfg, second, 1)
        t1 = time.time()
        _reconstruct(cfg, first, 0)
        main_s = time.time() - t1
        side_s = beside.result()[1]
    print(f"first {main_s:.1f} s, second (beside) {side_s:.1f} s, wall clock {time.time() - t0:.1f} s")
