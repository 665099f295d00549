"""What `worldmodel view` shows, apart from the server: PATH resolved to a scene, datasets and a model; the
splats, capture cameras and body cameras in viser's terms; episodes with their poses carried into the twin's
frame; an episode imagined by the world model under its own actions."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wmcore.errors import UserInputError

if TYPE_CHECKING:
    from training.view import ViewConfig

SH_C0 = 0.28209479177387814
REPO = Path(__file__).resolve().parents[1]
SCENE_ACTIONS = ["forward", "turn_left", "turn_right", "backward", "strafe_left", "strafe_right", "up", "down"]


@dataclass
class ViewSources:
    """What a PATH resolves to."""

    kind: str
    """scene, dataset, run or demo."""
    scene: Path | None = None
    datasets: dict[str, Path] = field(default_factory=dict)
    model: Path | None = None
    snap_to: Path | None = None
    """The dataset whose nearest frames stand in for the imagined ones (what the run judged with), or None."""


def _scene_path(value: Any) -> Path | None:
    """A Scene directory or .ply named by a config or a dataset's env kwargs (None for room:DIR, reality)."""
    if not value or str(value).startswith("room:"):
        return None
    p = Path(str(value))
    return p if p.exists() else None


def find_sources(cfg: ViewConfig) -> ViewSources:
    """Resolve PATH (and the --scene/--dataset/--model overrides) to what is drawn."""
    from scenes.scene_meta import is_scene_dir

    path = Path(cfg.path)
    if not path.exists():
        raise UserInputError(f"{path}: not found; give a Scene directory, a .ply, a dataset or a run directory")
    if path.is_file():
        if path.suffix.lower() != ".ply":
            raise UserInputError(f"{path}: not a .ply; give a Scene directory, a 3DGS .ply, a dataset or a run")
        src = ViewSources("scene", scene=path)
    elif is_scene_dir(path):
        src = ViewSources("scene", scene=path)
    elif (path / "dataset.json").is_file():
        src = ViewSources("dataset", datasets={path.name: path})
        env_kwargs = json.loads((path / "dataset.json").read_text()).get("source", {}).get("env_kwargs", {})
        src.scene = _scene_path(env_kwargs.get("scene"))
    elif is_scene_dir(path / "scene") and (path / "data" / "dataset.json").is_file():
        src = ViewSources("demo", scene=path / "scene")
        for name, sub in (("twin episodes", "data"), ("reality, held out", "heldout"), ("loop", "loop/data")):
            if (path / sub / "dataset.json").is_file():
                src.datasets[name] = path / sub
        if (path / "loop" / "world_model" / "model").is_dir():
            src.model = path / "loop" / "world_model" / "model"
        conf = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
        if conf.get("loop", {}).get("snap_to_data") and "loop" in src.datasets:
            src.snap_to = src.datasets["loop"]
    elif (path / "config.json").is_file():
        conf = json.loads((path / "config.json").read_text())
        src = ViewSources("run", scene=_scene_path(conf.get("scene")))
        if conf.get("dataset") and (Path(conf["dataset"]) / "dataset.json").is_file():
            src.datasets[Path(conf["dataset"]).name] = Path(conf["dataset"])
        if conf.get("model") and Path(conf["model"]).is_dir():
            src.model = Path(conf["model"])
        if conf.get("snap_to_data") and src.datasets:
            src.snap_to = next(iter(src.datasets.values()))
        if src.scene is None and src.datasets:
            first = next(iter(src.datasets.values()))
            env_kwargs = json.loads((first / "dataset.json").read_text()).get("source", {}).get("env_kwargs", {})
            src.scene = _scene_path(env_kwargs.get("scene"))
        if src.scene is None and not src.datasets:
            raise UserInputError(f"{path}/config.json names no scene, dataset or model that exists; nothing to show")
    else:
        raise UserInputError(
            f"{path}: not a Scene directory (scene.json), a dataset (dataset.json), a demo run or a run with a "
            "config.json; give one of those or a 3DGS .ply"
        )
    if cfg.scene is not None:
        src.scene = Path(cfg.scene)
    if cfg.dataset is not None:
        src.datasets = {Path(cfg.dataset).name: Path(cfg.dataset)}
    if cfg.model is not None:
        src.model = Path(cfg.model)
    if cfg.snap_to is not None:
        src.snap_to = Path(cfg.snap_to)
    if cfg.plain:
        src.snap_to = None
    if src.snap_to is not None and not (src.snap_to / "dataset.json").is_file():
        raise UserInputError(f"--snap-to {src.snap_to}: no dataset.json there; give the model's training data")
    return src


