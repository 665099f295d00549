"""Reconstruct the example room from a capture variant with the demo's reconstruction settings.

The variant is the bundled capture's camera loop with another heading swing: AMP radians either way, K times a
loop (the committed capture: 0.9 and 4; before 2026-12-07: 0.35 and 2), rendered by `write_example_capture` into
/tmp/capture_AMP_K (once); FRAMES of its 120 frames are ingested (the demo: 120). Compare the twin it gives with
another by `benchmarks/twin_views_paired.py` and `benchmarks/twin_collision.py`.

    python benchmarks/capture_variant.py AMP K FRAMES SEED OUT
"""

import sys
import time
import types
from pathlib import Path

from scenes.example_capture import write_example_capture
from scenes.reconstruct import reconstruct
from scenes.synthetic_room import SyntheticRoom
from training.demo import DemoConfig

amp, k, frames, seed, out = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
room = SyntheticRoom.default(0)
plain = room.camera_path
room.camera_path = types.MethodType(lambda self, n, yaw_offset=1.4: plain(n, yaw_offset, amp, k), room)
capture = Path(f"/tmp/capture_{amp}_{k}")
if not capture.exists():
    write_example_capture(capture, room=room)
rec = DemoConfig().reconstruct  # the demo's settings, as its reconstruct stage fills them in
rec.input, rec.out, rec.device = capture / "capture.mp4", out, "cpu"
rec.ingest.num_frames, rec.ingest.scale_from = frames, "camera-height:1.400"
rec.ingest.seed = rec.train.seed = seed
t = time.time()
reconstruct(rec)
print(f"{out}: reconstructed in {time.time() - t:.1f} s")
