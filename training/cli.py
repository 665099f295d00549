"""The `worldmodel` command-line program: one subcommand per job, configs parsed by tyro.

Each subcommand is a config dataclass (a docstring per field) and a function that runs it.
Modules holding configs import nothing heavy at import time, so `worldmodel --help` is quick.
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any, Union

import tyro

from wmcore.errors import UserInputError


def _join_docstring_lines() -> None:
    """Field docstrings as one paragraph per paragraph in --help. tyro joins a docstring's single line
    breaks before it dedents, so every indented continuation line kept its break and the help showed
    breaks mid-sentence; stripping the lines first lets it join them (lines that start with a non-letter,
    such as list items, still start a new line, as tyro intends)."""
    from tyro import _strings

    join = getattr(_strings, "remove_single_line_breaks", None)
    if join is None or getattr(join, "strips_lines", False):
        return

    def joined(text: str) -> str:
        return join("\n".join(line.strip() for line in text.split("\n")))

    joined.strips_lines = True  # type: ignore[attr-defined]
    _strings.remove_single_line_breaks = joined


_join_docstring_lines()

# name -> (module, config class, run function, one-line help)
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "reconstruct": (
        "scenes.reconstruct",
        "ReconstructConfig",
        "reconstruct",
        "Reconstruct a video, photo folder, transforms.json or COLMAP model into a Scene.",
    ),
    "rebuild-collision": (
        "scenes.reconstruct",
        "RebuildCollisionConfig",
        "rebuild_collision",
        "Rebuild a splat Scene's collision geometry with new settings, without re-optimising it.",
    ),
    "demo": (
        "training.demo",
        "DemoConfig",
        "demo",
        "The whole pipeline on the bundled example: reconstruct, learn, train a policy, validate, report.",
    ),
    "collect": (
        "training.collect",
        "CollectConfig",
        "collect",
        "Record episodes from a Gymnasium environment (or import Minari) into a trajectory dataset.",
    ),
    "train-world-model": (
        "training.train_world_model",
        "TrainWorldModelConfig",
        "train_world_model",
        "Train the diffusion world model on a trajectory dataset (HF accelerate, resumable).",
    ),
    "evaluate-world-model": (
        "training.evaluate_world_model",
        "EvaluateWorldModelConfig",
        "evaluate_world_model",
        "Evaluate a world model on held-out episodes: PSNR/SSIM by horizon, baselines, plot, video.",
    ),
    "train-policy": (
        "training.train_policy",
        "TrainPolicyConfig",
        "train_policy",
        "Train a policy in imagination (batched actor-critic or SB3 PPO) and save it.",
    ),
    "train-policy-scene": (
        "training.train_policy_scene",
        "TrainPolicySceneConfig",
        "train_policy_scene",
        "Train SB3 PPO in a Scene (the twin) through SceneVectorEnv, with checkpoints and a learning curve.",
    ),
    "behaviour-cloning": (
        "training.behaviour_cloning",
        "BehaviourCloningConfig",
        "behaviour_cloning",
        "Clone a pixel policy from the demonstrations in a trajectory dataset (corrected by DAgger in a twin).",
    ),
    "pretrain-world-model": (
        "training.pretrain_world_model",
        "PretrainWorldModelConfig",
        "pretrain_world_model",
        "Pretrain a world model on procedural rooms (never the example's), to start others from.",
    ),
    "validate": (
        "training.validate",
        "ValidateConfig",
        "validate",
        "Judge a family of policies in reality, the twin and imagination: returns, success, ranking, regret, trust.",
    ),
    "render": (
        "training.render",
        "RenderConfig",
        "render",
        "Render rollout videos (MP4 + GIF): SceneEnv, imagined, or imagined beside ground truth.",
    ),
    "view": (
        "training.view",
        "ViewConfig",
        "view",
        "Look at a Scene, a dataset or a run (collect, validate, demo) in the browser (viser).",
    ),
    "model-based": (
        "training.model_based",
        "ModelBasedConfig",
        "model_based",
        "Model-based RL loop: collect real steps, train the world model, train the policy in it, repeat.",
    ),
}


def _load(name: str) -> tuple[type, Any]:
    module, cfg_name, fn_name, _ = COMMANDS[name]
    mod = importlib.import_module(module)
    return getattr(mod, cfg_name), getattr(mod, fn_name)


def main(argv: list[str] | None = None) -> int:
    """Parse the subcommand and its config, run it; bad input exits 2 with one clear message."""
    args = sys.argv[1:] if argv is None else argv
    # Only the named subcommand's module is imported (others pull heavy dependencies).
    names = [args[0]] if args and args[0] in COMMANDS else list(COMMANDS)
    loaded = {name: _load(name) for name in names}
    variants = [Annotated[loaded[n][0], tyro.conf.subcommand(n, description=COMMANDS[n][3])] for n in names]
    try:
        cfg = tyro.cli(
            Union[tuple(variants) + (Annotated[None, tyro.conf.Suppress],)],  # type: ignore
            args=args,
            prog="worldmodel",
            description="worldmodel: reconstruct real places, learn world models, train and "
            "validate policies in imagination.",
        )
        if cfg is None:
            return 0
        run = next(fn for cls, fn in loaded.values() if isinstance(cfg, cls))
        run(cfg)
    except UserInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
