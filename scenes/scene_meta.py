"""`scene.json`: what a Scene directory holds and how to read it, in one place.

`worldmodel reconstruct` and `scenes.truth_scene` write it; `load_scene`, `rebuild-collision`,
the pose evaluation and the environments read it. The file is JSON; `SceneMeta` reads, validates
and writes it (atomically), so every reader refuses the same bad files with the same message:
a missing field, or a number that is NaN or infinite anywhere in the file, names the file and
the field. Keys this class does not know are kept (`extra`) and written back unchanged.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

from wmcore.atomic import json_text, write_text
from wmcore.errors import UserInputError, read_json_in

SCENE_FILE = "scene.json"
FORMAT = "worldmodel-scene"
VERSION = 1
REMEDY = "re-run `worldmodel reconstruct`"

# On-disk keys in the order they are written ("bounds" stands for bounds_min and bounds_max).
_KEYS = (
    "format",
    "version",
    "method",
    "splats",
    "nerfstudio_run",
    "sh_degree",
    "floor_z",
    "bounds",
    "num_gaussians",
    "collision",
    "occupancy",
    "transforms",
    "normalization",
    "metric_scale",
    "up",
    "intrinsics",
    "registered_images",
    "dropped_images",
)


@dataclass(frozen=True)
class SceneMeta:
    """The contents of a Scene directory's scene.json. Lengths are metres after `metric_scale`."""

    metric_scale: float
    """Metres per normalised unit (the splats and the nerfstudio model are stored normalised)."""
    floor_z: float
    """Floor height in metres, world z up."""
    bounds_min: tuple[float, float, float]
    """Lower corner of the scene's box, metres (on disk: bounds.min)."""
    bounds_max: tuple[float, float, float]
    """Upper corner of the scene's box, metres (on disk: bounds.max)."""
    method: str = "splats"
    """How the scene was made: "splats", "nerfacto" or "truth" (scenes.truth_scene)."""
    splats: str | None = None
    """The splat .ply, relative to the directory (splats.ply when absent)."""
    nerfstudio_run: str | None = None
    """The nerfstudio run directory of a NeRF scene, relative to the directory."""
    occupancy: str = "occupancy"
    """The collision geometry's folder, relative to the directory."""
    transforms: str | None = None
    """The posed images (nerfstudio transforms.json), relative to the directory."""
    sh_degree: int | None = None
    """Spherical-harmonic degree of the splat colours."""
    num_gaussians: int | None = None
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    normalization: dict[str, Any] | None = None
    """Input world → normalised frame (scenes.normalize.Normalization.to_dict)."""
    intrinsics: dict[str, Any] | None = None
    """The capture's first camera: K, width, height."""
    registered_images: int | None = None
    dropped_images: list[str] | None = None
    collision: dict[str, Any] | None = None
    """The settings the collision geometry was built with (`scenes.reconstruct.CollisionSettings`)."""
    format: str = FORMAT
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys of the file this class does not know, kept as they are."""

    # ------------------------------------------------------------------ paths
    def splat_path(self, scene_dir: str | os.PathLike) -> Path:
        return Path(scene_dir) / (self.splats or "splats.ply")

    def occupancy_path(self, scene_dir: str | os.PathLike) -> Path:
        return Path(scene_dir) / self.occupancy

    def transforms_path(self, scene_dir: str | os.PathLike) -> Path:
        return Path(scene_dir) / (self.transforms or "transforms.json")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """The JSON document (absent optional fields are left out; unknown keys come last)."""
        known = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        known["bounds"] = {"min": [float(v) for v in self.bounds_min], "max": [float(v) for v in self.bounds_max]}
        known["up"] = [float(v) for v in self.up]
        doc = {k: known[k] for k in _KEYS if known.get(k) is not None}
        return {**doc, **self.extra}

    @classmethod
    def from_dict(cls, doc: Any, source: str | os.PathLike = SCENE_FILE) -> SceneMeta:
        """Validate a parsed scene.json; `source` names the file in errors."""
        if not isinstance(doc, dict):
            _malformed(source, f"it holds a JSON {type(doc).__name__}, not an object")
        _check_finite(doc, source, "")
        if doc.get("format", FORMAT) != FORMAT:
            _malformed(source, f"field 'format' is {doc['format']!r}, not {FORMAT!r}")
        for key in ("metric_scale", "floor_z", "bounds"):
            if key not in doc:
                _malformed(source, f"field {key!r} is missing")
        bounds = doc["bounds"]
        if not isinstance(bounds, dict) or "min" not in bounds or "max" not in bounds:
            _malformed(source, 'field \'bounds\' must be {"min": [x, y, z], "max": [x, y, z]}')
        kwargs: dict[str, Any] = {
            "metric_scale": _number(doc, "metric_scale", source),
            "floor_z": _number(doc, "floor_z", source),
            "bounds_min": _vector(bounds["min"], "bounds.min", source),
            "bounds_max": _vector(bounds["max"], "bounds.max", source),
        }
        if kwargs["metric_scale"] <= 0:
            _malformed(source, f"field 'metric_scale' is {kwargs['metric_scale']}; it must be positive")
        if any(lo > hi for lo, hi in zip(kwargs["bounds_min"], kwargs["bounds_max"])):
            _malformed(source, "field 'bounds': min exceeds max")
        if "up" in doc:
            kwargs["up"] = _vector(doc["up"], "up", source)
        for key in ("method", "splats", "nerfstudio_run", "occupancy", "transforms", "format"):
            if key in doc:
                kwargs[key] = _typed(doc, key, str, source)
        for key in ("sh_degree", "num_gaussians", "registered_images", "version"):
            if key in doc:
                kwargs[key] = _typed(doc, key, int, source)
        for key in ("normalization", "intrinsics", "collision"):
            if key in doc:
                kwargs[key] = _typed(doc, key, dict, source)
        if "dropped_images" in doc:
            kwargs["dropped_images"] = _typed(doc, "dropped_images", list, source)
        kwargs["extra"] = {k: v for k, v in doc.items() if k not in _KEYS}
        return cls(**kwargs)

    @classmethod
    def read(cls, scene_dir: str | os.PathLike) -> SceneMeta:
        """The scene.json of a Scene directory."""
        scene_dir = Path(scene_dir)
        missing = (
            f"not a Scene directory ({SCENE_FILE} is missing); give the output of `worldmodel reconstruct` (run it "
            "on your capture first)"
        )
        doc = read_json_in(scene_dir, SCENE_FILE, missing, "malformed scene description: not JSON ({error}); " + REMEDY)
        return cls.from_dict(doc, scene_dir / SCENE_FILE)

    def write(self, scene_dir: str | os.PathLike) -> Path:
        """Write scene.json into `scene_dir` atomically, after the checks `read` makes."""
        path = Path(scene_dir) / SCENE_FILE
        text = json_text(self.to_dict())
        type(self).from_dict(json.loads(text), path)  # what cannot be read back is not written
        return write_text(path, text)


def is_scene_dir(path: str | os.PathLike) -> bool:
    """True when `path` is a folder holding a scene.json."""
    return (Path(path) / SCENE_FILE).is_file()


def _malformed(source: str | os.PathLike, problem: str) -> NoReturn:
    raise UserInputError(f"{source}: malformed scene description: {problem}; {REMEDY}")


def _check_finite(value: Any, source: str | os.PathLike, where: str) -> None:
    """Refuse NaN and infinities anywhere in the document, naming where."""
    if isinstance(value, float) and not math.isfinite(value):
        _malformed(source, f"field {where!r} is {value}; it must be a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, source, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, source, f"{where}[{i}]")


def _number(doc: dict[str, Any], key: str, source: str | os.PathLike) -> float:
    value = doc[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _malformed(source, f"field {key!r} is {value!r}; it must be a number")
    return float(value)


def _vector(value: Any, name: str, source: str | os.PathLike) -> tuple[float, float, float]:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        _malformed(source, f"field {name!r} is {value!r}; it must be three numbers")
    return (float(value[0]), float(value[1]), float(value[2]))


def _typed(doc: dict[str, Any], key: str, kind: type, source: str | os.PathLike) -> Any:
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        _malformed(source, f"field {key!r} is {value!r}; it must be a JSON {kind.__name__}")
    return value
