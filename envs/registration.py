"""Registers the environments with Gymnasium.

`gymnasium.make("worldmodel/SceneNav-v0", scene=DIR)`, `gymnasium.make("worldmodel/Dream-v0",
model=DIR, dataset=DIR)`, and their native vector forms with `gymnasium.make_vec(ID, num_envs=N,
vectorization_mode="vector_entry_point", ...)`: SceneVectorEnv (one render call for N bodies) for
worldmodel/SceneNav-v0 and worldmodel/SceneExplore-v0, DreamVectorEnv for worldmodel/Dream-v0.
"""

from __future__ import annotations

import gymnasium as gym


def register_envs() -> None:
    """Idempotent registration of every worldmodel environment, and of the ALE (Atari) ones when
    ale-py is installed, so commands that name an env id (collect, validate) find both."""
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        pass
    register_worldmodel_envs()


def register_worldmodel_envs() -> None:
    """Idempotent registration of the worldmodel ids only (what the installed start-up hook,
    `worldmodel_gym_hook`, runs whenever gymnasium is imported)."""
    if "worldmodel/SceneNav-v0" in gym.registry:
        return
    for name, task in (("SceneNav", "pointnav"), ("SceneExplore", "explore")):
        gym.register(
            f"worldmodel/{name}-v0",
            entry_point="envs.scene_env:make_scene_env",
            vector_entry_point="envs.scene_vector_env:make_scene_vector_env",
            kwargs={"task": task},
            disable_env_checker=True,
        )
    gym.register(
        "worldmodel/Dream-v0",
        entry_point="envs.dream_env:DreamEnv",
        vector_entry_point="envs.dream_env:DreamVectorEnv",
        disable_env_checker=True,
    )