# ---------------------------------------------------------------------------------------------- geometry
def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Unit wxyz quaternions [N,4] -> rotation matrices [N,3,3]."""
    w, x, y, z = (q[:, i] for i in range(4))
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_wxyz(R: np.ndarray) -> np.ndarray:
    """One rotation matrix -> a unit wxyz quaternion."""
    import viser.transforms as vtf

    return np.asarray(vtf.SO3.from_matrix(np.asarray(R, np.float64)).wxyz)


def splats_for_viewer(g: dict[str, np.ndarray], max_splats: int, max_size: float = 0.0) -> dict[str, np.ndarray]:
    """Centres, covariances, degree-0 RGB and opacities of the `max_splats` most opaque Gaussians no larger
    than `max_size` metres (standard deviation; 0: any size)."""
    order = np.argsort(-g["opacities"], kind="stable")
    if max_size > 0:
        order = order[g["scales"][order].max(1) <= max_size]
    keep = order[:max_splats]
    R = quat_to_matrix(g["quats"][keep].astype(np.float64))
    s2 = g["scales"][keep].astype(np.float64) ** 2
    cov = np.einsum("nij,nj,nkj->nik", R, s2, R)
    rgb = np.clip(0.5 + SH_C0 * g["sh"][keep, 0, :], 0.0, 1.0)
    return {
        "centers": g["means"][keep].astype(np.float32),
        "covariances": cov.astype(np.float32),
        "rgbs": rgb.astype(np.float32),
        "opacities": g["opacities"][keep].reshape(-1, 1).astype(np.float32),
    }


def capture_cameras(scene_dir: Path, metric_scale: float) -> list[dict[str, Any]]:
    """The capture's registered cameras from a Scene directory's transforms.json, in metres (OpenCV c2w)."""
    from scenes.nerfstudio_io import GL_FROM_CV

    path = scene_dir / "transforms.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    out = []
    for fr in doc.get("frames", []):
        c2w = np.asarray(fr["transform_matrix"], np.float64).reshape(-1, 4)
        m = np.eye(4)
        m[: c2w.shape[0]] = c2w
        m = m @ GL_FROM_CV
        m[:3, 3] *= metric_scale
        w = float(fr.get("w", doc.get("w", 640)))
        h = float(fr.get("h", doc.get("h", 480)))
        fy = float(fr.get("fl_y", doc.get("fl_y", fr.get("fl_x", doc.get("fl_x", w)))))
        out.append({"c2w": m, "fov": 2 * math.atan(0.5 * h / fy), "aspect": w / h})
    return out


def body_camera(x: float, y: float, heading: float, eye_z: float) -> np.ndarray:
    """OpenCV camera-to-world of a level camera at (x, y, eye_z) facing `heading`."""
    c, s = math.cos(heading), math.sin(heading)
    m = np.eye(4)
    m[:3, 0] = (s, -c, 0.0)  # x right
    m[:3, 1] = (0.0, 0.0, -1.0)  # y down
    m[:3, 2] = (c, s, 0.0)  # z forward
    m[:3, 3] = (x, y, eye_z)
    return m


def png_data_url(img: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(np.asarray(img, np.uint8)[..., ::-1]))
    assert ok
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode()


# ---------------------------------------------------------------------------------------------- episodes
class Episodes:
    """One dataset's episodes for the viewer: poses in the drawn scene's frame, goals, action names."""

    def __init__(self, path: Path, scene_dir: Path | None):
        from worldmodel.dataset import TrajectoryDataset

        self.path = path
        self.data = TrajectoryDataset(path)
        self.source = self.data.index.get("source", {})
        env_id = str(self.source.get("env_id", ""))
        kwargs = self.source.get("env_kwargs", {}) or {}
        n = self.data.action_space.n if self.data.action_space.is_discrete else None
        self.action_names = SCENE_ACTIONS[:n] if n and ("Scene" in env_id or env_id.startswith("room:")) else None
        self.eye = float(kwargs.get("camera_height", 1.4))
        self.note = ""
        self._maps: dict[str, Any] = {}
        self.poses: list[np.ndarray | None] = []
        self.goals: list[np.ndarray | None] = []
        for ep in self.data.episodes:
            # an episode's own env (a model-based dataset mixes the twin's episodes and reality's)
            ep_env = str((ep.meta or {}).get("env_id") or env_id)
            poses, goal = ep.poses, ep.goal
            if goal is None and ep_env == env_id:
                goal = kwargs.get("goal")  # the dataset's fixed goal, in its env's frame
            other = (ep.meta or {}).get("scene")
            if other and kwargs.get("scene") and str(other) != str(kwargs["scene"]):
                # recorded in another reconstruction than the dataset's own, in that one's frame
                poses, goal = None, None
                self.note = "episodes recorded in another reconstruction are not drawn (their frame is its own)"
            if ep_env.startswith("room:") and scene_dir is not None:
                to_twin = self._room_to_twin(ep_env[5:], Path(scene_dir))
                if to_twin is None:
                    poses, goal = None, None
                else:
                    poses = None if poses is None else np.stack([to_twin.pose_to_twin(p) for p in poses])
                    goal = None if goal is None else to_twin.to_twin(goal)
            self.poses.append(None if poses is None else np.asarray(poses, np.float64))
            self.goals.append(None if goal is None else np.asarray(goal, np.float64)[:2])
        if not self.note and all(p is None for p in self.poses):
            self.note = "no poses recorded with these episodes (recorded before poses were stored): timeline only"

    def _room_to_twin(self, room_dir: str, scene_dir: Path) -> Any:
        """The floor map from the true room's frame into the drawn twin's (None, with a note, when there is none)."""
        if room_dir not in self._maps:
            room = Path(room_dir) if Path(room_dir).exists() else REPO / room_dir
            try:
                from envs.reality import FloorMap

                self._maps[room_dir] = FloorMap.for_scene(scene_dir, room)
            except (UserInputError, OSError, ValueError) as e:
                self._maps[room_dir] = None
                self.note = f"reality's paths are not drawn: {e}"
        return self._maps[room_dir]

    def __len__(self) -> int:
        return len(self.data.episodes)

    def action_text(self, a: Any) -> str:
        a = np.asarray(a)
        if a.ndim == 0 and self.action_names is not None:
            return self.action_names[int(a)]
        return np.array2string(a, precision=2, separator=",") if a.ndim else str(int(a))


def imagine_episode(core: Any, ep: Any, seed: int) -> dict[str, np.ndarray]:
    """The episode's actions replayed in the world model from its first L frames (`training.render`'s
    compare): frames [N+1,H,W,3] (the context frames are the true ones) and rewards [N] (true over the
    context, imagined after)."""
    L = core.L
    frames = [np.asarray(f) for f in ep.frames[:L]]
    rewards = [float(r) for r in ep.rewards[: L - 1]]
    core.seed(seed)
    core.set_context(0, ep.frames[:L], ep.actions[: L - 1])
    for t in range(L - 1, ep.steps):
        nxt, r, _, _ = core.step(np.asarray(ep.actions[t])[None])
        frames.append(nxt[0])
        rewards.append(float(r[0]))
    return {"frames": np.stack(frames), "rewards": np.asarray(rewards, np.float64)}
