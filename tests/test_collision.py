"""Collision geometry built from points on the synthetic room's surfaces agrees with the room's
exact geometry: free space, body-radius queries, ray distances; it survives a save/load round
trip, and bad files fail with a clear message."""

from __future__ import annotations

import json

import numpy as np
import pytest

from scenes.collision import META_FILE, TENSOR_FILE, OccupancyGrid
from scenes.synthetic import SyntheticRoom
from wmcore.errors import UserInputError

VOXEL = 0.05


@pytest.fixture(scope="module")
def room() -> SyntheticRoom:
    return SyntheticRoom.default(seed=0)


@pytest.fixture(scope="module")
def floaters(room) -> np.ndarray:
    rng = np.random.default_rng(7)
    p = rng.uniform(room.room_min, room.room_max, (3000, 3))
    return p[room.clearance(p) > 0.3][:300]


@pytest.fixture(scope="module")
def grid(room, floaters) -> OccupancyGrid:
    # Surface samples (as splat means or SfM points would be) plus isolated floaters; the bounds
    # reach two voxels past the walls, as a reconstruction's would.
    pts = np.concatenate([room.sample_surface(100_000, seed=1), floaters])
    return OccupancyGrid.build(pts, None, room.room_min - 2 * VOXEL, room.room_max + 2 * VOXEL, VOXEL, room.floor_z)


@pytest.fixture(scope="module")
def queries(room) -> np.ndarray:
    return np.random.default_rng(0).uniform(room.room_min, room.room_max, (20_000, 3))


@pytest.mark.parametrize("radius", [0.0, 0.25])
def test_free_space_agrees_with_the_true_room(room, grid, queries, radius):
    truth, free = room.is_free(queries, radius), grid.is_free(queries, radius)
    c = room.clearance(queries)
    away = np.abs(c - radius) > 2 * VOXEL
    assert (truth == free)[away].mean() >= 0.98
    # Never free where the body would be a voxel deep into a solid (object interiors included).
    assert not (free & (c < radius - VOXEL)).any()
    assert (free & (c < -VOXEL)).sum() == 0


def test_floaters_do_not_become_obstacles(grid, floaters):
    assert grid.is_free(floaters).mean() >= 0.95


def test_outside_the_grid_and_below_the_floor_are_solid(room, grid):
    lo, hi = grid.bounds
    outside = np.array([lo - 0.01, hi + 0.01, [0.0, 0.0, -0.02], [-1.0, 0.0, -0.3]])
    assert not grid.is_free(outside).any()
    assert grid.is_free(np.array([[-1.0, 0.0, 0.2]]))[0]  # just above the floor
    assert grid.floor_z == room.floor_z


def test_clearance_tracks_the_true_distance(room, grid, queries):
    c = room.clearance(queries)
    sel = c > 3 * VOXEL
    err = grid.clearance(queries[sel]) - c[sel]
    # Obstacles are inflated by about one voxel (points mark whole voxels) plus the dilation.
    assert np.median(err) == pytest.approx(-1.5 * VOXEL, abs=VOXEL)
    assert np.percentile(np.abs(err), 95) < 4 * VOXEL


def test_raycast_matches_analytic_distances(room, grid, queries):
    o = queries[room.clearance(queries) > 0.3][:1500]
    d = np.random.default_rng(1).normal(size=o.shape)
    err = grid.raycast(o, d, 8.0) - room.raycast(o, d, 8.0)
    assert (err > VOXEL).mean() < 0.005  # it (almost) never sees through an obstacle
    assert -3 * VOXEL < np.median(err) <= 0
    assert (err > -4 * VOXEL).mean() > 0.85  # the rest graze an inflated surface


def test_raycast_visits_every_voxel(grid, queries, room):
    """Against a dense march (steps of a twentieth of a voxel) through the same grid."""
    o = queries[room.clearance(queries) > 0.3][:150]
    d = np.random.default_rng(2).normal(size=o.shape)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    fast = grid.raycast(o, d, 6.0)
    ts = np.arange(0, 6.0, VOXEL / 20)
    dense = np.array([ts[np.argmax(~grid.is_free(oi + ts[:, None] * di))] for oi, di in zip(o, d)])
    assert np.abs(fast - dense).max() < VOXEL / 10


