"""WorldModel: sampling API, determinism, action spaces, text conditioning, save/load and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from wmcore.errors import UserInputError
from worldmodel.config import WorldModelConfig
from worldmodel.model import WorldModel

TINY = dict(resolution=(16, 16), context=2, block_out_channels=(16, 32), action_embed_dim=8, reward_channels=(8,))


def tiny(space=None, **kw) -> WorldModel:
    """A tiny model whose zero-initialised output layer is given random weights, as training would."""
    torch.manual_seed(0)
    cfg = WorldModelConfig(action_space=space or {"kind": "discrete", "n": 3}, **{**TINY, **kw})
    m = WorldModel(cfg).eval()
    torch.nn.init.normal_(m.unet.conv_out.weight, std=0.05)
    return m


def inputs(b: int = 3, continuous: bool = False):
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (b, 2, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.rand(b, 2, 2, generator=g) * 2 - 1 if continuous else torch.randint(0, 3, (b, 2), generator=g)
    return frames, actions


def test_sample_next_is_batched_uint8_and_deterministic():
    m = tiny()
    frames, actions = inputs()
    a = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(7))
    b = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(7))
    c = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(8))
    assert a.shape == (3, 16, 16, 3) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    h = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(7), num_steps=2, method="heun")
    assert h.shape == a.shape
    nxt, reward, term = m.step(frames, actions, generator=torch.Generator().manual_seed(7))
    assert torch.equal(nxt, a) and reward.shape == (3,) and reward.dtype == torch.float32
    assert term.dtype == torch.bool and term.shape == (3,)


def test_actions_change_the_prediction_and_bad_actions_are_clear_errors():
    m = tiny()
    # make the action embedding matter: an untrained net still routes actions through the adaptive norms
    frames, actions = inputs()
    a = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(0))
    b = m.sample_next(frames, (actions + 1) % 3, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(a, b)
    with pytest.raises(UserInputError, match=r"0\.\.2"):
        m.sample_next(frames, actions + 3)
    with pytest.raises(UserInputError, match="leading shape"):
        m.sample_next(frames, actions[:, :1])
    with pytest.raises(UserInputError, match=r"\[B,2,16,16,3\]"):
        m.sample_next(frames[:, :, :8], actions)
    with pytest.raises(UserInputError, match="uint8"):
        m.sample_next(frames.float(), actions)


def test_continuous_actions():
    m = tiny(space={"kind": "box", "low": [-1, -1], "high": [1, 1]})
    frames, actions = inputs(continuous=True)
    out = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 16, 16, 3)
    with pytest.raises(UserInputError, match="Box"):
        m.sample_next(frames, actions[..., :1])
    loss, _, _ = m(torch.cat([frames, frames[:, -1:]], 1), actions, torch.zeros(3), torch.zeros(3, dtype=torch.bool))
    loss.backward()
    assert m.action_encoder.embed[0].weight.grad.abs().sum() > 0


def test_save_and_load_round_trip(tmp_path):
    m = tiny()
    frames, actions = inputs()
    m.save_pretrained(tmp_path / "m")
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["context"] == 2 and cfg["action_space"] == {"kind": "discrete", "n": 3}
    m2 = WorldModel.from_pretrained(tmp_path / "m")
    assert m2.config.resolution == (16, 16) and m2.config.context == 2
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(m.sample_next(frames, actions, generator=g()), m2.sample_next(frames, actions, generator=g()))


def test_bad_checkpoints_give_clear_errors_and_failed_saves_keep_the_old_one(tmp_path):
    tiny().save_pretrained(tmp_path / "m")
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    # a save that fails half-way leaves the previous model untouched
    with pytest.raises(AttributeError):  # a value that is not a tensor fails inside the atomic write
        tiny().save_pretrained(tmp_path / "m", state_dict={"bad": "not a tensor"})
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert WorldModel.from_pretrained(tmp_path / "m").config.context == 2
    # weights from another config
    other = tiny(block_out_channels=(8, 16), norm_num_groups=8)
    other.save_pretrained(tmp_path / "other")
    (tmp_path / "other" / "config.json").write_text((tmp_path / "m" / "config.json").read_text())
    with pytest.raises(UserInputError, match="another config"):
        WorldModel.from_pretrained(tmp_path / "other")
    # truncated weights
    w = tmp_path / "m" / "model.safetensors"
    w.write_bytes(before[: len(before) // 2])
    with pytest.raises(UserInputError, match="truncated"):
        WorldModel.from_pretrained(tmp_path / "m")
    with pytest.raises(UserInputError, match="config.json missing"):
        WorldModel.from_pretrained(tmp_path / "nothing")


def test_config_validation():
    with pytest.raises(UserInputError, match="divisible"):
        WorldModelConfig(resolution=(18, 18), block_out_channels=(16, 32, 32))
    with pytest.raises(UserInputError, match="kind"):
        WorldModelConfig(action_space={"kind": "multi"})
    with pytest.raises(UserInputError, match="context_noise"):
        WorldModelConfig(context_noise=-0.1)


def test_context_noise_augments_training_only_and_is_learnt(tmp_path):
    """With context_noise the training loss sees noisy context frames and their level; the level's
    embedding gets gradients; sampling (level 0) is deterministic and survives save/load."""
    frames = torch.randint(0, 256, (4, 3, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    actions = torch.randint(0, 3, (4, 2))
    plain, noisy = tiny(), tiny(context_noise=0.5)
    assert plain.context_noise_embed is None
    noisy.load_state_dict(plain.state_dict(), strict=False)  # same UNet and action weights
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    loss_plain = plain.diffusion_loss(frames, actions, generator=g())
    loss_noisy = noisy.diffusion_loss(frames, actions, generator=g())
    assert loss_plain.item() != loss_noisy.item()
    loss_noisy.backward()
    assert noisy.context_noise_embed.weight.grad.abs().sum() > 0
    with torch.no_grad():
        noisy.context_noise_embed.weight.normal_()
    # sampling uses level 0, where the level's weight contributes nothing
    ctx = frames[:, :2]
    assert torch.equal(noisy.sample_next(ctx, actions, generator=g()), plain.sample_next(ctx, actions, generator=g()))
    noisy.save_pretrained(tmp_path / "m")
    loaded = WorldModel.from_pretrained(tmp_path / "m")
    assert loaded.config.context_noise == 0.5
    assert torch.equal(loaded.context_noise_embed.weight, noisy.context_noise_embed.weight)


def save_tiny_text_encoder(path, kind: str = "clip") -> None:
    """A randomly initialised CLIP text model or T5 encoder and a word-level tokenizer, saved locally
    (no downloads)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTextConfig, CLIPTextModel, PreTrainedTokenizerFast, T5Config, T5EncoderModel

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(
        ["push the square left", "push the square right", "stay"],
        trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]),
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", model_max_length=8)
    fast.save_pretrained(path)
    torch.manual_seed(0)
    vocab = dict(vocab_size=tok.get_vocab_size(), pad_token_id=0)  # [PAD] is token 0
    # either way one layer of width 16 with two heads and a feed-forward width of 32
    if kind == "t5":
        sizes = dict(d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
        T5EncoderModel(T5Config(**vocab, **sizes, decoder_start_token_id=0)).save_pretrained(path)
        return
    sizes = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    cfg = CLIPTextConfig(**vocab, **sizes, max_position_embeddings=8, eos_token_id=1, bos_token_id=1)
    CLIPTextModel(cfg).save_pretrained(path)


@pytest.mark.parametrize("kind", ["clip", "t5"])
def test_text_conditioning_by_cross_attention(tmp_path, kind):
    from worldmodel.text import TextEncoder

    save_tiny_text_encoder(tmp_path / "enc", kind)
    torch.manual_seed(0)
    cfg = WorldModelConfig(action_space={"kind": "discrete", "n": 3}, text_encoder="text_encoder", **TINY)
    m = WorldModel(cfg, text_encoder=TextEncoder(tmp_path / "enc")).eval()
    assert type(m.text_encoder.encoder).__name__ == {"clip": "CLIPTextModel", "t5": "T5EncoderModel"}[kind]
    torch.nn.init.normal_(m.unet.conv_out.weight, std=0.05)
    assert type(m.unet).__name__ == "UNet2DConditionModel" and m.config.cross_attention_dim == 16
    frames, actions = inputs()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    left = m.sample_next(frames, actions, generator=g(), texts=["push the square left"] * 3)
    right = m.sample_next(frames, actions, generator=g(), texts=["push the square right"] * 3)
    assert not torch.equal(left, right)
    m.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "text_encoder" / "config.json").is_file()
    m2 = WorldModel.from_pretrained(tmp_path / "m")
    assert torch.equal(left, m2.sample_next(frames, actions, generator=g(), texts=["push the square left"] * 3))
    assert not any(k.startswith("text_encoder.") for k in m2.trainable_state_dict())


