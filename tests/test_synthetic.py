"""The procedural example room: renders agree with the true poses and depth, the geometry queries
are exact, the camera path is valid, and the committed example capture matches the code."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch

from scenes.synthetic import (
    EXAMPLE_DIR,
    SyntheticRoom,
    bake_texture,
    load_example_capture,
    write_example_capture,
)
from wmcore.errors import UserInputError

W, H = 160, 120


@pytest.fixture(scope="module")
def room() -> SyntheticRoom:
    return SyntheticRoom.default(seed=0)


def _backproject(depth: np.ndarray, K: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    X, Y = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    cam = (np.stack([X, Y, np.ones_like(X)], -1) @ np.linalg.inv(K).T) * depth[..., None]
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def test_depth_lands_on_surfaces_and_matches_raycast(room):
    c2w = room.camera_path(40)[7]
    K = room.intrinsics(W, H)
    rgb, depth = room.render(c2w, K, W, H)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert depth.shape == (H, W) and depth.dtype == np.float32
    pts = _backproject(depth.astype(np.float64), K, c2w)
    assert np.abs(room.clearance(pts.reshape(-1, 3))).max() < 1e-4
    # z-depth: the Euclidean distance along a pixel's ray is depth * |K^-1 (x, y, 1)|.
    for x, y in [(W // 2, H // 2), (3, 5), (W - 1, H - 1)]:
        ray = np.linalg.inv(K) @ [x + 0.5, y + 0.5, 1.0]
        dist = room.raycast(c2w[None, :3, 3], (c2w[:3, :3] @ ray)[None])[0]
        assert depth[y, x] * np.linalg.norm(ray) == pytest.approx(dist, rel=1e-4)


def test_rgb_only_renders_skip_the_depth_and_change_no_pixel(room):
    """depth=False (what the environments ask for when they observe RGB) gives the same image and no depth, in the
    room and through the RoomScene behind reality's SceneEnv."""
    from scenes.room_scene import RoomScene

    c2w, K = room.camera_path(40)[7], room.intrinsics(W, H)
    rgb, depth = room.render(c2w, K, W, H)
    rgb_only, none = room.render(c2w, K, W, H, depth=False)
    assert none is None and np.array_equal(rgb, rgb_only)
    scene = RoomScene(room)
    a, da = scene.render(c2w, K, W, H, depth=True)
    b, db = scene.render(c2w, K, W, H, depth=False)
    assert db is None and torch.equal(a, b) and np.array_equal(da[0].numpy(), depth)


def test_views_agree_when_reprojected_with_true_poses(room):
    """Pixels of one frame, moved into another frame with the true depth and poses, find the same
    colour there: renders, poses, intrinsics and depth share one convention."""
    poses = room.camera_path(120)
    K = room.intrinsics(W, H)
    a_rgb, a_depth = room.render(poses[30], K, W, H)
    b_rgb, b_depth = room.render(poses[33], K, W, H)
    pts = _backproject(a_depth.astype(np.float64), K, poses[30])
    w2c = np.linalg.inv(poses[33])
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam @ K.T
    u, v = uv[..., 0] / uv[..., 2], uv[..., 1] / uv[..., 2]
    inside = (u >= 1) & (u < W - 1) & (v >= 1) & (v < H - 1) & (cam[..., 2] > 0)
    ui, vi = u[inside].astype(int), v[inside].astype(int)
    visible = np.abs(b_depth[vi, ui] - cam[..., 2][inside]) < 0.03
    assert inside.mean() > 0.5 and visible.mean() > 0.8

    def diff(shift: float) -> float:
        x, y = (u - 0.5 + shift).astype(np.float32), (v - 0.5 + shift).astype(np.float32)
        warped = cv2.remap(b_rgb, x, y, cv2.INTER_LINEAR)
        return np.abs(warped[inside].astype(int) - a_rgb[inside].astype(int))[visible].mean()

    # Half a pixel off (another pixel-centre convention) doubles the error.
    assert diff(0.0) < 8 and diff(0.0) < 0.6 * min(diff(0.5), diff(-0.5))


