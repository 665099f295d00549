"""Scene.load: a Scene directory and a bare 3DGS .ply render alike; collision queries in metres;
bad scene paths give clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scenes.preview import look_at
from scenes.scene import Scene
from scenes.synthetic import SyntheticRoom
from scenes.truth_scene import truth_scene
from wmcore.errors import UserInputError


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    return truth_scene(tmp_path_factory.mktemp("s") / "room", num_gaussians=4000, views=8)


def test_directory_and_bare_ply_render_alike(scene_dir):
    a = Scene.load(scene_dir)
    b = Scene.load(scene_dir / "splats.ply")  # what nerfstudio / gsplat / 3DGS exports look like
    c2w = look_at(np.array([-1.0, -1.0, 1.4]), np.array([2.0, 1.0, 1.2]))[None]
    K = SyntheticRoom.intrinsics(48, 48, 70.0)[None]
    rgb_a, depth_a = a.render(c2w, K, 48, 48)
    rgb_b, depth_b = b.render(c2w, K, 48, 48)
    assert rgb_a.shape == (1, 48, 48, 3) and depth_a.shape == (1, 48, 48)
    np.testing.assert_allclose(rgb_a.numpy(), rgb_b.numpy(), atol=1e-6)
    assert float(depth_a.max()) > 1.0  # metres to the far wall


def test_render_matches_the_true_room(scene_dir):
    """Depth rendered from the splats agrees with the ray-cast truth where the surface is covered."""
    room = SyntheticRoom.default()
    scene = Scene.load(scene_dir)
    c2w = look_at(np.array([-1.5, 0.5, 1.4]), np.array([2.5, -1.0, 1.0]))
    K = SyntheticRoom.intrinsics(40, 30, 70.0)
    _, depth = scene.render(c2w[None], K[None], 40, 30)
    _, true_depth = room.render(c2w, K, 40, 30, supersample=1)
    d = depth[0].numpy()
    ok = d > 0
    assert ok.mean() > 0.5  # a sparse 4k-Gaussian scene leaves gaps
    assert np.median(np.abs(d[ok] - true_depth[ok]) / true_depth[ok]) < 0.05


def test_collision_queries_in_metres(scene_dir):
    scene = Scene.load(scene_dir)
    assert scene.is_free(np.array([[-1.0, 0.0, 1.4]]), 0.2)[0]
    assert not scene.is_free(np.array([[0.2, 0.1, 1.4]]), 0.0)[0]  # inside the pillar
    d = scene.raycast(np.array([[-2.0, 0.0, 1.4]]), np.array([[-1.0, 0.0, 0.0]]), 5.0)
    assert 0.7 < d[0] < 1.05  # the -x wall is 1 m away


def test_bad_scene_paths(tmp_path):
    with pytest.raises(UserInputError, match="no such scene"):
        Scene.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="scene.json is missing"):
        Scene.load(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "scene.json").write_text(json.dumps({"splats": "splats.ply"}))
    with pytest.raises(UserInputError, match="malformed"):
        Scene.load(bad)