def test_configs_saved_before_reward_pool_load_with_the_global_pooling_they_were_trained_with():
    from worldmodel.config import WorldModelConfig

    d = WorldModelConfig().to_dict()
    del d["reward_pool"]
    assert WorldModelConfig.from_dict(d).reward_pool == 1
    assert WorldModelConfig.from_dict(WorldModelConfig().to_dict()).reward_pool == 4


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sampling_on_cuda_matches_the_cpu_and_the_speed_options_keep_the_prediction():
    """A model moved to a GPU predicts what it predicts on the CPU (same CPU generator, so the same
    initial noise); bf16 autocast stays close; torch.compile with CUDA graph replays (reduce-overhead)
    matches eager and stays deterministic across replays."""
    m = tiny()
    frames, actions = inputs(b=4)
    ref = m.sample_next(frames, actions, generator=torch.Generator().manual_seed(7)).int()
    assert (ref - frames[:, -1].int()).abs().float().mean() > 1.0  # the network changes the frame
    m.to("cuda")

    def run(seed: int = 7, device: str = "cpu") -> torch.Tensor:
        out = m.sample_next(frames.cuda(), actions.cuda(), generator=torch.Generator(device).manual_seed(seed))
        assert out.device.type == "cuda" and out.dtype == torch.uint8
        return out.cpu().int()

    fp32 = run()
    assert (fp32 - ref).abs().max() <= 2
    on_gpu = run(device="cuda")
    assert torch.equal(on_gpu, run(device="cuda")) and not torch.equal(on_gpu, run(8, device="cuda"))
    m.configure_inference(bf16=True)
    bf16 = run()
    diff = (bf16 - ref).abs()
    print(f"bf16 against fp32 on the CPU: mean |diff| {diff.float().mean():.3f}, max {diff.max()}")
    assert diff.float().mean() < 1.0
    m.configure_inference(compile=True, compile_mode="reduce-overhead")
    graphs = [run() for _ in range(4)]  # warm-up, graph recording, then replays
    assert all(torch.equal(graphs[0], g) for g in graphs[1:])
    assert (graphs[-1] - ref).abs().max() <= 2


