"""Structure-from-motion and ingest against ground truth: a video rendered from the synthetic room
(known cameras) and the Lund photos (real, slow)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pycolmap
import pytest

from scenes.colmap_io import read_colmap_model
from scenes.ingest import IngestConfig, ingest
from scenes.nerfstudio_io import read_transforms
from scenes.normalize import umeyama_sim3
from scenes.sfm import SfMOptions, camera_centres, centre_disagreement, run_sfm, sequential_pairs
from scenes.synthetic import SyntheticRoom

LUND = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lund" / "images"
W, H = 320, 240
LOOP = 120  # frames of the room's closed loop; the video is its first FRAMES, a quarter of it
FRAMES = 30


def _centre_error(est_c2w: np.ndarray, true_c2w: np.ndarray) -> tuple[float, np.ndarray]:
    """Largest camera-centre error after Sim(3) alignment, as a fraction of the true extent."""
    T = umeyama_sim3(est_c2w[:, :3, 3], true_c2w[:, :3, 3])
    aligned = est_c2w[:, :3, 3] @ T[:3, :3].T + T[:3, 3]
    extent = np.ptp(true_c2w[:, :3, 3], axis=0).max()
    return float(np.linalg.norm(aligned - true_c2w[:, :3, 3], axis=1).max() / extent), T


@pytest.fixture(scope="module")
def room_video(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    """An H.264 video of FRAMES rendered frames with their true camera-to-world poses and K."""
    room = SyntheticRoom.default()
    K = room.intrinsics(W, H)
    poses = room.camera_path(LOOP)[:FRAMES]
    path = tmp_path_factory.mktemp("room") / "capture.mp4"
    with imageio.get_writer(
        str(path),
        fps=10,
        codec="libx264",
        quality=None,
        pixelformat="yuv420p",
        macro_block_size=8,
        output_params=["-crf", "14"],
    ) as writer:
        for pose in poses:
            writer.append_data(room.render(pose, K, W, H, supersample=1)[0])
    return path, poses, K


@pytest.fixture(scope="module")
def video_ingest(room_video, tmp_path_factory):
    video, poses, K = room_video
    work = tmp_path_factory.mktemp("work")
    posed, norm, info = ingest(video, work, IngestConfig(num_frames=FRAMES))
    return work, posed, norm, info


def test_video_ingest_registers_and_recovers_true_cameras(room_video, video_ingest):
    _, true_c2w, K = room_video
    work, posed, norm, info = video_ingest
    assert info["kind"] == "video"
    assert info["num_registered"] >= 0.9 * FRAMES, info["dropped"]
    frame_idx = np.array(info["source_frames"])
    registered = [int(p.stem.split("_")[1]) for p in posed.image_paths]
    err, T = _centre_error(posed.cam_to_world, true_c2w[frame_idx[registered]])
    assert err < 0.02, f"camera centres off by {err:.1%} of the extent"
    assert info["mean_reprojection_error"] < 1.0
    # One shared, undistorted pinhole camera close to the true focal length.
    assert posed.distortion is None
    assert np.allclose(posed.Ks, posed.Ks[:1])
    assert posed.Ks[0, 0, 0] == pytest.approx(K[0, 0], rel=0.05)
    # The normalised world's +z is the room's up (the alignment rotation keeps z) and the
    # cameras are centred inside the unit sphere.
    R = T[:3, :3] / np.cbrt(np.linalg.det(T[:3, :3]))
    assert np.degrees(np.arccos(np.clip(R[2, 2], -1, 1))) < 5.0
    centres = posed.cam_to_world[:, :3, 3]
    assert np.allclose(centres.mean(0), 0, atol=1e-9)
    assert np.linalg.norm(centres, axis=1).max() == pytest.approx(1.0)
    # The floor estimate puts the cameras at their true mean height above the floor (z = 0).
    metres_per_unit = np.cbrt(np.linalg.det(T[:3, :3]))
    height = (centres[:, 2].mean() - norm.floor_z) * metres_per_unit
    true_height = true_c2w[frame_idx[registered], 2, 3].mean()
    assert height == pytest.approx(true_height, rel=0.05), norm.floor_source


def test_video_ingest_writes_a_readable_work_dir(video_ingest):
    work, posed, norm, info = video_ingest
    back = read_transforms(work / "transforms.json")
    assert [p.resolve() for p in back.image_paths] == [p.resolve() for p in posed.image_paths]
    np.testing.assert_allclose(back.cam_to_world, posed.cam_to_world, atol=1e-9)
    np.testing.assert_allclose(back.Ks, posed.Ks)
    assert len(back.points) == len(posed.points) > 100
    saved = json.loads((work / "ingest.json").read_text())
    assert saved["num_registered"] == len(posed)
    np.testing.assert_allclose(saved["normalization"]["matrix"], norm.matrix)


def test_colmap_model_and_transforms_inputs_give_the_same_cameras(video_ingest, tmp_path):
    work, posed, norm, _ = video_ingest
    model = read_colmap_model(work / "sfm" / "sparse" / "0", work / "images")
    assert len(model) == len(posed)
    # The SfM model is in COLMAP's frame; the work dir's poses are that frame normalised.
    moved = model.transformed(norm.matrix)
    np.testing.assert_allclose(moved.cam_to_world[:, :3, 3], posed.cam_to_world[:, :3, 3], atol=1e-6)
    # Feeding the COLMAP model folder and the written transforms.json back through ingest.
    p_colmap, _, i_colmap = ingest(
        work / "sfm" / "sparse" / "0", tmp_path / "a", IngestConfig(image_dir=work / "images")
    )
    assert i_colmap["kind"] == "colmap" and len(p_colmap) == len(posed)
    assert p_colmap.distortion is None  # the distorted model was undistorted on the way in
    # A COLMAP project in text format (proj/sparse/0/*.txt beside proj/images) is found by itself.
    proj = tmp_path / "proj"
    (proj / "sparse" / "0").mkdir(parents=True)
    pycolmap.Reconstruction(work / "sfm" / "sparse" / "0").write_text(proj / "sparse" / "0")
    shutil.copytree(work / "images", proj / "images")
    p_text, _, i_text = ingest(proj, tmp_path / "c")
    assert i_text["kind"] == "colmap"
    np.testing.assert_allclose(p_text.cam_to_world, p_colmap.cam_to_world, atol=1e-6)
    p_json, _, i_json = ingest(work, tmp_path / "b")
    assert i_json["kind"] == "transforms"
    err, _ = _centre_error(p_json.cam_to_world, posed.cam_to_world)
    assert err < 1e-6


def _verified_matches(db: Path) -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Inlier matches by image names (image ids follow the order extraction threads finish in)."""
    with sqlite3.connect(db) as con:
        names = dict(con.execute("SELECT image_id, name FROM images"))
        out = {}
        for pair_id, rows, data in con.execute("SELECT pair_id, rows, data FROM two_view_geometries"):
            a, b = names[pair_id // 2147483647], names[pair_id % 2147483647]  # COLMAP: id1 * 2^31-1 + id2
            idx = np.frombuffer(data or b"", np.uint32).reshape(rows, 2)
            if a > b:
                a, b, idx = b, a, idx[:, ::-1]
            out[a, b] = sorted(map(tuple, idx.tolist()))
    return out


def test_a_seed_makes_the_model_repeatable(video_ingest, tmp_path):
    """With a seed the verified matches, the poses and the points are the same run after run
    (multi-threaded verification drew different RANSAC samples each time, and multi-threaded extraction
    numbered the images in the order they finished: the demo's scene changed with them)."""
    images = video_ingest[0] / "images"
    opts = SfMOptions(matcher="sequential", mapper="incremental", single_camera=True, max_image_size=240)
    models = [run_sfm(images, tmp_path / f"run{i}", opts=opts)[0] for i in range(2)]
    first, second = (_verified_matches(tmp_path / f"run{i}" / "database.db") for i in range(2))
    assert sum(map(len, first.values())) > 1000
    assert first == second
    assert [p.name for p in models[0].image_paths] == [p.name for p in models[1].image_paths]
    np.testing.assert_array_equal(models[0].cam_to_world, models[1].cam_to_world)
    np.testing.assert_array_equal(models[0].points, models[1].points)


def test_sequential_pairs_cover_neighbours_and_key_frames():
    names = [f"frame_{i:05d}.jpg" for i in range(30)]
    pairs = sequential_pairs(names, overlap=3, keyframes=5)
    idx = {(int(a[6:11]), int(b[6:11])) for a, b in pairs}
    assert len(idx) == len(pairs) and all(i < j for i, j in idx)
    assert {(4, 5), (4, 7)} <= idx and (4, 8) not in idx  # neighbours up to 3 frames ahead
    assert {(0, 29), (6, 29), (24, 29), (23, 24)} <= idx  # key frames 0, 6, 12, 18, 24 see everyone
    assert (1, 29) not in idx
    assert sequential_pairs(names, overlap=1, keyframes=0) == list(zip(names, names[1:]))


def test_centre_disagreement_tells_a_similar_model_from_a_degenerate_one(video_ingest):
    """The auto mapper's guard: a model that differs by a similarity transform (SfM's gauge) agrees;
    one whose cameras are bunched up, or placed anyhow, does not."""
    rec = pycolmap.Reconstruction(str(video_ingest[0] / "sfm" / "sparse" / "0"))
    ref = camera_centres(rec)
    assert len(ref) >= 10
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))  # a rotation, not a reflection
    gauge = {k: 3.7 * q @ c + [5.0, -2.0, 1.0] for k, c in ref.items()}
    assert centre_disagreement(ref, gauge) < 1e-6
    noisy = {k: c + rng.normal(0, 0.01, 3) * np.ptp(list(ref.values())) for k, c in gauge.items()}
    assert centre_disagreement(ref, noisy) < 0.1
    names = sorted(ref)
    bunched = {k: ref[names[0]] + 1e-3 * rng.normal(size=3) for k in names}  # collapsed onto one spot
    assert centre_disagreement(ref, bunched) > 0.5
    anyhow = {k: rng.normal(size=3) for k in names}
    assert centre_disagreement(ref, anyhow) > 0.5
    assert centre_disagreement(ref, {k: ref[k] for k in names[:3]}) is None  # too few shared


@pytest.mark.slow
@pytest.mark.skipif(not LUND.is_dir(), reason="shared Lund photos not present (../shared/data/lund)")
def test_lund_photos(tmp_path):
    """29 real photos walking around a building; SIFT at 640 px and 2048 features keeps it at
    about a minute on a lightly loaded 2-core machine (registration: incremental finds no initial
    pair, global registers all)."""
    posed, norm, info = ingest(LUND, tmp_path, IngestConfig(sfm_max_size=640, max_features=2048))
    assert info["kind"] == "photos"
    assert info["num_registered"] >= 0.9 * info["num_input_images"] == 0.9 * 29
    assert info["mean_reprojection_error"] < 1.5
    assert len(posed.points) > 300
    # Handheld photos: the cameras stand near the bottom of the reconstructed building.
    assert norm.up_source in ("cameras", "ground")
    assert posed.cam_to_world[:, 2, 3].mean() - norm.floor_z > 0