def test_camera_path_is_a_smooth_free_loop(room):
    poses = room.camera_path(120)
    pos = poses[:, :3, 3]
    assert room.is_free(pos, radius=0.3).all()
    assert (pos[:, 2] > 1.2).all() and (pos[:, 2] < 1.6).all()
    R = poses[:, :3, :3]
    assert np.allclose(R @ R.transpose(0, 2, 1), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(R), 1.0)
    nxt = np.roll(np.arange(120), -1)  # includes the step that closes the loop
    step = np.linalg.norm(pos[nxt] - pos, axis=1)
    cos = (np.einsum("nij,nij->n", R[nxt], R) - 1) / 2
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert step.max() < 0.15 and step.min() > 0.03
    assert angle.max() < 15.0  # looking around: at most 150 degrees/s at the video's 10 frames/s
    # The camera looks mostly level (optical axis within 25 degrees of horizontal).
    assert (np.abs(poses[:, 2, 2]) < math.sin(math.radians(25))).all()


def test_exact_geometry_queries(room):
    free = np.array([[-1.0, 0.0, 1.5], [1.0, -0.5, 0.3]])
    inside_crate = np.array([[2.35, -2.0, 0.3]])
    inside_pillar = np.array([[0.2, 0.1, 2.0]])
    outside = np.array([[4.0, 0.0, 1.0], [0.0, 0.0, -0.1]])
    assert room.is_free(free).all()
    assert not room.is_free(np.concatenate([inside_crate, inside_pillar, outside])).any()
    near_wall = np.array([[-2.8, 0.0, 1.5]])  # 0.2 m from the -x wall
    assert room.is_free(near_wall, 0.15)[0] and not room.is_free(near_wall, 0.25)[0]
    assert room.floor_z == 0.0
    o = np.array([[-1.0, 0.0, 1.5], [-1.0, 0.0, 1.5], [-1.0, 0.0, 1.5]])
    d = np.array([[-1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]])
    dist = room.raycast(o, d)
    pillar_x = 0.2 - math.sqrt(0.22**2 - 0.1**2)
    assert dist == pytest.approx([2.0, pillar_x + 1.0, 1.5], abs=1e-9)
    assert room.raycast(o, d, max_dist=1.2)[0] == 1.2
    assert room.raycast(inside_crate, d[:1])[0] == 0.0
    surf = room.sample_surface(2000, seed=3)
    assert np.abs(room.clearance(surf)).max() < 1e-9


def test_textures_are_seeded_and_deterministic(room):
    cached = bake_texture("plaster", 5, 1.0, 0.8, 64.0)
    assert np.array_equal(bake_texture.__wrapped__("plaster", 5, 1.0, 0.8, 64.0), cached)
    assert cached.shape == (52, 64, 3) and 0 <= cached.min() and cached.max() <= 1
    c2w, K = room.camera_path(12)[2], room.intrinsics(64, 48)
    same = SyntheticRoom.default(seed=0).render(c2w, K, 64, 48)[0]
    other = SyntheticRoom.default(seed=1).render(c2w, K, 64, 48)[0]
    assert np.array_equal(room.render(c2w, K, 64, 48)[0], same)
    assert np.abs(other.astype(int) - same.astype(int)).mean() > 10
    rebuilt = SyntheticRoom.from_spec(json.loads(json.dumps(room.to_spec())))
    assert rebuilt.to_spec() == room.to_spec()
    assert np.array_equal(rebuilt.render(c2w, K, 64, 48)[0], same)


def test_render_rejects_a_camera_inside_a_solid(room):
    c2w = np.eye(4)
    c2w[:3, 3] = [0.2, 0.1, 1.0]  # the pillar's axis
    with pytest.raises(UserInputError, match="inside a solid"):
        room.render(c2w, room.intrinsics(32, 24), 32, 24)