def test_motion_weights_per_sample_count_every_transition_the_same():
    """Over the batch, a transition whose view does not change (a body against a wall) weighs up to
    1 + motion_weight times less than one that moves; normalised per sample, each counts the same."""
    model = tiny()
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, model.config.context + 1, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 3, (2, model.config.context), generator=g)
    frames[0, -1] = frames[0, -2]  # transition 0: nothing moves
    frames[1, -1] = frames[1, -2] + 128  # transition 1: every pixel moves (uint8 wraps)

    def loss(f, a, **kw):
        return model.diffusion_loss(f, a, generator=torch.Generator().manual_seed(0), **kw).item()

    plain = loss(frames, actions)
    # with every pixel of a sample weighted alike, the per-sample weights are 1: the plain loss
    assert loss(frames, actions, motion_weight=25.0, motion_per_sample=True) == pytest.approx(plain, rel=1e-5)
    assert loss(frames, actions, motion_weight=25.0) != pytest.approx(plain, rel=1e-3)


def _half_of_a_batch() -> None:
    """One of two data-parallel ranks (wmcore.local_ranks) with its half of a batch of 4, whose first half holds
    a still transition and whose second moves throughout. Normalised across ranks, its motion-weighted loss is
    its half's loss normalised alone times (its half's mean weight / the whole batch's): the whole batch's norm,
    so the ranks' averaged gradients are the whole batch's."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    model = tiny()
    g = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (4, model.config.context + 1, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 3, (4, model.config.context), generator=g)
    frames[0, -1] = frames[0, -2]  # still
    frames[1:, -1] = frames[1:, -2] + 128  # moving

    def mean_weight(f):
        x = model._unit(f)
        return float((1 + 25.0 * ((x[:, -1] - x[:, -2]).abs().amax(1) > 0.04).float()).mean())

    mine = slice(2 * dist.get_rank(), 2 * dist.get_rank() + 2)
    f, a = frames[mine], actions[mine]

    def loss(**kw):
        return model.diffusion_loss(f, a, generator=torch.Generator().manual_seed(0), motion_weight=25.0, **kw).item()

    alone, shared = loss(), loss(across_ranks=True)
    expected = alone * mean_weight(f) / mean_weight(frames)
    assert abs(shared - expected) <= 1e-5 * abs(expected), (dist.get_rank(), shared, expected)
    assert abs(shared - alone) > 1e-3 * abs(alone)  # the halves differ in motion: the norm matters
    dist.destroy_process_group()


def test_motion_weights_normalised_over_the_whole_data_parallel_batch():
    from wmcore.local_ranks import run_ranks

    run_ranks(_half_of_a_batch, (), 2, threads=1)  # an assertion failing in a rank raises here


def test_still_head_learns_which_steps_are_still_and_copies_the_last_frame_exactly():
    """Segments where action 0 leaves the frame unchanged (a blocked push) and the others change it: the still head,
    trained on them alone, predicts still for action 0, and a still step's sample is the last frame, bit for bit."""
    from worldmodel.model import still_steps

    m = tiny(still_head=True).train()
    g = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (32, 3, 16, 16, 3), dtype=torch.uint8, generator=g)
    actions = torch.randint(0, 3, (32, 2), generator=g)
    blocked = actions[:, -1] == 0
    frames[blocked, -1] = frames[blocked, -2]
    assert torch.equal(still_steps(frames), blocked)
    opt = torch.optim.Adam(m.still_model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = m.still_loss(frames, actions, still_steps(frames))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        p = torch.sigmoid(m.still_logits(frames[:, :-1], actions))
    assert p[blocked].min() > 0.9 and p[~blocked].max() < 0.1
    out = m.sample_next(frames[:, :-1], actions, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[blocked], frames[blocked, -2])
    assert not torch.equal(out[~blocked], frames[~blocked, -2])
    # the head is part of the saved model, and the training losses include it
    total, diffusion, heads = m(frames, actions, torch.zeros(32), torch.zeros(32, dtype=torch.bool))
    assert m.num_parameters()["still"] > 0 and heads > 0


def test_a_still_head_starts_fresh_on_weights_saved_without_one(tmp_path):
    """A model pretrained without the head (assets/world_model_rooms) can start one that has it: its own weights
    load, the head keeps its initialisation."""
    from types import SimpleNamespace

    from helpers import grown_from_saved

    from training.world_model_checkpoints import starting_config
    from worldmodel.action_space import ActionSpace

    tiny().save_pretrained(tmp_path / "plain")
    cfg, m = grown_from_saved(tmp_path / "plain", (16, 16), still_head=True)
    assert cfg.still_head and cfg.context == 2
    data = SimpleNamespace(resolution=(16, 16), action_space=ActionSpace.from_dict({"kind": "discrete", "n": 3}),
                           path=tmp_path)  # fmt: skip
    plain = WorldModel.from_pretrained(tmp_path / "plain")
    assert torch.equal(m.unet.conv_out.weight, plain.unet.conv_out.weight)
    assert starting_config(WorldModelConfig(), data, tmp_path / "plain", None).still_head is False
    # how the reward is fitted is the run's choice, not the saved model's
    assert starting_config(WorldModelConfig(reward_loss="mse"), data, tmp_path / "plain", None).reward_loss == "mse"


def test_reward_loss_mse_fits_the_mean_where_huber_leans_to_the_median():
    """A reward the frames cannot predict (one step in ten pays 10, the rest -0.1): fitted by squared error the head
    learns the mean (0.91), by smooth L1 it stays near the median — what CarRacing's invisible tiles did."""
    frames, actions = inputs(b=40)
    frames = torch.cat([frames, frames[:, -1:]], 1)
    frames[:] = frames[:1]  # every segment looks the same
    actions[:] = actions[:1]
    rewards = torch.full((40,), -0.1)
    rewards[::10] = 10.0
    fitted = {}
    for loss in ("huber", "mse"):
        m = tiny(reward_loss=loss).train()
        opt = torch.optim.Adam(m.reward_model.parameters(), lr=1e-2)
        for _ in range(300):
            out = m.reward_loss(frames, actions, rewards, torch.zeros(40, dtype=torch.bool))
            opt.zero_grad()
            out.backward()
            opt.step()
        fitted[loss] = m.reward_model(m._unit(frames[:1]).flatten(1, 2), actions[:1])[0].item()
    assert fitted["mse"] == pytest.approx(0.91, abs=0.1) and fitted["huber"] < 0.1
    with pytest.raises(UserInputError, match="reward_loss"):
        WorldModelConfig(reward_loss="l1")
