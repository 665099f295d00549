"""Gymnasium environments over reconstructed scenes (SceneEnv) and learned world models
(DreamEnv, DreamVectorEnv). Importing this package registers them with Gymnasium."""

from envs.registration import register_envs

register_envs()
