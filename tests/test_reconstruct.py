"""`worldmodel reconstruct` end to end at small size: video → SfM → splats → Scene directory;
a failed run leaves nothing behind; bad input exits 2 with one message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import short_splat_training

from scenes.example_dataset import write_example_dataset
from scenes.ingest import IngestConfig
from scenes.nerfstudio_io import read_transforms
from scenes.ply import read_splat_ply
from scenes.reconstruct import ReconstructConfig, reconstruct
from scenes.scene import Scene
from scenes.synthetic import write_example_capture
from scenes.train_splats import train_splats
from wmcore.errors import UserInputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    return write_example_capture(tmp_path_factory.mktemp("cap") / "room", num_frames=32, width=192, height=144).video


def small_config(inp: Path, out: Path) -> ReconstructConfig:
    return ReconstructConfig(
        input=inp,
        out=out,
        voxel_size=0.1,
        ingest=IngestConfig(num_frames=32, max_size=192, sfm_max_size=192),
        train=short_splat_training(
            200, max_size=64, sh_degree=1, refine_every=50, eval_every=100, refine_stop_iter=150, max_gaussians=8000
        ),
    )


def test_reconstruct_writes_a_complete_scene(capture, tmp_path):
    out = reconstruct(small_config(capture, tmp_path / "scene"))
    # A seed repeats a reconstruction byte for byte (SfM, splat training, the collision grid), so a user can
    # reproduce a run: a twin that differs teaches other policies.
    again = reconstruct(small_config(capture, tmp_path / "again"))
    for name in ("transforms.json", "sparse_pc.ply", "splats.ply", "scene.json"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    for f in sorted((out / "occupancy").iterdir()):
        assert f.read_bytes() == (again / "occupancy" / f.name).read_bytes(), f.name
    for name in (
        "scene.json",
        "splats.ply",
        "transforms.json",
        "metrics.json",
        "config.json",
        "log.txt",
        "metrics.jsonl",
        "previews/heldout_grid.png",
        "previews/orbit.mp4",
        "occupancy",
    ):
        assert (out / name).exists(), name
    meta = json.loads((out / "scene.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["registered_images"] >= 0.9 * 32
    assert metrics["test_images"] >= 3 and metrics["psnr"] > 14.0
    assert meta["metric_scale"] > 0 and len(meta["bounds"]["min"]) == 3
    assert read_splat_ply(out / "splats.ply")["means"].shape[0] == meta["num_gaussians"]
    scene = Scene.load(out)
    c2w = np.eye(4)[None]
    c2w[0, :3, 3] = (np.asarray(meta["bounds"]["min"]) + np.asarray(meta["bounds"]["max"])) / 2
    K = np.array([[[40.0, 0, 32], [0, 40, 32], [0, 0, 1]]])
    rgb, depth = scene.render(c2w, K, 64, 64)
    assert rgb.shape == (1, 64, 64, 3) and depth.shape == (1, 64, 64)
    assert float(rgb.std()) > 0.01  # it shows something
    assert meta["collision"] == {"voxel_size": 0.1, "floor_band": 0.3, "min_views": 3, "dilate": 0, "clear_views": 3}

    # Rebuilding the collision geometry with the same settings gives the same grid; asking for more
    # views than the capture has leaves nothing known to be free.
    from scenes.collision import OccupancyGrid
    from scenes.reconstruct import RebuildCollisionConfig, rebuild_collision

    before = OccupancyGrid.load(out / "occupancy").occupied
    rebuild_collision(RebuildCollisionConfig(out))
    np.testing.assert_array_equal(OccupancyGrid.load(out / "occupancy").occupied, before)
    rebuild_collision(RebuildCollisionConfig(out, min_views=1000))
    assert OccupancyGrid.load(out / "occupancy").occupied.all()
    assert json.loads((out / "scene.json").read_text())["collision"]["min_views"] == 1000
    # growing obstacles by a voxel blocks more and is recorded; a negative growth is refused
    rebuild_collision(RebuildCollisionConfig(out, dilate=0))
    free0 = (~OccupancyGrid.load(out / "occupancy").occupied).sum()
    rebuild_collision(RebuildCollisionConfig(out, dilate=1))
    assert (~OccupancyGrid.load(out / "occupancy").occupied).sum() < free0
    assert json.loads((out / "scene.json").read_text())["collision"]["dilate"] == 1
    with pytest.raises(UserInputError, match="--dilate -1"):
        rebuild_collision(RebuildCollisionConfig(out, dilate=-1))
    # clearing what the views saw through frees at least as much as keeping it, and is recorded
    rebuild_collision(RebuildCollisionConfig(out, clear_views=0))
    assert (~OccupancyGrid.load(out / "occupancy").occupied).sum() <= free0
    assert json.loads((out / "scene.json").read_text())["collision"]["clear_views"] == 0
    with pytest.raises(UserInputError, match="--clear-views -1"):
        rebuild_collision(RebuildCollisionConfig(out, clear_views=-1))
    with pytest.raises(UserInputError, match="not a Scene directory"):
        rebuild_collision(RebuildCollisionConfig(tmp_path))
    (tmp_path / "scene.json").write_text('{"format": "worldmodel-scene"}')
    with pytest.raises(UserInputError, match="malformed scene description"):
        rebuild_collision(RebuildCollisionConfig(tmp_path))


def test_failed_reconstruct_leaves_no_scene(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    import cv2

    for i in range(2):
        cv2.imwrite(str(photos / f"{i}.png"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(UserInputError):
        reconstruct(small_config(photos, tmp_path / "scene"))
    assert not (tmp_path / "scene").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["photos"]


def test_cli_bad_input_exits_2(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.cli",
            "reconstruct",
            str(tmp_path / "missing.mp4"),
            "--out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 2
    assert "missing.mp4" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "s").exists()


def test_min_views_below_one_is_refused_before_any_work(tmp_path):
    cfg = small_config(tmp_path / "missing.mp4", tmp_path / "scene")
    cfg.min_views = 0
    with pytest.raises(UserInputError, match="--min-views 0"):
        reconstruct(cfg)
    assert not (tmp_path / "scene").exists()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and gsplat")
def test_splat_training_on_cuda_reaches_what_the_cpu_reaches(tmp_path):
    """The optimiser, densification strategy and losses run on CUDA tensors through gsplat, and the
    held-out PSNR they reach is the CPU rasterizer's (the random streams differ, so not bit for bit)."""
    pytest.importorskip("gsplat")
    posed = read_transforms(write_example_dataset(tmp_path / "ds", num_frames=24, width=96, height=72))
    cfg = short_splat_training(
        600, max_size=96, sh_degree=1, refine_every=100, refine_stop_iter=450, max_gaussians=20_000
    )
    cpu, gpu = train_splats(posed, cfg, "cpu"), train_splats(posed, cfg, "cuda")
    print({k: (cpu.metrics[k], gpu.metrics[k]) for k in ("psnr", "ssim", "num_gaussians", "train_seconds")})
    assert gpu.metrics["num_gaussians"] != len(posed.points)  # densification and pruning ran
    assert gpu.metrics["psnr"] > 18.0 and abs(gpu.metrics["psnr"] - cpu.metrics["psnr"]) < 1.5