def test_raycast_edge_cases(grid):
    o = np.array([[-1.0, 0.0, 1.5], [-1.0, 0.0, 1.5], [2.35, -2.0, 0.3]])  # the last inside a crate
    d = np.array([[-1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    dist = grid.raycast(o, d, np.array(8.0))
    assert 2.0 - 3 * VOXEL < dist[0] <= 2.0 and dist[2] == 0.0
    assert grid.raycast(o[:1], d[:1], 1.0)[0] == 1.0
    with pytest.raises(UserInputError):
        grid.raycast(o[:1], np.zeros((1, 3)), 1.0)


def test_weights_set_the_support_needed():
    pts = np.random.default_rng(3).normal([0.5, 0.5, 0.5], 0.02, (40, 3))
    lo, hi = np.zeros(3), np.ones(3)
    dense = OccupancyGrid.build(pts, np.full(40, 0.5), lo, hi, 0.1, floor_z=-1.0, dilate=0)
    faint = OccupancyGrid.build(pts, np.full(40, 0.02), lo, hi, 0.1, floor_z=-1.0, dilate=0)
    centre = np.array([[0.5, 0.5, 0.5]])
    assert not dense.is_free(centre)[0] and faint.is_free(centre)[0]


def test_small_scenes_keep_their_free_space():
    """A 1 m box seen from inside: its interior is the largest free region, so it is not filled
    as a cavity, while a small closed crate inside it is."""
    rng = np.random.default_rng(4)
    shell = SyntheticRoom((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), [], []).sample_surface(20_000, seed=5)
    crate = SyntheticRoom((0.6, 0.6, 0.0), (0.9, 0.9, 0.3), [], []).sample_surface(5_000, seed=6)
    pts = np.concatenate([shell, crate])
    g = OccupancyGrid.build(pts, None, [-0.1] * 3, [1.1] * 3, 0.025, floor_z=0.0)
    assert g.is_free(np.array([[0.3, 0.3, 0.5]]))[0]
    assert not g.is_free(np.array([[0.75, 0.75, 0.15]]))[0]
    assert g.is_free(rng.uniform(0.2, 0.4, (50, 3))).all()


def test_the_floor_band_is_floor_not_obstacles():
    """Noise a few centimetres over a reconstructed floor (its Gaussians, grazing depth) does not
    block a ground body; an obstacle rising above the band still does, all the way down."""
    rng = np.random.default_rng(7)
    floor_noise = np.c_[rng.uniform(0, 2, (4000, 2)), rng.uniform(0.0, 0.25, 4000)]
    post = np.c_[rng.normal(1.5, 0.02, (400, 2)), rng.uniform(0.0, 1.0, 400)]
    g = OccupancyGrid.build(
        np.concatenate([floor_noise, post]), None, [0, 0, -0.2], [2, 2, 2], 0.05, floor_z=0.0, floor_band=0.3
    )
    assert g.is_free(np.array([[0.5, 0.5, 0.15], [1.0, 0.4, 0.1]])).all()
    assert not g.is_free(np.array([[1.5, 1.5, 0.6]]))[0] and not g.is_free(np.array([[0.5, 0.5, -0.1]]))[0]
    strict = OccupancyGrid.build(floor_noise, None, [0, 0, -0.2], [2, 2, 2], 0.05, floor_z=0.0)
    assert not strict.is_free(np.array([[0.5, 0.5, 0.15]]))[0]


def test_save_load_round_trip(grid, queries, tmp_path):
    grid.save(tmp_path / "occupancy")
    assert sorted(p.name for p in (tmp_path / "occupancy").iterdir()) == sorted([TENSOR_FILE, META_FILE])
    back = OccupancyGrid.load(tmp_path / "occupancy")
    assert np.array_equal(back.occupied, grid.occupied)
    assert np.allclose(back.origin, grid.origin) and back.voxel_size == grid.voxel_size
    assert back.floor_z == grid.floor_z
    assert np.array_equal(back.is_free(queries, 0.2), grid.is_free(queries, 0.2))
    grid.save(tmp_path / "occupancy")  # overwriting an existing directory works


def test_corrupt_or_missing_files_raise_clear_errors(grid, tmp_path):
    d = tmp_path / "occ"
    grid.save(d)
    data = (d / TENSOR_FILE).read_bytes()
    (d / TENSOR_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match=TENSOR_FILE):
        OccupancyGrid.load(d)
    grid.save(d)
    meta = json.loads((d / META_FILE).read_text())
    meta["shape"] = [3, 3, 3]
    (d / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(UserInputError, match="does not hold"):
        OccupancyGrid.load(d)
    (d / META_FILE).write_text("{")
    with pytest.raises(UserInputError, match=META_FILE):
        OccupancyGrid.load(d)
    with pytest.raises(UserInputError, match="not found"):
        OccupancyGrid.load(tmp_path / "nowhere")


def test_top_down_map(grid):
    nx, ny, _ = grid.occupied.shape

    def cell(m: np.ndarray, x: float, y: float) -> bool:
        ix, iy = ((np.array([x, y]) - grid.origin[:2]) / grid.voxel_size).astype(int)
        return bool(m[iy, ix])

    low, high = grid.top_down(0.3, 0.6), grid.top_down(0.3, 1.0)
    assert low.shape == (ny, nx)
    for m in (low, high):
        assert cell(m, 0.2, 0.1) and cell(m, 2.35, -2.0)  # the pillar, a crate
        assert not cell(m, -1.0, 0.0) and not cell(m, 1.0, 1.0)
    # Between the table's legs, below its top (0.72 m), is free; a band that reaches the top is not.
    assert not cell(low, -2.1, 1.7) and cell(high, -2.1, 1.7)
    with pytest.raises(UserInputError, match="widen"):
        grid.top_down(10.0, 11.0)


def test_build_rejects_bad_input(room):
    pts = room.sample_surface(100, seed=0)
    with pytest.raises(UserInputError, match="voxel_size"):
        OccupancyGrid.build(pts, None, room.room_min, room.room_max, 0.0, 0.0)
    with pytest.raises(UserInputError, match="weights"):
        OccupancyGrid.build(pts, np.ones(3), room.room_min, room.room_max, 0.1, 0.0)
    with pytest.raises(UserInputError, match="bounds"):
        OccupancyGrid.build(pts, None, room.room_max, room.room_min, 0.1, 0.0)
    with pytest.raises(UserInputError, match="larger voxel"):
        OccupancyGrid.build(pts, None, room.room_min, room.room_max, 1e-4, 0.0)
