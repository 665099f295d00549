"""The warp world model: `warp` against its pixel loop, a flow net that learns a camera's shift, and a model
grown from weights saved without a warp that predicts what they did."""

from __future__ import annotations

import torch

from worldmodel.config import WorldModelConfig
from worldmodel.model import WorldModel
from worldmodel.warp import warp, warp_reference

TINY = dict(resolution=(16, 16), context=2, block_out_channels=(16, 32), action_embed_dim=8, reward_channels=(8,))


def test_warp_matches_the_pixel_loop_at_fractional_and_out_of_frame_flows():
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(2, 3, 7, 9, generator=g)
    flow = torch.randn(2, 2, 7, 9, generator=g) * 3  # reaches past every border
    assert torch.allclose(warp(frame, flow), warp_reference(frame, flow), atol=1e-5)
    assert torch.allclose(warp(frame, torch.zeros_like(flow)), frame, atol=1e-6)
    # a whole-pixel flow is a shift: pixel (i, j) takes the frame's (i, j + 2), the last two columns the border's
    shifted = warp(frame, torch.stack([torch.full((7, 9), 2.0), torch.zeros(7, 9)])[None].expand(2, -1, -1, -1))
    assert torch.allclose(shifted[..., :-2], frame[..., 2:], atol=1e-6)
    assert torch.allclose(shifted[..., -2:], frame[..., -1:].expand(-1, -1, -1, 2), atol=1e-6)


def _shifting_segments(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Segments of a smooth random texture panned 2 pixels left (action 1) or right (action 2) per step, or held
    (action 0), as a camera's turn pans a view."""
    big = torch.nn.functional.interpolate(torch.rand(n, 3, 8, 14, generator=g), size=(16, 28), mode="bilinear")
    actions = torch.randint(0, 3, (n, 2), generator=g)
    step = torch.tensor([0, 2, -2])[actions]  # [n, 2]: pan of each step
    frames = torch.zeros(n, 3, 16, 16, 3, dtype=torch.uint8)
    for i in range(n):
        x = 6
        for t in range(3):
            frames[i, t] = (big[i, :, :, x : x + 16].permute(1, 2, 0) * 255).to(torch.uint8)
            if t < 2:
                x += int(step[i, t])
    return frames, actions


def test_the_flow_net_learns_the_shift_each_action_makes_from_the_training_loss():
    torch.manual_seed(0)
    m = WorldModel(WorldModelConfig(action_space={"kind": "discrete", "n": 3}, warp=True, **TINY)).train()
    g = torch.Generator().manual_seed(1)
    frames, actions = _shifting_segments(32, g)
    m.unet.requires_grad_(False)  # the denoiser reads the warped frame detached: only the flow net learns here
    opt = torch.optim.Adam(m.flow_net.parameters(), lr=3e-3)
    for _ in range(120):
        loss = m.diffusion_loss(frames, actions, generator=torch.Generator().manual_seed(2))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    x = m._unit(frames)
    with torch.no_grad():
        flow = m.flow_net(x[:, :-1].flatten(1, 2), actions)
    inner = flow[:, 0, 3:-3, 3:-3].mean((1, 2))  # away from the border the pan is known
    want = torch.tensor([0.0, 2.0, -2.0])[actions[:, -1]]
    assert (inner - want).abs().max() < 0.5, (inner - want).abs().max()
    # the warped last frame is what the denoiser then corrects: the texture has moved with the camera
    moved = warp(x[:, -2], flow)
    err_warp = (moved - x[:, -1]).abs()[..., 3:-3, 3:-3].mean()
    err_copy = (x[:, -2] - x[:, -1]).abs()[..., 3:-3, 3:-3].mean()
    assert err_warp < 0.3 * err_copy, (err_warp, err_copy)


def test_a_model_grown_with_a_warp_from_weights_without_one_predicts_what_they_did(tmp_path):
    from helpers import grown_from_saved

    torch.manual_seed(0)
    plain = WorldModel(WorldModelConfig(action_space={"kind": "discrete", "n": 3}, **TINY)).eval()
    torch.nn.init.normal_(plain.unet.conv_out.weight, std=0.05)  # as if trained
    plain.save_pretrained(tmp_path / "plain")
    cfg, grown = grown_from_saved(tmp_path / "plain", (16, 16), warp=True)
    assert cfg.warp and cfg.context == 2
    grown.eval()
    frames = torch.randint(0, 256, (3, 2, 16, 16, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    actions = torch.randint(0, 3, (3, 2))
    a = plain.sample_next(frames, actions, generator=torch.Generator().manual_seed(4))
    b = grown.sample_next(frames, actions, generator=torch.Generator().manual_seed(4))
    assert (a.int() - b.int()).abs().max() <= 1  # the same up to rounding (a zero flow resamples at the pixel centres)
    assert grown.num_parameters()["flow"] > 0
    # saved and loaded, the grown model is a warp model of its own
    grown.save_pretrained(tmp_path / "grown")
    again = WorldModel.from_pretrained(tmp_path / "grown")
    assert again.config.warp
    assert torch.equal(again.sample_next(frames, actions, generator=torch.Generator().manual_seed(4)), b)
