"""SceneEnvConfig: the body, its camera, its actions and the task, as one documented dataclass that
SceneEnv, SceneVectorEnv and the CLIs share; and what follows from it alone — the action and observation
spaces, the discrete action table, action and start-option checks, the camera intrinsics."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

# Discrete actions: (forward m, left m, up m, turn-left rad) in units of step_length / turn_angle.
_DISCRETE = {
    "forward": (1, 0, 0, 0),
    "turn_left": (0, 0, 0, 1),
    "turn_right": (0, 0, 0, -1),
    "backward": (-1, 0, 0, 0),
    "strafe_left": (0, 1, 0, 0),
    "strafe_right": (0, -1, 0, 0),
    "up": (0, 0, 1, 0),
    "down": (0, 0, -1, 0),
}


@dataclass
class SceneEnvConfig:
    """The body, its camera, its actions and the task (SceneEnv and SceneVectorEnv take the same).

    Reset options (both envs): `reset(seed=..., options={"start": (x, y, heading)})` places the body
    at (x, y) metres in the scene frame facing `heading` radians instead of sampling a start, for
    starts matched across worlds (SceneVectorEnv: an array [N, 3], or one (x, y, heading) for every
    body). The task still draws its episode (a sampled goal) from the seed; a start where the body
    does not fit raises ValueError naming it. Later autoresets sample starts again."""

    width: int = 64
    """Observation width in pixels."""
    height: int = 64
    """Observation height in pixels."""
    hfov_deg: float = 70.0
    """Horizontal field of view of the camera, degrees."""
    supersample: int = 1
    """Render at this many times the observation's width and height and average each block of pixels, as a
    camera integrates over its pixels: at small sizes a twin's splats are otherwise under-sampled (at 40x40
    the example's twin is 0.8 dB nearer the true room's views at 2; BENCHMARKS.md, *Three worlds*). Costs
    about supersample² the rasterization. `envs.reality.make_room_env` takes the same option as the true room's
    rays per pixel side (2 by default). Depth observations are averaged over the block too."""
    body: Literal["ground", "flying"] = "ground"
    """A ground robot on the floor plane, or a free-flying body (adds up/down)."""
    actions: Literal["discrete", "continuous"] = "discrete"
    """Discrete moves, or a Box of linear and angular velocity (and vertical velocity when flying)."""
    extended_actions: bool = False
    """Discrete: add backward and strafing to forward / turn left / turn right."""
    step_length: float = 0.25
    """Discrete: metres per move."""
    turn_angle_deg: float = 15.0
    """Discrete: degrees per turn."""
    control_dt: float = 0.5
    """Continuous: seconds per step (velocities are integrated over it)."""
    max_linear_speed: float = 0.5
    """Continuous: metres per second at action 1."""
    max_angular_speed_deg: float = 60.0
    """Continuous: degrees per second at action 1."""
    camera_height: float = 1.4
    """Camera height above the floor, metres (the start height when flying)."""
    body_radius: float = 0.2
    """Radius of the body for collisions, metres."""
    task: Literal["pointnav", "explore"] = "pointnav"
    """Point-goal navigation or exploration."""
    collision_penalty: float = 0.05
    """Reward subtracted on a step that bumped into something (both tasks): what a collision costs beside
    PointNav's step cost (0.01) and its arrival bonus (10)."""
    goal: tuple[float, float] | None = None
    """PointNav: one fixed goal (x, y metres, scene frame) for every episode, which an RGB-only policy
    can learn to find; None samples a new goal each episode (give the policy `state` to see it)."""
    max_steps: int = 200
    """Episodes are truncated after this many steps."""
    depth: bool = False
    """Add a depth image (metres) to the observation (a Dict space)."""
    state: bool = False
    """Add the agent state (x, y, z, cos/sin heading, task state) to the observation (a Dict space)."""
    render_size: int = 256
    """Height of the frame `render()` returns (first person beside the top-down map)."""
    device: str = "cpu"
    """Torch device the scene renders on (when the env loads it from a path)."""
    observation_device: Literal["numpy", "scene"] = "numpy"
    """numpy: observations are numpy arrays (uint8 RGB), what Gymnasium and SB3 expect. scene: torch
    tensors left on the device the scene renders on (uint8 RGB; float depth and state), so a GPU
    training loop reads the frames where gsplat drew them instead of copying them to the host and back."""

    def __post_init__(self) -> None:
        """Refuse values no episode can run with (a NaN goal, a zero size, a list where a number goes)."""
        from wmcore.errors import UserValueError

        def number(name: str, v: Any, positive: bool = False) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise UserValueError(f"SceneEnv option {name}={v!r}: give a finite number")
            if positive and v <= 0:
                raise UserValueError(f"SceneEnv option {name}={v!r}: give a number above 0")
            return float(v)

        for name in ("width", "height", "max_steps", "render_size", "supersample"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise UserValueError(f"SceneEnv option {name}={v!r}: give a whole number of 1 or more")
        for name in ("hfov_deg", "step_length", "control_dt", "body_radius"):
            number(name, getattr(self, name), positive=True)
        for name in ("turn_angle_deg", "max_linear_speed", "max_angular_speed_deg", "camera_height"):
            number(name, getattr(self, name))
        if number("collision_penalty", self.collision_penalty) < 0:
            raise UserValueError(
                f"SceneEnv option collision_penalty={self.collision_penalty!r}: give 0 or more (a reward taken away)"
            )
        if not self.hfov_deg < 180:
            raise UserValueError(f"SceneEnv option hfov_deg={self.hfov_deg}: give an angle below 180 degrees")
        if self.goal is not None:
            if isinstance(self.goal, (str, bytes)) or not hasattr(self.goal, "__len__") or len(self.goal) != 2:
                raise UserValueError(f"SceneEnv option goal={self.goal!r}: give (x, y) in metres")
            for v in self.goal:
                number("goal", v)
        for name, allowed in (
            ("body", ("ground", "flying")),
            ("actions", ("discrete", "continuous")),
            ("task", ("pointnav", "explore")),
            ("observation_device", ("numpy", "scene")),
        ):
            if getattr(self, name) not in allowed:
                raise UserValueError(f"SceneEnv option {name}={getattr(self, name)!r}: use one of {allowed}")


def resolve_config(config: SceneEnvConfig | None, overrides: dict[str, Any], who: str) -> SceneEnvConfig:
    """`config` (or the defaults) with keyword overrides; unknown names are a TypeError listing the valid ones."""
    cfg = config or SceneEnvConfig()
    names = {f.name for f in fields(SceneEnvConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"{who} got unknown options {unknown}; valid: {sorted(names)}")
    return SceneEnvConfig(**{**{f: getattr(cfg, f) for f in names}, **overrides})


def intrinsics(hfov_deg: float, w: int, h: int) -> np.ndarray:
    """Pinhole K [3,3] of a `w`×`h` image with horizontal field of view `hfov_deg`."""
    f = (w / 2) / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float32)


def build_spaces(cfg: SceneEnvConfig) -> tuple[list[str], spaces.Space, spaces.Space]:
    """Action names, the action space and the observation space of one body."""
    names = ["forward", "turn_left", "turn_right"]
    if cfg.extended_actions:
        names += ["backward", "strafe_left", "strafe_right"]
    if cfg.body == "flying":
        names += ["up", "down"]
    if cfg.actions == "discrete":
        action_space: spaces.Space = spaces.Discrete(len(names))
    else:
        dim = 3 if cfg.body == "flying" else 2  # linear, angular (, vertical)
        action_space = spaces.Box(-1.0, 1.0, (dim,), np.float32)
    rgb = spaces.Box(0, 255, (cfg.height, cfg.width, 3), np.uint8)
    if not (cfg.depth or cfg.state):
        return names, action_space, rgb
    parts: dict[str, spaces.Space] = {"rgb": rgb}
    if cfg.depth:
        parts["depth"] = spaces.Box(0.0, np.inf, (cfg.height, cfg.width, 1), np.float32)
    if cfg.state:
        k = 3 if cfg.task == "pointnav" else 1
        parts["state"] = spaces.Box(-np.inf, np.inf, (5 + k,), np.float32)
    return names, action_space, spaces.Dict(parts)


def action_table(cfg: SceneEnvConfig, names: list[str]) -> np.ndarray:
    """Discrete actions as rows (forward m, left m, up m, turn rad)."""
    scale = np.array([cfg.step_length, cfg.step_length, cfg.step_length, math.radians(cfg.turn_angle_deg)])
    return np.array([_DISCRETE[n] for n in names], np.float64) * scale


def check_actions(actions: Any, space: spaces.Space) -> None:
    """ValueError for actions outside `space` or holding NaN/inf (a float action in a Box is cast to its dtype)."""
    a = np.asarray(actions)
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"action {actions!r} contains NaN or inf")
    if not space.contains(a.astype(space.dtype) if a.dtype.kind == "f" and isinstance(space, spaces.Box) else actions):
        raise ValueError(f"action {actions!r} is outside the action space {space}")


def start_option(options: dict[str, Any] | None, n: int) -> np.ndarray | None:
    """options["start"] as an array [n, 3] of (x, y, heading): one triple serves every body."""
    if not options or options.get("start") is None:
        return None
    value = options["start"]
    try:
        s = np.array(value, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"options['start'] {value!r} is not numbers; give (x, y, heading), metres and radians") from e
    if s.shape == (3,):
        s = np.tile(s, (n, 1))
    if s.shape != (n, 3):
        raise ValueError(
            f"options['start'] {value!r} has shape {s.shape}; give (x, y, heading) or an array "
            f"[{n}, 3] of them (x, y metres, heading radians)"
        )
    return s
