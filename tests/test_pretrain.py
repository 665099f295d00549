"""Procedural rooms and a world model pretrained on them, started from by train-world-model and the loop."""

import json

import numpy as np
import pytest

from scenes.procedural_rooms import FIRST_TEXTURE_SEED, random_room
from scenes.synthetic import SyntheticRoom
from wmcore.errors import UserInputError


def test_procedural_rooms_are_deterministic_varied_and_never_the_example():
    example = SyntheticRoom.default().to_spec()
    specs = [random_room(i).to_spec() for i in range(6)]
    assert random_room(3).to_spec() == specs[3]  # the same index, the same room
    sizes = {tuple(np.round(s["room"]["max"], 3)) for s in specs}
    assert len(sizes) == 6  # every room its own size
    for i, spec in enumerate(specs):
        assert spec["seed"] == FIRST_TEXTURE_SEED + i != example["seed"]
        assert spec["boxes"] != example["boxes"]
        room = random_room(i)
        # a body fits somewhere: free points at camera height away from the furniture
        lo, hi = np.asarray(room.room_min), np.asarray(room.room_max)
        xy = np.random.default_rng(0).uniform(lo[:2], hi[:2], (400, 2))
        pts = np.column_stack([xy, np.full(len(xy), 1.0)])
        assert room.is_free(pts, radius=0.2).mean() > 0.3


def test_pretrained_weights_start_train_world_model(tmp_path):
    from training.pretrain_world_model import PretrainWorldModelConfig, pretrain_world_model
    from training.train_world_model import TrainWorldModelConfig, train_world_model
    from wmcore.tensors import load_tensors
    from worldmodel.config import WorldModelConfig
    from worldmodel.dataset import TrajectoryDataset

    tiny = WorldModelConfig(block_out_channels=(8, 16, 16), reward_channels=(8, 16, 16), downsample=2)
    model = pretrain_world_model(
        PretrainWorldModelConfig(out=tmp_path / "pre", rooms=2, episodes_per_room=2, steps=3, batch_size=4, model=tiny)
    )
    summary = json.loads((tmp_path / "pre" / "summary.json").read_text())
    assert summary["rooms"] == 2 and summary["episodes"] == 4 and summary["frames"] > 4
    worlds = {e.meta["world"] for e in TrajectoryDataset(tmp_path / "pre" / "data").episodes}
    assert worlds == {"procedural room 0", "procedural room 1"}
    # Fine-tuning with a vanishing learning rate keeps the pretrained weights: it started from them.
    tuned = train_world_model(
        TrainWorldModelConfig(
            tmp_path / "pre" / "data",
            out=tmp_path / "tuned",
            init=model,
            steps=1,
            batch_size=2,
            lr=1e-12,
            warmup_steps=1,
            holdout_episodes=0,
            eval_every=0,
            model=WorldModelConfig(block_out_channels=(8, 8, 8)),  # not used: --init's architecture is
        )
    )
    a, b = load_tensors(model / "model.safetensors"), load_tensors(tuned / "model.safetensors")
    assert a.keys() == b.keys() and all(np.allclose(a[k].numpy(), b[k].numpy(), atol=1e-6) for k in a)
    assert json.loads((tuned / "config.json").read_text())["block_out_channels"] == [8, 16, 16]
    with pytest.raises(UserInputError, match="not a saved world model"):
        train_world_model(TrainWorldModelConfig(tmp_path / "pre" / "data", out=tmp_path / "x", init=tmp_path))
    with pytest.raises(UserInputError, match="--processes 3"):  # refused before any room is recorded
        pretrain_world_model(PretrainWorldModelConfig(out=tmp_path / "y", batch_size=16, processes=3))
    assert not (tmp_path / "y").exists()


def test_the_demo_starts_from_the_shipped_rooms_model():
    """The demo's loop starts from assets/world_model_rooms: it is there, loads, and fits the demo's frames."""
    from training.demo import WORLD_MODEL_ROOMS, DemoConfig, check_demo_config
    from worldmodel.model import WorldModel

    cfg = DemoConfig()
    assert str(cfg.loop.world_model_init) == WORLD_MODEL_ROOMS
    check_demo_config(cfg)  # finds the weights and accepts their frame size
    model = WorldModel.from_pretrained(WORLD_MODEL_ROOMS)
    assert tuple(model.config.resolution) == (cfg.resolution, cfg.resolution)
    assert model.config.action_space == {"kind": "discrete", "n": 3}
    cfg.resolution = 64
    with pytest.raises(UserInputError, match="--loop.world-model-init"):
        check_demo_config(cfg)
