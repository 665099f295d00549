"""Scene.load: a Scene directory and a bare 3DGS .ply render alike; collision queries in metres;
bad scene paths give clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from scenes.preview import look_at
from scenes.scene import Scene, load_scene
from scenes.scene_meta import SceneMeta
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
    rgb_only, no_depth = a.render(c2w, K, 48, 48, depth=False)  # the environments' path
    assert no_depth is None
    np.testing.assert_array_equal(rgb_only.numpy(), rgb_a.numpy())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and gsplat")
def test_scene_renders_alike_on_cuda(scene_dir):
    """Scene.load(dir, device="cuda") renders through gsplat what the CPU rasterizer renders."""
    pytest.importorskip("gsplat")
    cpu, gpu = Scene.load(scene_dir), Scene.load(scene_dir, device="cuda")
    c2w = np.stack(
        [
            look_at(np.array([-1.0, -1.0, 1.4]), np.array([2.0, 1.0, 1.2])),
            look_at(np.array([1.0, 0.5, 1.2]), np.array([-2.0, -1.0, 1.0])),
        ]
    )
    K = np.repeat(SyntheticRoom.intrinsics(64, 48, 70.0)[None], 2, 0)
    rgb_c, depth_c = cpu.render(c2w, K, 64, 48)
    rgb_g, depth_g = gpu.render(c2w, K, 64, 48)
    assert rgb_g.device.type == "cuda" and rgb_g.shape == (2, 48, 64, 3) and depth_g.shape == (2, 48, 64)
    assert float(rgb_c.std()) > 0.05  # a real view, not an empty one
    torch.testing.assert_close(rgb_g.cpu(), rgb_c, atol=3e-3, rtol=0)
    torch.testing.assert_close(depth_g.cpu(), depth_c, atol=1e-2, rtol=1e-3)


def test_look_at_is_a_rigid_camera_looking_at_the_target():
    rng = np.random.default_rng(0)
    for eye, target in [(rng.normal(size=3), rng.normal(size=3)) for _ in range(20)] + [
        (np.zeros(3), np.array([0.0, 0.0, 2.0])),  # straight up: the z-up fallback
        (np.ones(3), np.array([1.0, 1.0, -3.0])),
    ]:
        m = look_at(eye, target)
        r = m[:3, :3]
        np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        np.testing.assert_allclose(m[:3, 3], eye)
        np.testing.assert_allclose(r[:, 2], (target - eye) / np.linalg.norm(target - eye), atol=1e-12)
        if abs(r[2, 2]) < 0.99:  # OpenCV y points down: the image's up is world +z
            assert r[2, 1] < 0 and abs(r[2, 0]) < 1e-12


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


def test_load_scene_chooses_the_splat_scene_and_keeps_its_description(scene_dir):
    scene = load_scene(scene_dir)
    meta = SceneMeta.read(scene_dir)
    assert type(scene) is Scene and meta.method == "truth" and scene.meta == meta.to_dict()
    assert scene.metric_scale == meta.metric_scale and scene.num_gaussians == meta.num_gaussians
    np.testing.assert_array_equal(scene.bounds_min, meta.bounds_min)


def test_mark_view_matches_the_reference():
    """The compiled ray marcher marks exactly the cells and voxels the all-points-at-once reference marks: rays
    of every direction and length, some leaving the grid, some starting outside it, some of zero reach; and it
    counts each view once per cell, however many of its rays cross it."""
    from scenes.seen_space import _mark_view, mark_view_reference

    rng = np.random.default_rng(0)
    shape = (80, 70, 30)
    for centre in (np.array([0.3, -0.2, 1.4]), np.array([-4.2, 0.1, 0.5])):
        d = rng.normal(size=(500, 3))
        rays = d / np.linalg.norm(d, axis=1, keepdims=True) * rng.uniform(0.2, 1.5, (500, 1))
        depth = np.concatenate([rng.uniform(0, 6, 499), [0.0]])
        args = (centre, rays, depth, 0.05, np.array([-4.0, -3.5, -0.1]), 0.1)
        ref = np.zeros(shape[:2], bool), np.zeros(shape, bool), np.zeros(shape, bool)
        mark_view_reference(*ref, *args)
        counts = np.zeros(shape[:2], np.int32), np.zeros(shape, np.uint16), np.zeros(shape, np.uint16)
        stamps = np.zeros(shape[:2], np.int32), np.zeros(shape, np.int32), np.zeros(shape, np.int32)
        for view in (1, 2):  # the same rays twice, as two views: every marked cell counted twice
            _mark_view(*counts, *stamps, view, centre, rays, depth, *args[3:])
        for r, c in zip(ref, counts):
            assert r.sum() > 100 and np.array_equal(c > 0, r) and set(np.unique(c)) == {0, 2}


def test_trace_views_sees_the_room_not_behind_its_walls(scene_dir):
    """Columns the cameras looked across are seen; space behind the walls is not, and collision
    geometry built with the seen mask makes it solid."""
    import torch

    from scenes.collision import OccupancyGrid
    from scenes.ply import read_splat_ply
    from scenes.seen_space import trace_views

    params = {k: torch.as_tensor(v) for k, v in read_splat_ply(scene_dir / "splats.ply").items()}
    room = SyntheticRoom.default()
    c2w = room.camera_path(12)
    K = SyntheticRoom.intrinsics(32, 24, 70.0)
    lo, hi, cell = np.array([-4.0, -3.5, -0.1]), np.array([4.0, 3.5, 3.1]), 0.1
    shape = (80, 70)
    seen3 = trace_views(params, c2w, np.repeat(K[None], 12, 0), 32, 24, 1.0, lo, cell, (80, 70, 32))
    views, surface = seen3.views, seen3.surface
    assert views.dtype == np.int32 and views.max() <= 12 and seen3.crossed.max() <= 12
    seen = views >= 1
    xs = lo[0] + (np.arange(shape[0]) + 0.5) * cell
    ys = lo[1] + (np.arange(shape[1]) + 0.5) * cell
    outside = (np.abs(xs)[:, None] > 3.15) | (np.abs(ys)[None, :] > 2.65)
    assert not seen[outside].any()  # never behind a wall
    assert seen[~outside].mean() > 0.3  # much of the floor was looked across
    centre_cells = np.floor((c2w[:, :2, 3] - lo[:2]) / cell).astype(int)
    assert seen[centre_cells[:, 0], centre_cells[:, 1]].all()  # where the cameras stood
    off = np.abs(room.clearance(surface))  # the rays end on the true surfaces (sparse splats blur a few)
    assert len(surface) > 0 and np.median(off) < 0.03 and np.percentile(off, 90) < 0.1
    pts = room.sample_surface(50_000)
    grid = OccupancyGrid.build(pts, None, lo, hi, cell, room.floor_z, seen_xy=seen)
    truly_free = np.array([[room.is_free(np.array([[x, y, 1.4]]), 0.1)[0] for y in ys] for x in xs])
    unseen_free = np.argwhere(~seen & truly_free)  # really empty, but no camera looked across it
    assert len(unseen_free) > 0
    probes = np.stack([xs[unseen_free[:, 0]], ys[unseen_free[:, 1]], np.full(len(unseen_free), 1.4)], 1)
    assert not grid.is_free(probes).any()  # unknown is solid
    seen_free = np.argwhere(seen & truly_free)
    probes = np.stack([xs[seen_free[:, 0]], ys[seen_free[:, 1]], np.full(len(seen_free), 1.4)], 1)
    assert grid.is_free(probes).mean() > 0.9  # what was seen empty stays free


def test_min_views_keeps_space_behind_a_missing_wall_solid(scene_dir):
    """A stretch of wall the reconstruction lost, with a floater behind it: the two views that
    looked at it see through to the floater, so counting one view makes the space behind the true
    wall free; asking for three keeps it unknown, hence solid, while the room stays free."""
    import torch

    from scenes.collision import OccupancyGrid
    from scenes.ply import read_splat_ply
    from scenes.seen_space import trace_views

    splats = read_splat_ply(scene_dir / "splats.ply")
    m = splats["means"]
    gap = (np.abs(m[:, 0] + 3.0) < 0.15) & (np.abs(m[:, 1]) < 0.9)
    keep = {k: v[~gap] for k, v in splats.items()}
    rng = np.random.default_rng(0)
    n = 40  # opaque floaters 0.6 m behind the wall
    floaters = {
        "means": np.stack([np.full(n, -3.6), rng.uniform(-0.7, 0.7, n), rng.uniform(0.3, 2.5, n)], 1),
        "quats": np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
        "scales": np.full((n, 3), np.log(0.15)),
        "opacities": np.full(n, 5.0),
    }
    params = {
        k: torch.as_tensor(np.concatenate([keep[k], floaters[k].astype(keep[k].dtype)]))
        if k in floaters
        else torch.as_tensor(np.concatenate([keep[k], np.repeat(keep[k][:1], n, 0)]))
        for k in keep
    }
    eyes = [np.array([0.0, y, 1.4]) for y in (-0.2, 0.2)]
    c2w = [look_at(e, np.array([-3.0, 0.0, 1.2])) for e in eyes]  # two views at the gap
    c2w += [
        look_at(np.array([x, y, 1.4]), np.array([3.0, 0.5 * y, 1.2]))  # ten looking the other way
        for x in (-1.5, -0.5, 0.5)
        for y in (-1.0, 0.0, 1.0)
    ]
    c2w.append(look_at(np.array([0.0, 0.0, 1.4]), np.array([3.0, 0.0, 1.0])))
    c2w = np.stack(c2w)
    K = SyntheticRoom.intrinsics(32, 24, 70.0)
    lo, hi, cell = np.array([-4.0, -3.5, -0.1]), np.array([4.0, 3.5, 3.1]), 0.1
    shape = (80, 70)
    seen3 = trace_views(params, c2w, np.repeat(K[None], len(c2w), 0), 32, 24, 1.0, lo, cell, (*shape, 32))
    views, surface = seen3.views, seen3.surface
    xs = lo[0] + (np.arange(shape[0]) + 0.5) * cell
    ys = lo[1] + (np.arange(shape[1]) + 0.5) * cell
    behind = (xs[:, None] < -3.1) & (xs[:, None] > -3.45) & (np.abs(ys)[None, :] < 0.3)
    assert 1 <= views[behind].max() <= 2  # the failure: seen through the gap, by the two views only
    probes = np.stack(np.broadcast_arrays(xs[:, None], ys[None, :], 1.4), -1)[behind]
    room_probes = np.array([[x, y, 1.4] for x in (-1.0, 0.0, 1.0) for y in (-0.5, 0.5)])
    pts = np.concatenate([keep["means"], surface])
    one = OccupancyGrid.build(pts, None, lo, hi, cell, 0.0, seen_xy=views >= 1)
    three = OccupancyGrid.build(pts, None, lo, hi, cell, 0.0, seen_xy=views >= 3)
    assert one.is_free(probes).any()  # a body could walk out through the lost wall
    assert not three.is_free(probes).any()
    assert three.is_free(room_probes).all()


def test_clearing_frees_a_faint_floater_and_keeps_the_walls(scene_dir):
    """A sheet of faint Gaussians hanging in the room (opaque enough to count as obstacle points, too faint to
    stop a ray): the views saw through it to the walls, so clearing the voxels more views crossed than ended in
    frees it, and nothing is cleared deeper in a true solid than the voxel layer at its surface."""
    import torch

    from scenes.collision import OccupancyGrid
    from scenes.ply import read_splat_ply
    from scenes.scene import visible_points
    from scenes.seen_space import trace_views

    splats = read_splat_ply(scene_dir / "splats.ply")
    gy, gz = np.meshgrid(np.linspace(-0.2, 0.2, 5), np.linspace(0.9, 1.3, 5))
    n = gy.size
    sheet = {  # 0.4 x 0.4 m, 1.5 m in front of the cameras, each Gaussian 2 cm and 32 % opaque
        "means": np.stack([np.full(n, 1.0), gy.ravel(), gz.ravel()], 1),
        "quats": np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)),
        "scales": np.full((n, 3), np.log(0.02)),
        "opacities": np.full(n, np.log(0.32 / 0.68)),
    }
    params = {
        k: np.concatenate([v, sheet[k].astype(v.dtype) if k in sheet else np.repeat(v[:1], n, 0)])
        for k, v in splats.items()
    }
    eyes = [np.array([-0.5, y, z]) for y in (-0.3, 0.0, 0.3) for z in (1.2, 1.4)]
    c2w = np.stack([look_at(e, np.array([3.0, 0.0, 1.1])) for e in eyes])  # through the sheet to the wall
    K = SyntheticRoom.intrinsics(32, 24, 70.0)
    lo, hi, cell = np.array([-4.0, -3.5, -0.1]), np.array([4.0, 3.5, 3.1]), 0.1
    seen = trace_views(
        {k: torch.as_tensor(v) for k, v in params.items()},
        c2w,
        np.repeat(K[None], 6, 0),
        32,
        24,
        1.0,
        lo,
        cell,
        (80, 70, 32),
    )
    pts, w = visible_points(params)
    assert (w[-n:] > 0.3).all()  # the sheet's Gaussians are obstacle points
    through = (seen.crossed >= 3) & (seen.crossed > seen.ended)
    kept = OccupancyGrid.build(pts, w, lo, hi, cell, 0.0, seen_xy=seen.views >= 1)
    cleared = OccupancyGrid.build(pts, w, lo, hi, cell, 0.0, seen_xy=seen.views >= 1, see_through=through)
    probes = sheet["means"]
    assert kept.is_free(probes).mean() < 0.2  # the failure: a wall of nothing in the room
    assert cleared.is_free(probes).mean() > 0.9
    room = SyntheticRoom.default()
    idx = np.argwhere(kept.occupied & ~cleared.occupied)
    centres = lo + (idx + 0.5) * cell
    assert len(idx) > 0 and room.clearance(centres).min() > -cell  # nothing cleared past a true surface's first voxel
