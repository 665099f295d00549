"""The nerfstudio backend, for real (nerfstudio's own trainer, dataparser and COLMAP converter):
our transforms.json trains nerfacto unchanged, a nerfstudio-processed dataset reconstructs with our
splats unchanged, NeRF Scenes load from our Scene directories and from bare nerfstudio runs,
SceneEnv steps over one, and nothing is downloaded.

Where torchvision cannot load (CPU torch with CUDA torchvision wheels) the `torchvision_for_nerfstudio`
fixture puts the test-only stand-in from tests/shims on sys.path for this module only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import short_splat_training

from scenes.example_dataset import write_example_dataset
from scenes.ingest import IngestConfig
from scenes.nerfstudio_io import GL_FROM_CV, read_transforms
from scenes.reconstruct import ReconstructConfig, reconstruct
from scenes.scene import Scene
from wmcore.errors import UserInputError

pytestmark = pytest.mark.usefixtures("torchvision_for_nerfstudio", "no_network")


@pytest.fixture(scope="module")
def ns_dataset(tmp_path_factory, torchvision_for_nerfstudio, no_network) -> Path:
    """A dataset as `ns-process-data` leaves it: images of the example room, a COLMAP model of their
    true cameras and of surface points, converted by nerfstudio's own `colmap_to_json`."""
    import pycolmap
    from nerfstudio.process_data.colmap_utils import colmap_to_json

    root = tmp_path_factory.mktemp("ns") / "room"
    write_example_dataset(root, num_frames=16, width=48, height=36, num_points=2000)
    posed = read_transforms(root)
    (root / "transforms.json").unlink()
    (root / "sparse_pc.ply").unlink()
    rec = pycolmap.Reconstruction()
    K = posed.Ks[0]
    rec.add_camera_with_trivial_rig(pycolmap.Camera.create_from_model_name(1, "PINHOLE", float(K[0, 0]), 48, 36))
    for i, (path, c2w) in enumerate(zip(posed.image_paths, posed.cam_to_world)):
        w2c = np.linalg.inv(c2w)
        image = pycolmap.Image(image_id=i + 1, name=Path(path).name, camera_id=1)
        rec.add_image_with_trivial_frame(image, pycolmap.Rigid3d(pycolmap.Rotation3d(w2c[:3, :3]), w2c[:3, 3]))
    for p, c in zip(posed.points, posed.points_rgb):
        rec.add_point3D(p, pycolmap.Track(), c.astype(np.uint8))
    model = root / "colmap" / "sparse" / "0"
    model.mkdir(parents=True)
    rec.write_binary(str(model))
    assert colmap_to_json(model, root) == 16
    return root


@pytest.fixture(scope="module")
def nerf_scene(ns_dataset, tmp_path_factory) -> Path:
    """`worldmodel reconstruct DATA --method nerfacto`, a few steps at tiny size."""
    from training.cli import main

    out = tmp_path_factory.mktemp("nerf") / "scene"
    rc = main(
        [
            "reconstruct",
            str(ns_dataset),
            "--out",
            str(out),
            "--method",
            "nerfacto",
            "--voxel-size",
            "0.25",
            "--preview-frames",
            "2",
            "--nerfacto.iterations",
            "3",
            "--nerfacto.rays-per-batch",
            "64",
            "--nerfacto.max-size",
            "16",
        ]
    )
    assert rc == 0
    return out


