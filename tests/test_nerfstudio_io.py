"""transforms.json writing/reading: nerfstudio's OpenGL convention, instant-ngp files, bad files."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scenes.ingest import IngestConfig, ingest
from scenes.nerfstudio_io import read_transforms, write_transforms
from scenes.ply import read_points_ply
from scenes.posed import PosedImages
from wmcore.errors import UserInputError


def _images(folder: Path, n: int, w: int = 40, h: int = 30, ext: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"img_{i}{ext}"
        cv2.imwrite(str(p), np.full((h, w, 3), 10 * i, np.uint8))
        paths.append(p)
    return paths


def _posed(paths: list[Path], distortion: bool = False, seed: int = 0) -> PosedImages:
    rng = np.random.default_rng(seed)
    n = len(paths)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, :3] = Rotation.random(n, random_state=seed).as_matrix()
    c2w[:, :3, 3] = rng.normal(size=(n, 3))
    K = np.array([[50.0, 0, 20.5], [0, 51.0, 15.25], [0, 0, 1]])
    dist = rng.normal(scale=0.01, size=(n, 4)) if distortion else None
    return PosedImages(
        paths,
        c2w,
        np.tile(K, (n, 1, 1)),
        np.full(n, 40),
        np.full(n, 30),
        rng.normal(size=(20, 3)),
        rng.integers(0, 256, (20, 3), dtype=np.uint8),
        dist,
    )


def test_round_trip_is_exact_and_uses_the_opengl_convention(tmp_path):
    posed = _posed(_images(tmp_path / "data" / "images", 4), distortion=True)
    out = tmp_path / "data"
    write_transforms(posed, out, applied_transform=np.diag([2.0, 2.0, 2.0, 1.0]))
    meta = json.loads((out / "transforms.json").read_text())
    assert meta["camera_model"] == "OPENCV"
    assert meta["frames"][0]["file_path"] == "images/img_0.png"
    # Per-frame distortion differs, so intrinsics are written per frame.
    assert "fl_x" not in meta and meta["frames"][1]["k2"] == pytest.approx(posed.distortion[1, 1])
    np.testing.assert_allclose(meta["applied_transform"], np.eye(4)[:3], atol=1e-12)
    assert meta["applied_scale"] == pytest.approx(2.0)
    # OpenGL: a point straight ahead of the OpenCV camera has negative z in the GL camera frame.
    gl = np.asarray(meta["frames"][2]["transform_matrix"])
    ahead = posed.cam_to_world[2] @ np.array([0.0, 0.0, 3.0, 1.0])
    assert np.allclose(np.linalg.inv(gl) @ ahead, [0, 0, -3.0, 1])
    assert np.allclose(gl[:3, :3] @ np.diag([1, -1, -1]), posed.cam_to_world[2, :3, :3])

    back = read_transforms(out)  # the folder form
    assert [p.resolve() for p in back.image_paths] == [p.resolve() for p in posed.image_paths]
    np.testing.assert_allclose(back.cam_to_world, posed.cam_to_world, atol=1e-12)
    np.testing.assert_allclose(back.Ks, posed.Ks)
    np.testing.assert_allclose(back.distortion, posed.distortion)
    np.testing.assert_array_equal(back.widths, posed.widths)
    np.testing.assert_allclose(back.points, posed.points, atol=1e-6)  # float32 in the .ply
    np.testing.assert_array_equal(back.points_rgb, posed.points_rgb)
    xyz, rgb = read_points_ply(out / meta["ply_file_path"])  # what nerfstudio's loader reads
    assert xyz.shape == (20, 3) and rgb.dtype == np.uint8


def test_shared_pinhole_camera_is_written_once(tmp_path):
    posed = _posed(_images(tmp_path / "imgs", 3))
    write_transforms(posed, tmp_path / "out")
    meta = json.loads((tmp_path / "out" / "transforms.json").read_text())
    assert meta["camera_model"] == "PINHOLE"
    intrinsics = (meta["fl_x"], meta["fl_y"], meta["cx"], meta["cy"], meta["w"], meta["h"])
    assert intrinsics == (50, 51, 20.5, 15.25, 40, 30)
    assert "fl_x" not in meta["frames"][0]
    assert meta["frames"][0]["file_path"] == "../imgs/img_0.png"
    assert read_transforms(tmp_path / "out" / "transforms.json").distortion is None


def test_instant_ngp_file(tmp_path):
    _images(tmp_path / "train", 3, w=64, h=48)
    angle = 0.8
    pose = np.eye(4)
    pose[:3, 3] = [1, 2, 3]
    meta = {
        "camera_angle_x": angle,
        "aabb_scale": 16,
        "scale": 0.33,
        "offset": [0.5, 0.5, 0.5],
        "frames": [
            {"file_path": f"./train/img_{i}", "transform_matrix": pose.tolist(), "sharpness": 30.0} for i in range(3)
        ],
    }
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    posed = read_transforms(tmp_path / "transforms.json")
    f = 0.5 * 64 / math.tan(angle / 2)
    np.testing.assert_allclose(posed.Ks[0], [[f, 0, 32], [0, f, 24], [0, 0, 1]])
    assert posed.widths.tolist() == [64] * 3 and posed.heights.tolist() == [48] * 3
    assert posed.image_paths[0].name == "img_0.png"
    np.testing.assert_allclose(posed.cam_to_world[0], pose @ np.diag([1.0, -1.0, -1.0, 1.0]))


def test_per_frame_intrinsics_override_global_ones(tmp_path):
    _images(tmp_path, 2)
    frames = [
        {"file_path": "img_0.png", "transform_matrix": np.eye(4).tolist(), "fl_x": 70.0, "k1": 0.1},
        {"file_path": "img_1.png", "transform_matrix": np.eye(4)[:3].tolist()},
    ]
    meta = {"fl_x": 60.0, "fl_y": 61.0, "cx": 20.0, "cy": 15.0, "w": 40, "h": 30, "frames": frames}
    (tmp_path / "transforms.json").write_text(json.dumps(meta))
    posed = read_transforms(tmp_path)
    assert posed.Ks[:, 0, 0].tolist() == [70.0, 60.0] and posed.Ks[:, 1, 1].tolist() == [61.0, 61.0]
    np.testing.assert_allclose(posed.distortion, [[0.1, 0, 0, 0], [0, 0, 0, 0]])


def test_missing_image_is_skipped_with_a_warning(tmp_path, caplog):
    posed = _posed(_images(tmp_path / "images", 4))
    write_transforms(posed, tmp_path)
    (tmp_path / "images" / "img_2.png").unlink()
    with caplog.at_level(logging.WARNING):
        back = read_transforms(tmp_path / "transforms.json")
    assert len(back) == 3 and back.dropped == ["images/img_2.png"]
    assert "img_2.png" in caplog.text
    np.testing.assert_allclose(back.cam_to_world, posed.cam_to_world[[0, 1, 3]], atol=1e-12)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"fl_x": 50}', "'frames'"),
        ('{"fl_x": 50, "w": 4, "h": 4, "frames": [{"file_path": "a.png"}]}', "'transform_matrix'"),
        ('{"w": 4, "h": 4, "frames": [{"file_path": "a.png", "transform_matrix": [[1, 0], [0, 1]]}]}', "4x4"),
        (
            '{"w": 40, "h": 30, "frames": [{"file_path": "img_0.png", "transform_matrix": '
            "[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}",
            "'fl_x'",
        ),
        (
            '{"fl_x": "wide", "w": 40, "h": 30, "frames": [{"file_path": "img_0.png", "transform_matrix": '
            "[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}",
            "'fl_x' is not a number",
        ),
        (
            '{"camera_model": "OPENCV_FISHEYE", "frames": [{"file_path": "img_0.png", "transform_matrix": '
            "[[1,0,0,0],[0,1,0,0],[0,0,1,0],[0,0,0,1]]}]}",
            "OPENCV_FISHEYE",
        ),
    ],
)
def test_malformed_files_name_the_file_and_the_problem(tmp_path, text, match):
    _images(tmp_path, 1)
    path = tmp_path / "transforms.json"
    path.write_text(text)
    with pytest.raises(UserInputError, match=match) as e:
        read_transforms(path)
    assert str(path) in str(e.value)


def test_all_images_missing_and_missing_file(tmp_path):
    frames = [{"file_path": "gone.png", "transform_matrix": np.eye(4).tolist()}]
    (tmp_path / "transforms.json").write_text(json.dumps({"fl_x": 5, "w": 4, "h": 4, "frames": frames}))
    with pytest.raises(UserInputError, match="none of the 1 images"):
        read_transforms(tmp_path)
    with pytest.raises(UserInputError, match="file not found"):
        read_transforms(tmp_path / "nope.json")


def test_distorted_and_oversized_images_are_rectified_on_ingest(tmp_path):
    """Dots drawn where a distorting camera sees known 3D points must land, after ingest, where
    the returned pinhole K projects them (COLMAP pixel convention: centres at +0.5)."""
    w, h, k = 400, 300, np.array([-0.25, 0.06, 0.002, -0.001])
    K = np.array([[300.0, 0, 200.0], [0, 300.0, 150.0], [0, 0, 1]])
    gx, gy = np.meshgrid(np.linspace(-0.5, 0.5, 5), np.linspace(-0.35, 0.35, 4))
    pts = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)], 1)
    K_opencv = K - np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]])  # OpenCV: pixel centres at integers
    uv, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), K_opencv, k)
    img = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for u, v in uv[:, 0]:
        img += np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 2.0**2))
    (tmp_path / "data").mkdir()
    frames = []
    for i in range(3):
        cv2.imwrite(str(tmp_path / "data" / f"f{i}.png"), np.clip(img * 255, 0, 255).astype(np.uint8))
        pose = np.eye(4)
        pose[:3, 3] = [i, 0, 0]
        frames.append({"file_path": f"f{i}.png", "transform_matrix": pose.tolist()})
    meta = {
        "camera_model": "OPENCV",
        "fl_x": 300,
        "fl_y": 300,
        "cx": 200,
        "cy": 150,
        "w": w,
        "h": h,
        "k1": k[0],
        "k2": k[1],
        "p1": k[2],
        "p2": k[3],
        "frames": frames,
    }
    (tmp_path / "data" / "transforms.json").write_text(json.dumps(meta))
    cfg = IngestConfig(max_size=200, up="none", scale_from="f0,f2.png,4.0")  # names survive rectifying
    posed, norm, _ = ingest(tmp_path / "data", tmp_path / "work", cfg)
    d02 = np.linalg.norm(posed.cam_to_world[2, :3, 3] - posed.cam_to_world[0, :3, 3])
    assert norm.metric_scale * d02 == pytest.approx(4.0)
    assert posed.distortion is None and posed.widths[0] == 200 and posed.heights[0] == 150
    out = cv2.imread(str(posed.image_paths[0]), cv2.IMREAD_GRAYSCALE)
    n, _, _, centroids = cv2.connectedComponentsWithStats((out > 60).astype(np.uint8))
    Kn = posed.Ks[0]
    expected = (pts @ Kn.T)[:, :2] - 0.5  # pixel-index coordinates of the pinhole projection
    found = centroids[1:]
    assert n - 1 == len(pts)
    dist = np.linalg.norm(found[:, None] - expected[None], axis=2).min(1)
    assert dist.max() < 0.35, dist
    assert read_transforms(tmp_path / "work").distortion is None
    assert json.loads((tmp_path / "work" / "transforms.json").read_text())["camera_model"] == "PINHOLE"
