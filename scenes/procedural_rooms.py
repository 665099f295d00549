"""Procedural rooms: random sizes, furniture and textures, rendered by the same exact ray caster as the example.

A world model pretrained on many of them learns what a body's moves do to its view in a room (a turn shifts
the view, a step forward magnifies it, a wall stops it) before it sees the room it will be used in. None of
them is the bundled example's room: their layouts are drawn at random and their texture seeds start at
`FIRST_TEXTURE_SEED`, past the example's seed 0.
"""

from __future__ import annotations

import numpy as np

from scenes.room_geometry import Box, Cylinder
from scenes.synthetic_room import SyntheticRoom

FIRST_TEXTURE_SEED = 1000
"""Room i's textures use seed FIRST_TEXTURE_SEED + i (the example room uses seed 0)."""

_FURNITURE = ("wood", "crate", "painted")


def _overlaps(lo: np.ndarray, hi: np.ndarray, placed: list[tuple[np.ndarray, np.ndarray]], gap: float) -> bool:
    return any(np.all(lo < h + gap) and np.all(l - gap < hi) for l, h in placed)


def random_room(index: int) -> SyntheticRoom:
    """Room `index` (deterministic): 4.5-8 x 4-7 m, 2.6-3.2 m high, 3-7 boxes of furniture (some against a
    wall) and 0-2 cylinders, with at least 0.9 m between pieces so a body can pass."""
    rng = np.random.default_rng([index, 7])
    size = np.array([rng.uniform(4.5, 8.0), rng.uniform(4.0, 7.0)])
    height = rng.uniform(2.6, 3.2)
    lo_room, hi_room = -size / 2, size / 2
    placed: list[tuple[np.ndarray, np.ndarray]] = []
    boxes = []
    for _ in range(200):
        if len(boxes) >= rng.integers(3, 8):
            break
        foot = rng.uniform(0.35, 1.3, 2)
        centre = rng.uniform(lo_room + foot / 2, hi_room - foot / 2)
        if rng.random() < 0.5:  # against a wall, as furniture stands
            axis, side = rng.integers(2), rng.integers(2)
            centre[axis] = (hi_room if side else lo_room)[axis] + (-1 if side else 1) * foot[axis] / 2
        lo, hi = centre - foot / 2, centre + foot / 2
        if _overlaps(lo, hi, placed, 0.9):
            continue
        placed.append((lo, hi))
        top = rng.uniform(0.4, 2.0)
        boxes.append(Box((lo[0], lo[1], 0.0), (hi[0], hi[1], top), str(rng.choice(_FURNITURE))))
    cylinders = []
    for _ in range(50):
        if len(cylinders) >= rng.integers(0, 3):
            break
        r = rng.uniform(0.15, 0.35)
        c = rng.uniform(lo_room + r + 0.9, hi_room - r - 0.9)
        lo, hi = c - r, c + r
        if _overlaps(lo, hi, placed, 0.9):
            continue
        placed.append((lo, hi))
        tall = rng.random() < 0.5
        cylinders.append(
            Cylinder((c[0], c[1]), r, 0.0, height if tall else rng.uniform(0.6, 1.2), "pillar" if tall else "painted")
        )
    light = (rng.uniform(lo_room[0], hi_room[0]) * 0.5, rng.uniform(lo_room[1], hi_room[1]) * 0.5, height - 0.4)
    return SyntheticRoom(
        (lo_room[0], lo_room[1], 0.0),
        (hi_room[0], hi_room[1], height),
        boxes,
        cylinders,
        seed=FIRST_TEXTURE_SEED + index,
        light=light,
    )