def test_our_transforms_json_trains_in_nerfstudio_unchanged(nerf_scene):
    import yaml
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    meta = json.loads((nerf_scene / "scene.json").read_text())
    run = nerf_scene / meta["nerfstudio_run"]
    assert meta["method"] == "nerfacto" and list((run / "nerfstudio_models").glob("step-*.ckpt"))
    config = yaml.load((run / "config.yml").read_text(), Loader=yaml.Loader)  # nerfstudio's own format
    assert Path(config.data) == (nerf_scene).resolve()  # re-pointed after the atomic rename
    assert config.pipeline.model.implementation == "torch" and config.machine.device_type == "cpu"
    metrics = json.loads((nerf_scene / "metrics.json").read_text())
    assert metrics["iterations"] == 3 and metrics["test_images"] == 2 and np.isfinite(metrics["psnr"])
    for name in ("previews/heldout_grid.png", "previews/orbit.mp4", "occupancy", "transforms.json"):
        assert (nerf_scene / name).exists(), name
    # nerfstudio's parser reads exactly our poses from the file we wrote.
    parsed = (
        NerfstudioDataParserConfig(
            data=nerf_scene, orientation_method="none", center_method="none", auto_scale_poses=False, eval_mode="all"
        )
        .setup()
        .get_dataparser_outputs("train")
    )
    ours = read_transforms(nerf_scene)
    order = np.argsort([p.name for p in ours.image_paths])
    expected = (ours.cam_to_world[order] @ GL_FROM_CV)[:, :3, :4]
    assert np.allclose(parsed.cameras.camera_to_worlds.numpy(), expected, atol=1e-5)


def test_nerfstudio_processed_dataset_reconstructs_with_splats(ns_dataset, tmp_path):
    cfg = ReconstructConfig(
        input=ns_dataset,
        out=tmp_path / "splats",
        voxel_size=0.25,
        preview_frames=2,
        ingest=IngestConfig(max_size=48),
        train=short_splat_training(
            60, max_size=48, sh_degree=0, refine_every=20, refine_stop_iter=50, max_gaussians=4000
        ),
    )
    out = reconstruct(cfg)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["registered_images"] == 16 and metrics["test_images"] == 2
    assert metrics["psnr"] > 12.0
    scene = Scene.load(out)
    assert type(scene) is Scene and scene.num_gaussians > 0


def test_scene_env_steps_over_a_nerf_scene(nerf_scene):
    from envs.scene_env import SceneEnv
    from scenes.nerf_scene import NerfScene

    env = SceneEnv(nerf_scene, width=12, height=12, max_steps=4, body_radius=0.1)
    assert isinstance(env.scene, NerfScene)
    obs, info = env.reset(seed=0)
    assert obs.shape == (12, 12, 3) and obs.dtype == np.uint8 and env.observation_space.contains(obs)
    for action in (0, 1, 0):
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs.shape == (12, 12, 3) and np.isfinite(reward) and isinstance(info["collided"], bool)
        assert env.scene.is_free(env.pos[None], env.cfg.body_radius)[0]


def test_scene_load_takes_a_bare_nerfstudio_run(nerf_scene):
    from scenes.nerf_scene import NerfScene, find_run_config
    from scenes.nerfstudio_runtime import LPIPSUnavailable

    run = nerf_scene / json.loads((nerf_scene / "scene.json").read_text())["nerfstudio_run"]
    assert find_run_config(run) == find_run_config(run / "config.yml") == run / "config.yml"
    scene = Scene.load(run)
    assert isinstance(scene, NerfScene) and scene.meta["step"] >= 2
    assert isinstance(scene.model.lpips, LPIPSUnavailable)  # never torch.hub's AlexNet
    c2w = np.eye(4)[None]
    K = np.array([[[8.0, 0, 4], [0, 8, 4], [0, 0, 1]]])
    rgb, depth = scene.render(torch.as_tensor(c2w), K, 8, 8)
    assert rgb.shape == (1, 8, 8, 3) and depth.shape == (1, 8, 8) and torch.isfinite(depth).all()
    assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1
    assert scene.bounds_min.shape == (3,) and np.all(scene.bounds_max > scene.bounds_min)
    assert scene.raycast(c2w[:, :3, 3], np.array([[1.0, 0, 0]]), 5.0).shape == (1,)


def test_bad_runs_and_missing_nerfstudio_give_clear_errors(tmp_path, monkeypatch):
    import importlib.util

    from scenes import nerfstudio_runtime

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yml").write_text("not: [a nerfstudio config")
    with pytest.raises(UserInputError, match="config.yml"):
        Scene.load(tmp_path / "run")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nerfstudio" else real(name, *a))
    with pytest.raises(UserInputError, match="make install-nerfstudio"):
        nerfstudio_runtime.require_nerfstudio()


def test_nothing_was_downloaded(no_network):
    assert no_network == []
