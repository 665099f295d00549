"""Registers worldmodel's Gymnasium environments whenever `gymnasium` is imported.

Gymnasium 1.x dropped the `gymnasium.envs` entry-point plugins, so an installed package can no
longer have `gymnasium.make("worldmodel/SceneNav-v0", ...)` work without being imported first.
The installed `worldmodel-gym.pth` imports this module at interpreter start-up; it only adds an
import hook (no gymnasium, torch or numpy import), and after gymnasium's own module has run it
registers the worldmodel ids (metadata only: entry points are strings). Any failure is ignored,
so a broken install can never break Python's start-up.
"""

from __future__ import annotations

import sys


class _RegisterAfterGymnasium:
    """A meta-path finder (the protocol needs only find_spec; importlib.abc would cost start-up time)."""

    def find_spec(self, name, path, target=None):
        if name != "gymnasium":
            return None
        import importlib.util

        sys.meta_path.remove(self)  # once: find the real module, then wrap its loader
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _register()

        spec.loader.exec_module = exec_module
        return spec


def _register() -> None:
    try:
        from envs.registration import register_worldmodel_envs

        register_worldmodel_envs()
    except Exception:  # noqa: BLE001 - never break the user's import of gymnasium
        pass


if "gymnasium" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
