"""Small builders the tests share: toy-sized models, training settings and the bad-input checks.

Heavy packages are imported inside the functions, so importing this module costs nothing."""

from __future__ import annotations

from pathlib import Path


# ---------------------------------------------------------------------- toy models and settings
def tiny_world_model(**config):
    """An untrained world model small enough for CPU tests, built right after `torch.manual_seed(0)`:
    40x40 frames, three discrete actions, context 2, two UNet levels. `config` adds or replaces
    WorldModelConfig fields."""
    import torch

    from worldmodel.config import WorldModelConfig
    from worldmodel.model import WorldModel

    base = dict(
        resolution=(40, 40),
        action_space={"kind": "discrete", "n": 3},
        context=2,
        block_out_channels=(16, 32),
        action_embed_dim=8,
        reward_channels=(8,),
    )
    torch.manual_seed(0)
    return WorldModel(WorldModelConfig(**{**base, **config}))


def grown_from_saved(saved: Path, resolution: tuple[int, int], **flags):
    """The model a run with `--init saved` and the WorldModelConfig `flags` (e.g. still_head=True) builds and
    starts from, on a dataset of `resolution` and three discrete actions: (its config, the model with the saved
    weights loaded)."""
    from types import SimpleNamespace

    from training.world_model_checkpoints import load_initial_weights, starting_config
    from worldmodel.action_space import ActionSpace
    from worldmodel.config import WorldModelConfig
    from worldmodel.model import WorldModel

    space = ActionSpace.from_dict({"kind": "discrete", "n": 3})
    data = SimpleNamespace(resolution=resolution, action_space=space, path=saved.parent)
    cfg = starting_config(WorldModelConfig(**flags), data, saved, None)
    model = WorldModel(cfg)
    load_initial_weights(model, saved)
    return cfg, model


def tiny_model_based_loop() -> dict:
    """ModelBasedConfig fields for a two-iteration loop at toy sizes: two world-model steps a round
    with a two-level model, 16 imagined policy steps in 4 environments, a small policy network."""
    from worldmodel.config import WorldModelConfig

    return dict(
        iterations=2,
        world_model_first_steps=2,
        world_model_steps=2,
        world_model_batch_size=2,
        world_model=WorldModelConfig(
            block_out_channels=(8, 16), reward_channels=(8, 16), downsample=2, context=2, still_head=True
        ),
        policy_steps=16,
        num_envs=4,
        imagined_horizon=4,
        channels=(8, 16, 16),
        hidden=32,
    )


def short_splat_training(
    iterations: int, max_size: int, sh_degree: int, refine_every: int, eval_every: int | None = None, **strategy
):
    """A short splat training run that evaluates every `eval_every` steps (by default once, at the end)
    and refines the Gaussians every `refine_every` steps from step `refine_every` on; `strategy` gives
    the rest of DefaultStrategy (where refining stops, the cap on Gaussians)."""
    from scenes.strategy import DefaultStrategy
    from scenes.train_splats import SplatTrainConfig

    refine = DefaultStrategy(refine_start_iter=refine_every, refine_every=refine_every, **strategy)
    return SplatTrainConfig(
        iterations=iterations,
        max_size=max_size,
        eval_every=eval_every or iterations,
        sh_degree=sh_degree,
        strategy=refine,
    )


def small_cnn_ppo(env, n_steps: int, batch_size: int, features_dim: int, **policy_kwargs):
    """Stable-Baselines3 PPO with a CnnPolicy small enough to learn a few dozen steps on CPU (one epoch
    per update, seed 0)."""
    from stable_baselines3 import PPO

    features = {"features_extractor_kwargs": {"features_dim": features_dim}}
    return PPO(
        "CnnPolicy",
        env,
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=1,
        seed=0,
        policy_kwargs=policy_kwargs | features,
    )


# ---------------------------------------------------------------------- the bad-input corpus
def snapshot(path: Path) -> dict[str, tuple[int, bytes]] | None:
    """Every file under `path` with its size and content (None when `path` does not exist), and the
    names beside it (a temporary sibling left behind shows there)."""
    if not path.exists():
        return None
    if path.is_file():
        return {"": (path.stat().st_size, path.read_bytes())}
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.read_bytes() if p.is_file() else b"<dir>")
        for p in sorted(path.rglob("*"))
    }


def siblings(path: Path) -> list[str]:
    parent = path.parent
    return sorted(p.name for p in parent.iterdir()) if parent.is_dir() else []


def refused(capsys, args: list[str], out: Path, *culprits: str) -> str:
    """Run the CLI in-process; assert exit 2, one line naming every culprit, no traceback, and `out`
    (and its folder) unchanged. Returns the message."""
    from training.cli import main

    before, beside = snapshot(out), siblings(out)
    code = main(args)  # a traceback would propagate out of here and fail the test
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for c in culprits:
        assert c in lines[0], f"{c!r} not named in: {lines[0]}"
    assert snapshot(out) == before, f"{out} changed"
    assert siblings(out) == beside, f"something was left beside {out}: {siblings(out)}"
    return lines[0]


def write_user_files(folder: Path) -> None:
    """A folder a user keeps things in."""
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    (folder / "sub").mkdir()
    (folder / "sub" / "photo.jpg").write_bytes(b"\xff\xd8 not really")
