"""Bad captures fail with a UserInputError that names the input and says what to do."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from scenes.ingest import IngestConfig, detect_input, ingest
from wmcore.errors import UserInputError


def _noise_images(folder, n: int, size: int = 128) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(folder / f"noise_{i}.png"), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_missing_input(tmp_path):
    with pytest.raises(UserInputError, match="input not found") as e:
        ingest(tmp_path / "nothing_here.mp4", tmp_path / "work")
    assert "nothing_here.mp4" in str(e.value)


def test_unsupported_file(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UserInputError, match="unsupported input file"):
        ingest(tmp_path / "notes.txt", tmp_path / "work")


def test_undecodable_video(tmp_path):
    video = tmp_path / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 200)
    with pytest.raises(UserInputError, match="cannot decode") as e:
        ingest(video, tmp_path / "work")
    assert str(video) in str(e.value) and "re-encode" in str(e.value)


def test_empty_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "readme.md").write_text("no images")
    with pytest.raises(UserInputError, match="no .jpg/.jpeg/.png images"):
        ingest(tmp_path / "photos", tmp_path / "work")


def test_too_few_images(tmp_path):
    _noise_images(tmp_path / "photos", 2)
    with pytest.raises(UserInputError, match="only 2 image"):
        ingest(tmp_path / "photos", tmp_path / "work")


def test_non_overlapping_photos_register_nothing(tmp_path):
    _noise_images(tmp_path / "photos", 5)
    with pytest.raises(UserInputError, match="could not register") as e:
        ingest(tmp_path / "photos", tmp_path / "work", IngestConfig(max_features=1024))
    assert "overlap" in str(e.value)


def test_malformed_transforms_json(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "transforms.json").write_text('{"frames": [')
    assert detect_input(tmp_path / "data")[0] == "transforms"
    with pytest.raises(UserInputError, match="not valid JSON") as e:
        ingest(tmp_path / "data", tmp_path / "work")
    assert "transforms.json" in str(e.value)


def test_transforms_with_too_few_images_and_bad_scale_spec(tmp_path):
    _noise_images(tmp_path / "data", 4, size=32)
    frames = []
    for i in range(4):
        pose = np.eye(4)
        pose[:3, 3] = [i, 0, 0]
        frames.append({"file_path": f"noise_{i}.png", "transform_matrix": pose.tolist()})
    meta = {"fl_x": 30, "w": 32, "h": 32, "frames": frames}
    (tmp_path / "data" / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="no registered image named 'IMG_9'"):
        ingest(tmp_path / "data", tmp_path / "work", IngestConfig(scale_from="IMG_9,noise_0,2.0"))
    posed, norm, _ = ingest(tmp_path / "data", tmp_path / "w", IngestConfig(scale_from="noise_0,noise_3,6"))
    d03 = np.linalg.norm(posed.cam_to_world[0, :3, 3] - posed.cam_to_world[3, :3, 3])
    assert norm.metric_scale * d03 == pytest.approx(6.0)
    missing = {"file_path": "missing.png", "transform_matrix": frames[2]["transform_matrix"]}
    meta["frames"] = frames[:2] + [missing]
    (tmp_path / "data" / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="only 2 posed image"):
        ingest(tmp_path / "data", tmp_path / "work")