def test_committed_example_matches_the_code(room):
    cap = load_example_capture()
    n = len(cap.cam_to_world)
    assert 100 <= n <= 150 and (cap.width, cap.height) == (320, 240)
    assert SyntheticRoom.load(EXAMPLE_DIR).to_spec() == room.to_spec()
    assert np.allclose(cap.cam_to_world, room.camera_path(n), atol=1e-9)
    assert np.allclose(cap.K, room.intrinsics(cap.width, cap.height))
    video = cv2.VideoCapture(str(cap.video))
    frames = []
    while True:
        ok, frame = video.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == n and frames[0].shape == (240, 320, 3)
    k = 17
    fresh = room.render(cap.cam_to_world[k], cap.K, cap.width, cap.height)[0]
    mse = np.mean((frames[k][..., ::-1].astype(float) - fresh.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # only the H.264 loss between them


def test_write_and_load_a_small_capture(tmp_path):
    cap = write_example_capture(tmp_path / "cap", num_frames=3, width=64, height=48)
    loaded = load_example_capture(tmp_path / "cap")
    assert loaded.video == cap.video and loaded.video.is_file()
    assert np.allclose(loaded.cam_to_world, cap.cam_to_world) and loaded.cam_to_world.shape == (3, 4, 4)
    assert (loaded.width, loaded.height) == (64, 48)
    poses = json.loads((tmp_path / "cap" / "true_poses.json").read_text())
    assert len(poses["frames"]) == 3 and poses["frames"][1]["width"] == 64
    spec = json.loads((tmp_path / "cap" / "scene_spec.json").read_text())
    assert spec["format"] == "worldmodel-synthetic-room"


def test_load_errors_name_the_file_and_the_remedy(tmp_path):
    with pytest.raises(UserInputError, match="python -m scenes.synthetic"):
        load_example_capture(tmp_path / "missing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "capture.mp4").write_bytes(b"")
    (tmp_path / "bad" / "true_poses.json").write_text("{not json")
    with pytest.raises(UserInputError, match="true_poses.json"):
        load_example_capture(tmp_path / "bad")
    with pytest.raises(UserInputError, match="scene_spec.json"):
        SyntheticRoom.load(tmp_path / "bad")


@pytest.mark.slow
def test_pycolmap_registers_example_frames(tmp_path):
    """SIFT + exhaustive matching + incremental mapping register every sampled frame of the
    committed video, with camera centres matching the truth after a similarity alignment."""
    pycolmap = pytest.importorskip("pycolmap")
    cap = load_example_capture()
    keep = list(range(0, 32, 2))
    images = tmp_path / "images"
    images.mkdir()
    video = cv2.VideoCapture(str(cap.video))
    for i in range(max(keep) + 1):
        ok, frame = video.read()
        assert ok
        if i in keep:
            cv2.imwrite(str(images / f"{i:04d}.png"), frame)
    db = tmp_path / "db.db"
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    reader.camera_params = ",".join(str(x) for x in (cap.K[0, 0], cap.K[1, 1], cap.K[0, 2], cap.K[1, 2]))
    pycolmap.extract_features(
        db,
        images,
        camera_mode=pycolmap.CameraMode.SINGLE,
        reader_options=reader,
        extraction_options=pycolmap.FeatureExtractionOptions(use_gpu=False),
        device=pycolmap.Device.cpu,
    )
    pycolmap.match_exhaustive(db, device=pycolmap.Device.cpu)
    (tmp_path / "sparse").mkdir()
    recs = pycolmap.incremental_mapping(db, images, tmp_path / "sparse")
    rec = max(recs.values(), key=lambda r: r.num_reg_images())
    assert rec.num_reg_images() == len(keep)
    est, true = [], []
    for im in rec.images.values():
        pose = im.cam_from_world()
        R = pose.rotation.matrix()
        est.append(-R.T @ pose.translation)
        true.append(cap.cam_to_world[int(im.name[:4]), :3, 3])
    est, true = np.array(est), np.array(true)
    e, t = est - est.mean(0), true - true.mean(0)
    U, S, Vt = np.linalg.svd(t.T @ e)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    scale = (S * np.diag(D)).sum() / (e**2).sum()
    err = np.linalg.norm(scale * e @ (U @ D @ Vt).T - t, axis=1)
    assert err.max() < 0.05  # metres, on a loop of about 1.6 m radius
