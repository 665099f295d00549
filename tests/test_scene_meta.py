"""scene.json through SceneMeta: round trips, unknown keys kept, bad files refused by name."""

import json
import math

import pytest

from scenes.scene_meta import SCENE_FILE, SceneMeta
from wmcore.errors import UserInputError

GOOD = {
    "format": "worldmodel-scene",
    "version": 1,
    "method": "splats",
    "splats": "splats.ply",
    "sh_degree": 3,
    "floor_z": -1.4,
    "bounds": {"min": [-3.5, -3.2, -1.6], "max": [3.3, 3.3, 1.5]},
    "num_gaussians": 100,
    "collision": {"voxel_size": 0.05, "floor_band": 0.3, "min_views": 3},
    "occupancy": "occupancy",
    "transforms": "transforms.json",
    "normalization": {"matrix": [[1, 0, 0, 0]], "metric_scale": 1.8},
    "metric_scale": 1.8,
    "up": [0.0, 0.0, 1.0],
    "intrinsics": {"K": [[1, 0, 0]], "width": 4, "height": 3},
    "registered_images": 2,
    "dropped_images": ["a.png"],
}


def test_a_scene_json_round_trips_unchanged_with_unknown_keys_kept(tmp_path):
    doc = {**GOOD, "added_later": {"x": 1}}
    (tmp_path / SCENE_FILE).write_text(json.dumps(doc))
    meta = SceneMeta.read(tmp_path)
    assert meta.extra == {"added_later": {"x": 1}} and meta.bounds_max == (3.3, 3.3, 1.5)
    assert meta.splat_path(tmp_path) == tmp_path / "splats.ply"
    meta.write(tmp_path)
    assert json.loads((tmp_path / SCENE_FILE).read_text()) == doc


def test_absent_optional_fields_stay_absent(tmp_path):
    SceneMeta(
        metric_scale=1.0, floor_z=0.0, bounds_min=(0, 0, 0), bounds_max=(1, 1, 1), nerfstudio_run="nerfstudio/run"
    ).write(tmp_path)
    doc = json.loads((tmp_path / SCENE_FILE).read_text())
    assert "splats" not in doc and "sh_degree" not in doc and doc["nerfstudio_run"] == "nerfstudio/run"
    assert SceneMeta.read(tmp_path).transforms_path(tmp_path) == tmp_path / "transforms.json"


@pytest.mark.parametrize(
    "change, field",
    [
        ({"metric_scale": None}, "'metric_scale' is missing"),
        ({"floor_z": None}, "'floor_z' is missing"),
        ({"bounds": None}, "'bounds' is missing"),
        ({"metric_scale": math.nan}, "'metric_scale' is nan"),
        ({"floor_z": math.inf}, "'floor_z' is inf"),
        ({"bounds": {"min": [0, 0, 0], "max": [1, -math.inf, 1]}}, r"'bounds.max\[1\]' is -inf"),
        ({"bounds": {"min": [0, 0], "max": [1, 1, 1]}}, "'bounds.min'"),
        ({"metric_scale": "2"}, "'metric_scale' is '2'"),
        ({"metric_scale": 0}, "'metric_scale' is 0.0; it must be positive"),
        ({"splats": 3}, "'splats' is 3"),
        ({"format": "something-else"}, "'format'"),
    ],
)
def test_bad_fields_name_the_file_and_the_field(tmp_path, change, field):
    doc = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    (tmp_path / SCENE_FILE).write_text(json.dumps(doc))
    with pytest.raises(UserInputError, match=f"{SCENE_FILE}: malformed scene description: field {field}"):
        SceneMeta.read(tmp_path)


def test_nothing_unreadable_is_written_and_a_missing_file_is_named(tmp_path):
    with pytest.raises(UserInputError, match="'floor_z' is nan"):
        SceneMeta(metric_scale=1.0, floor_z=math.nan, bounds_min=(0, 0, 0), bounds_max=(1, 1, 1)).write(tmp_path)
    assert not (tmp_path / SCENE_FILE).exists()
    with pytest.raises(UserInputError, match="not a Scene directory"):
        SceneMeta.read(tmp_path)
    (tmp_path / SCENE_FILE).write_text("{not json")
    with pytest.raises(UserInputError, match="malformed scene description: not JSON"):
        SceneMeta.read(tmp_path)
