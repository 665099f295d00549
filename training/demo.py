"""`worldmodel demo` / `make demo`: the main job on the bundled example.

Today it reconstructs the bundled synthetic room (a video with known poses) into a Scene, scores
the camera poses against the truth, and prints where everything is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from scenes.ingest import IngestConfig
from scenes.reconstruct import ReconstructConfig
from scenes.strategy import DefaultStrategy
from scenes.train_splats import SplatTrainConfig

LOG = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """The whole pipeline on the bundled example."""

    output: Path = Path("runs/demo")
    """Directory that receives every stage's outputs."""
    quality: bool = False
    """Full-size preset for GPU machines (more frames, larger images, more iterations)."""
    device: str = "cpu"
    """Torch device: "cpu" or "cuda"."""
    reconstruct: ReconstructConfig = field(default_factory=lambda: ReconstructConfig(
        input=Path("assets/example_room/capture.mp4"),
        ingest=IngestConfig(num_frames=80, max_size=320, sfm_max_size=320),
        train=SplatTrainConfig(iterations=2000, max_size=128, strategy=DefaultStrategy(
            refine_start_iter=200, refine_stop_iter=1500, refine_every=100, reset_every=1500,
            max_gaussians=30_000))))
    """Reconstruction of the example capture (its input and output are set by the demo)."""


def demo(cfg: DemoConfig) -> Path:
    from scenes.pose_eval import pose_accuracy
    from scenes.synthetic import EXAMPLE_DIR, SyntheticRoom, load_example_capture

    out = Path(cfg.output)
    rec = cfg.reconstruct
    rec.input = EXAMPLE_DIR / "capture.mp4"
    rec.output = out / "scene"
    rec.device = cfg.device
    if not rec.ingest.scale_from:
        # What a user knows from a tape measure: the height the camera was carried at.
        truth, room = load_example_capture(EXAMPLE_DIR), SyntheticRoom.load(EXAMPLE_DIR)
        rec.ingest.scale_from = f"camera-height:{truth.cam_to_world[:, 2, 3].mean() - room.floor_z:.3f}"
    if cfg.quality:
        rec.ingest.num_frames, rec.ingest.max_size, rec.ingest.sfm_max_size = 150, 640, 640
        rec.train.iterations, rec.train.max_size = 30_000, 512
        rec.train.strategy.max_gaussians = 0
    from scenes.reconstruct import reconstruct

    scene_dir = reconstruct(rec)
    acc = pose_accuracy(scene_dir, EXAMPLE_DIR)
    metrics = json.loads((scene_dir / "metrics.json").read_text())
    print("\nDemo finished.")
    print(f"  scene:            {scene_dir}")
    print(f"  held-out PSNR:    {metrics['psnr']:.2f} dB (SSIM {metrics['ssim']:.3f})")
    print(f"  camera centres:   max error {100 * acc['max_centre_error_frac']:.2f}% of the scene extent "
          f"after Sim(3) alignment ({acc['num_compared']} cameras)")
    print(f"  previews:         {scene_dir / 'previews'}")
    return out
