"""The project's own example: a procedural, textured room rendered by exact ray casting, and the
capture filmed in it, so that SfM, splat training and collision geometry are tested against ground
truth (true camera poses, depth and free space) without third-party data.

The parts live in modules named for what they do; this module gathers their public names:

- `scenes.synthetic_room`: `SyntheticRoom` (geometry queries, cameras, rendering, its spec) and
  `EXAMPLE_DIR`;
- `scenes.room_geometry`: the solids (`Box`, `Cylinder`) and their textured faces;
- `scenes.textures`: the procedural textures (`bake_texture`, `MATERIALS`);
- `scenes.example_capture`: the capture's video, true poses and spec on disk
  (`write_example_capture`, `load_example_capture`).

The example capture is committed under `assets/example_room/` (small, and so that every
consumer sees the same bytes); `python -m scenes.synthetic OUT_DIR [NUM_FRAMES]` regenerates it.
"""

from __future__ import annotations

from scenes.example_capture import ExampleCapture, load_example_capture, main, write_example_capture
from scenes.room_geometry import Box, Cylinder
from scenes.synthetic_room import EXAMPLE_DIR, SPEC_FORMAT, SyntheticRoom
from scenes.textures import MATERIALS, bake_texture

__all__ = [
    "EXAMPLE_DIR",
    "MATERIALS",
    "SPEC_FORMAT",
    "Box",
    "Cylinder",
    "ExampleCapture",
    "SyntheticRoom",
    "bake_texture",
    "load_example_capture",
    "main",
    "write_example_capture",
]

if __name__ == "__main__":
    raise SystemExit(main())
