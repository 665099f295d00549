"""3DGS .ply round trip and bad files; densification operations keep optimisers consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from plyfile import PlyData, PlyElement

from scenes.ply import read_splat_ply, sh_degree_of, write_splat_ply
from scenes.splats import init_from_points
from scenes.strategy import DefaultStrategy, duplicate, remove, reset_opacities, split
from wmcore.errors import UserInputError


def _params(n=20, degree=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        k: v.numpy() for k, v in init_from_points(rng.normal(size=(n, 3)), rng.integers(0, 255, (n, 3)), degree).items()
    }


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_splat_ply_roundtrip(tmp_path, degree):
    p = _params(degree=degree)
    p["shN"] = np.random.default_rng(1).normal(size=p["shN"].shape).astype(np.float32)
    write_splat_ply(tmp_path / "s.ply", p)
    back = read_splat_ply(tmp_path / "s.ply")
    assert sh_degree_of(back) == degree
    for k in p:
        np.testing.assert_array_equal(back[k], p[k].astype(np.float32), err_msg=k)
    # The layout other tools read: channel-major f_rest, standard property names.
    names = PlyData.read(str(tmp_path / "s.ply"))["vertex"].data.dtype.names
    assert names[:9] == ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
    assert names[-8:] == ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
    if degree:
        v = PlyData.read(str(tmp_path / "s.ply"))["vertex"].data
        assert v["f_rest_1"][0] == pytest.approx(p["shN"][0, 1, 0])  # red, second coefficient


def test_bad_ply_files(tmp_path):
    (tmp_path / "junk.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 5\n")
    with pytest.raises(UserInputError, match="junk.ply"):
        read_splat_ply(tmp_path / "junk.ply")
    pts = np.zeros(3, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(pts, "vertex")]).write(str(tmp_path / "points.ply"))
    with pytest.raises(UserInputError, match="not a Gaussian-splat"):
        read_splat_ply(tmp_path / "points.ply")
    with pytest.raises(UserInputError, match="not found"):
        read_splat_ply(tmp_path / "missing.ply")
    good = _params()
    write_splat_ply(tmp_path / "trunc.ply", good)
    data = (tmp_path / "trunc.ply").read_bytes()
    (tmp_path / "trunc.ply").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="trunc.ply"):
        read_splat_ply(tmp_path / "trunc.ply")


def _setup(n=10):
    params = {k: torch.nn.Parameter(torch.as_tensor(v)) for k, v in _params(n).items()}
    opts = {k: torch.optim.Adam([p], lr=1e-3) for k, p in params.items()}
    loss = sum((p**2).sum() for p in params.values())
    loss.backward()
    for o in opts.values():
        o.step()
    return params, opts


def _check_consistent(params, opts):
    for k, p in params.items():
        (q,) = opts[k].param_groups[0]["params"]
        assert q is p
        st = opts[k].state[p]
        assert st["exp_avg"].shape == p.shape


def test_duplicate_split_remove_reset_keep_optimisers_consistent():
    params, opts = _setup(10)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[1, 4]] = True
    means_before = params["means"].detach().clone()
    duplicate(params, opts, mask)
    assert params["means"].shape[0] == 12
    torch.testing.assert_close(params["means"][10:], means_before[[1, 4]])
    _check_consistent(params, opts)
    assert (opts["means"].state[params["means"]]["exp_avg"][10:] == 0).all()

    scales_before = params["scales"].detach().clone()
    m2 = torch.zeros(12, dtype=torch.bool)
    m2[0] = True
    split(params, opts, m2, torch.Generator().manual_seed(0))
    assert params["means"].shape[0] == 13
    torch.testing.assert_close(params["scales"][-1], scales_before[0] - np.log(1.6))
    _check_consistent(params, opts)

    remove(params, opts, torch.arange(13) < 3)
    assert params["means"].shape[0] == 10
    _check_consistent(params, opts)

    reset_opacities(params, opts, 0.01)
    assert torch.sigmoid(params["opacities"]).max() <= 0.01 + 1e-6
    _check_consistent(params, opts)


def test_default_strategy_grows_high_gradient_gaussians():
    params, opts = _setup(10)
    strat = DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=0.1, max_gaussians=0)
    means2d = torch.zeros(1, 10, 2, requires_grad=True)
    means2d.grad = torch.zeros(1, 10, 2)
    means2d.grad[0, :3] = 1.0  # three Gaussians with large screen-space gradients
    info = {
        "means2d": means2d,
        "radii": torch.ones(1, 10, dtype=torch.int32),
        "width": 64,
        "height": 64,
        "n_cameras": 1,
    }
    strat.step_post_backward(params, opts, step=1, info=info, scene_scale=100.0)  # all "small": duplicate
    assert params["means"].shape[0] == 13
    _check_consistent(params, opts)
    capped = DefaultStrategy(refine_start_iter=0, refine_every=1, grow_grad2d=0.1, max_gaussians=14)
    means2d = torch.zeros(1, 13, 2, requires_grad=True)
    means2d.grad = torch.ones(1, 13, 2)
    info.update(means2d=means2d, radii=torch.ones(1, 13, dtype=torch.int32))
    capped.step_post_backward(params, opts, step=1, info=info, scene_scale=100.0)
    assert params["means"].shape[0] == 14
