"""How many cores each demo stage keeps busy: sample the machine's CPU time every 2 s beside a running demo.

    python benchmarks/cpu_by_stage.py DEMO_LOG [--every 2] [--out samples.txt]

DEMO_LOG is the demo's console output (`worldmodel demo ... > demo.out 2>&1`); the script follows it, reads the
current stage from its last `==== STAGE` line, and stops when the demo prints its summary (or on Ctrl-C). It prints
each stage's mean busy cores (machine-wide, so other work on the machine counts too: run it on a quiet one) and
seconds sampled. Linux only (/proc/stat).
"""

from __future__ import annotations

import argparse
import re
import time
from collections import defaultdict
from pathlib import Path

STAGE = re.compile(rb"INFO ==== (\S+)")
DONE = b"Look at it in the browser"


def busy_and_total() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal, sum(fields)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--every", type=float, default=2.0)
    ap.add_argument("--out", type=Path, default=None, help="also write every sample (time, cores, stage)")
    args = ap.parse_args()
    ncpu = len([ln for ln in Path("/proc/stat").read_text().splitlines() if re.match(r"cpu\d", ln)])
    cores, seconds = defaultdict(float), defaultdict(float)
    samples = []
    last_busy, last_total = busy_and_total()
    try:
        while True:
            time.sleep(args.every)
            busy, total = busy_and_total()
            used = ncpu * (busy - last_busy) / max(1, total - last_total)
            last_busy, last_total = busy, total
            text = args.log.read_bytes() if args.log.exists() else b""
            stages = STAGE.findall(text)
            stage = stages[-1].decode() if stages else "(start)"
            cores[stage] += used * args.every
            seconds[stage] += args.every
            samples.append(f"{time.time():.0f} {used:.2f} {stage}")
            if DONE in text:
                break
    except KeyboardInterrupt:
        pass
    if args.out:
        args.out.write_text("\n".join(samples) + "\n")
    print(f"{'stage':24s} {'cores':>6s} {'seconds':>8s}")
    for stage in seconds:
        print(f"{stage:24s} {cores[stage] / seconds[stage]:6.2f} {seconds[stage]:8.0f}")
    total = sum(seconds.values())
    print(f"{'whole run':24s} {sum(cores.values()) / max(total, 1e-9):6.2f} {total:8.0f}")


if __name__ == "__main__":
    main()
