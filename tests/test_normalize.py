"""World normalisation (up, centre, scale, floor), --scale-from and Umeyama alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scenes.normalize import Normalization, apply_scale_from, normalize, umeyama_sim3, up_from_cameras
from scenes.posed import PosedImages
from wmcore.errors import UserInputError

CAM_HEIGHT = 1.5


def _handheld(
    n: int = 12, floor_points: int = 400, pitch_deg: float = -12.0, yaw_span: float = 2 * np.pi, seed: int = 0
) -> PosedImages:
    """A metric, z-up capture: cameras on a loop at 1.5 m looking around, level (no roll), pitched
    down; sparse points on the floor (z = 0) and on walls."""
    rng = np.random.default_rng(seed)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        yaw = yaw_span * i / n + rng.uniform(-0.3, 0.3)
        fwd = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        p = np.radians(pitch_deg)
        z = np.cos(p) * fwd + np.sin(p) * np.array([0, 0, 1.0])
        x = np.cross(z, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        c2w[i, :3, :3] = np.stack([x, np.cross(z, x), z], 1)
        c2w[i, :3, 3] = [2 * np.cos(2 * np.pi * i / n), 1.5 * np.sin(2 * np.pi * i / n), CAM_HEIGHT]
    floor = np.c_[rng.uniform(-4, 4, (floor_points, 2)), rng.normal(0, 0.005, floor_points)]
    wall = np.c_[np.full(150, 4.0), rng.uniform(-4, 4, 150), rng.uniform(0, 3, 150)]
    pts = np.concatenate([floor, wall])
    K = np.tile(np.array([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]]), (n, 1, 1))
    return PosedImages(
        [Path(f"img_{i}.jpg") for i in range(n)],
        c2w,
        K,
        np.full(n, 100),
        np.full(n, 80),
        pts,
        np.zeros((len(pts), 3), np.uint8),
    )


def _random_sim3(seed: int = 1, scale: float = 3.7) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = scale * Rotation.random(random_state=seed).as_matrix()
    T[:3, 3] = np.random.default_rng(seed).normal(size=3) * 5
    return T


@pytest.mark.parametrize("up", ["cameras", "ground", "auto"])
def test_normalised_world_is_z_up_centred_and_unit(up):
    truth = _handheld()
    S = _random_sim3()
    norm = normalize(truth.transformed(S), up=up)
    total = norm.matrix @ S  # true metric world -> normalised
    R = total[:3, :3] / np.cbrt(np.linalg.det(total[:3, :3]))
    assert np.degrees(np.arccos(np.clip(R[2, 2], -1, 1))) < 0.5  # true up lands on +z
    out = truth.transformed(S).transformed(norm.matrix)
    centres = out.cam_to_world[:, :3, 3]
    np.testing.assert_allclose(centres.mean(0), 0, atol=1e-9)
    assert np.linalg.norm(centres, axis=1).max() == pytest.approx(1.0)
    # Default metric scale: the input's units (here 3.7 input units per metre).
    s_true = np.cbrt(np.linalg.det(total[:3, :3]))  # normalised units per metre
    assert norm.metric_scale == pytest.approx(3.7 / s_true)
    # Floor: the true floor (z = 0) is CAM_HEIGHT metres below the cameras.
    assert (centres[:, 2].mean() - norm.floor_z) / s_true == pytest.approx(CAM_HEIGHT, rel=0.02)
    assert norm.up_source == ("cameras" if up == "cameras" else "ground")
    assert Normalization.from_dict(norm.to_dict()).to_dict() == norm.to_dict()


def test_camera_up_ignores_a_common_pitch():
    truth = _handheld(pitch_deg=-25.0, yaw_span=np.pi / 2)  # looking one way: the pitch does not average out
    mean_minus_y = -truth.cam_to_world[:, :3, 1].mean(0)
    assert np.degrees(np.arccos(mean_minus_y[2] / np.linalg.norm(mean_minus_y))) > 20  # the naive estimate
    assert up_from_cameras(truth.cam_to_world) == pytest.approx([0, 0, 1], abs=1e-9)


def test_auto_falls_back_to_cameras_without_a_floor():
    norm = normalize(_handheld(floor_points=0), up="auto")
    assert norm.up_source == "cameras"
    assert norm.floor_source in ("layer", "lowest-point", "cameras")


def test_up_none_keeps_the_rotation():
    truth = _handheld()
    norm = normalize(truth, up="none")
    R = norm.matrix[:3, :3] / norm.scale
    np.testing.assert_allclose(R, np.eye(3), atol=1e-12)


def test_scale_from_two_cameras_and_from_camera_height():
    truth = _handheld()
    S = _random_sim3(seed=4, scale=0.21)
    captured = truth.transformed(S)
    norm = normalize(captured)
    normalised = captured.transformed(norm.matrix)
    true_c = truth.cam_to_world[:, :3, 3]
    d03 = float(np.linalg.norm(true_c[0] - true_c[3]))
    fixed = apply_scale_from(norm, normalised, f"img_0.jpg, img_3 ,{d03}")
    c = normalised.cam_to_world[:, :3, 3]
    # Every distance is now right in metres, not only the one given.
    true_d27 = np.linalg.norm(true_c[2] - true_c[7])
    assert np.linalg.norm(c[2] - c[7]) * fixed.metric_scale == pytest.approx(true_d27)
    assert fixed.scale_source == f"img_0.jpg, img_3 ,{d03}"
    by_height = apply_scale_from(norm, normalised, "camera-height:1.5")
    assert by_height.metric_scale == pytest.approx(fixed.metric_scale, rel=0.02)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("img_0,img_1", "expected 'IMG_A,IMG_B,METRES'"),
        ("img_0,nope.jpg,2", "no registered image named 'nope.jpg'"),
        ("img_0,img_1,-3", "not a positive distance"),
        ("img_0,img_0,1", "same place"),
        ("camera-height:tall", "not a positive distance"),
    ],
)
def test_bad_scale_from_specs(spec, match):
    truth = _handheld()
    norm = normalize(truth)
    with pytest.raises(UserInputError, match=match):
        apply_scale_from(norm, truth.transformed(norm.matrix), spec)


def test_camera_height_needs_a_visible_floor():
    truth = _handheld(floor_points=0)
    truth.points = truth.points[:5]
    norm = normalize(truth)
    with pytest.raises(UserInputError, match="floor is not visible"):
        apply_scale_from(norm, truth.transformed(norm.matrix), "camera-height:1.5")


def test_umeyama_recovers_a_known_sim3():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(20, 3))
    T = _random_sim3(seed=7, scale=2.5)
    dst = src @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(umeyama_sim3(src, dst), T, atol=1e-10)
    # Noise moves the estimate only a little, and a mirrored target still yields a rotation.
    noisy = umeyama_sim3(src, dst + rng.normal(scale=1e-3, size=dst.shape))
    np.testing.assert_allclose(noisy, T, atol=1e-2)
    mirrored = umeyama_sim3(src, src * np.array([1, 1, -1]))
    assert np.linalg.det(mirrored[:3, :3]) > 0
    with pytest.raises(ValueError):
        umeyama_sim3(src[:2], dst[:2])
