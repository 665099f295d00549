"""The call description inside the rasterizer: what reaches gsplat (checked here with a stand-in,
so it runs without CUDA) and how the tile size is chosen once per call."""

from __future__ import annotations

import sys
import types

import pytest
import torch

from scenes.rasterize import rasterization
from scenes.rasterize.checks import RasterInputs, RasterOptions
from scenes.rasterize.cuda import render_gsplat


def _inputs(n: int = 5, c: int = 2, backgrounds: bool = True) -> RasterInputs:
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[20.0, 0, 8], [0, 20, 8], [0, 0, 1]]).expand(c, 3, 3)
    return RasterInputs(
        torch.randn(n, 3, generator=g),
        torch.randn(n, 4, generator=g),
        torch.rand(n, 3, generator=g),
        torch.rand(n, generator=g),
        torch.rand(n, 3, generator=g),
        torch.eye(4).expand(c, 4, 4),
        K,
        torch.rand(c, 3, generator=g) if backgrounds else None,
    )


def test_gsplat_gets_every_option_by_name(monkeypatch):
    seen = {}

    def fake_rasterization(*args, **kwargs):
        seen["args"], seen["kwargs"] = args, kwargs
        return "out", "alphas", {"radii": torch.ones(2, 5, 2, dtype=torch.int32)}

    monkeypatch.setitem(sys.modules, "gsplat", types.SimpleNamespace(rasterization=fake_rasterization))
    inputs = _inputs()
    image = dict(width=16, height=12, near_plane=0.02, far_plane=50.0, radius_clip=0.5, eps2d=0.25)
    drawing = dict(sh_degree=None, tile_size=16, render_mode="RGB+ED", absgrad=True)
    out, alphas, meta = render_gsplat(inputs, RasterOptions(**image, **drawing))
    assert len(seen["args"]) == 7 and all(a is b for a, b in zip(seen["args"], inputs[:7]))
    fixed = dict(backgrounds=inputs.backgrounds, packed=False, rasterize_mode="classic")
    assert seen["kwargs"] == {**image, **drawing, **fixed}  # every option by its gsplat name, and nothing else
    assert meta["radii"].shape == (2, 5) and meta["radii_xy"].shape == (2, 5, 2)


@pytest.mark.parametrize("tile_size", [None, 8])
def test_the_tile_size_is_chosen_once_and_reported(tile_size):
    from scenes.rasterize.cpu import cpu_tile_size

    x = _inputs(backgrounds=False)
    _, _, meta = rasterization(*x[:7], 16, 12, tile_size=tile_size)
    assert meta["tile_size"] == (cpu_tile_size(2, 16, 12) if tile_size is None else tile_size)
    assert meta["width"] == 16 and meta["height"] == 12 and meta["n_cameras"] == 2


def test_options_are_frozen():
    options = RasterOptions(16, 12, 0.01, 1e10, 0.0, 0.3, None, 16, "ED", False)
    assert options.expected_depth
    with pytest.raises(AttributeError):
        options.width = 3
