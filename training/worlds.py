"""The worlds a policy is judged in, built consistently for `validate` and the model-based loop: reality
(the true room of a synthetic capture, or a Gymnasium env, observed at the world model's resolution with the
dataset's action repeat), the twin (a SceneEnv over the reconstruction, its goal and starts carried over from
reality's room by the Sim(3) between them) and imagination (the world model's DreamCore)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from envs.options import parse_env_kwargs
from wmcore.errors import UserInputError

if TYPE_CHECKING:
    from training.validate import ValidateConfig


def make_real_env(
    name: str, max_steps: int, kwargs: dict[str, Any], source: dict[str, Any], resolution: tuple[int, int]
) -> Any:
    """The real env `name` (room:DIR or a Gymnasium id) observed at the model's `resolution`, stepped with
    the action repeat the dataset (`source`: its dataset.json "source") was recorded with."""
    from envs.action_repeat import ActionRepeat, make_rgb_env

    h, w = resolution
    repeat = int(source.get("action_repeat", 1))
    if name.startswith("room:"):
        from envs.reality import make_room_env

        env = make_room_env(name[5:], **{"max_steps": max_steps * repeat, **kwargs, "width": w, "height": h})
        return ActionRepeat(env, repeat) if repeat > 1 else env
    import gymnasium as gym

    import envs  # noqa: F401  (registers worldmodel/* and ALE ids)
    from envs.wrappers import RenderedObservation

    if name == source.get("env_id"):
        kwargs = {**(source.get("env_kwargs") or {}), **kwargs}
    try:
        env = make_rgb_env(name, max_steps, repeat, kwargs)
    except gym.error.Error as e:
        raise UserInputError(f"cannot make environment {name!r}: {e}") from e
    if source.get("frames") == "observation" and name == source.get("env_id"):
        return env  # the model was trained on the observations themselves (e.g. SceneNav)
    return RenderedObservation(env, resolution)


class Worlds:
    """The real env, the twin env and the imagination core of one validation, built consistently."""

    def __init__(self, cfg: ValidateConfig, dataset: Any):
        from envs.dream_env import DreamCore, gym_action_space

        self.core = DreamCore(
            cfg.model, dataset, cfg.episodes, cfg.max_steps, cfg.device, cfg.denoising_steps, cfg.snap_to_data
        )
        h, w = self.core.model.config.resolution
        source = dataset.index.get("source") or {}
        self.repeat = int(source.get("action_repeat", 1))
        kwargs = parse_env_kwargs(cfg.env_kwargs)
        self.floor_map = None
        self.reality = self.twin = None
        self.reality_name = cfg.reality or source.get("env_id")
        if self.reality_name:
            self.reality = make_real_env(self.reality_name, cfg.max_steps, kwargs, source, (h, w))
        if cfg.scene is not None:
            self.twin = self._twin_env(cfg, kwargs, (h, w))
        if self.reality is None and self.twin is None:
            raise UserInputError(f"{cfg.dataset}: the dataset does not name its source env; pass --reality or --scene")
        space = gym_action_space(self.core.space)
        for name, env in (("reality", self.reality), ("twin", self.twin)):
            if env is not None and env.action_space != space:
                raise UserInputError(
                    f"the {name} env's actions {env.action_space} differ from the model's {space}; "
                    "validate against the env the model was trained on"
                )

    def _twin_env(self, cfg: ValidateConfig, kwargs: dict, res: tuple[int, int]) -> Any:
        from envs.action_repeat import ActionRepeat
        from envs.reality import FloorMap, nearest_free
        from envs.scene_env import SceneEnv, load_scene

        if not Path(cfg.scene).exists():
            raise UserInputError(
                f"--scene {cfg.scene}: no such scene; pass a Scene directory from `worldmodel reconstruct`"
            )
        h, w = res
        twin_kwargs = {"max_steps": cfg.max_steps * self.repeat, **kwargs, "width": w, "height": h}
        scene = load_scene(str(cfg.scene), twin_kwargs.get("device", cfg.device))  # loaded once, for both envs
        real = getattr(self.reality, "unwrapped", None)
        if self.reality_name and self.reality_name.startswith("room:"):
            self.floor_map = FloorMap.for_scene(cfg.scene, self.reality_name[5:])
            if "goal" in kwargs:
                twin_kwargs.pop("goal")
                goal = self.floor_map.to_twin(kwargs["goal"])
                probe = SceneEnv(scene, **twin_kwargs)
                twin_kwargs["goal"] = [float(v) for v in nearest_free(probe, goal)]
        elif real is not None:
            raise UserInputError("--scene with a Gymnasium reality: a twin is a reconstruction of a room: reality")
        env = SceneEnv(scene, **twin_kwargs)
        if env.observation_space.shape != (h, w, 3):
            raise UserInputError(
                "--env-kwargs: the SceneEnv must observe RGB only (no depth/state) to match the world model"
            )
        return ActionRepeat(env, self.repeat) if self.repeat > 1 else env

    def twin_starts(self, reality_episodes: list[dict[str, Any]]) -> list[Any] | None:
        """Reality's start poses carried into the twin (snapped to its free floor), or None."""
        if self.floor_map is None or any(e["start"] is None for e in reality_episodes):
            return None
        return [self.floor_map.start_in_twin(self.twin, e["start"]) for e in reality_episodes]
