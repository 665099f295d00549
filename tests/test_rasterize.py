"""The CPU rasterizer against its dense reference, analytic cases, and gsplat on CUDA."""

from __future__ import annotations

import math

import numba
import pytest
import torch

from scenes.rasterize import rasterization, rasterization_reference
from scenes.rasterize.reference import project_reference
from wmcore.errors import UserInputError

MODES = ("RGB", "D", "ED", "RGB+D", "RGB+ED")


def random_scene(
    seed: int,
    n: int = 24,
    n_cam: int = 2,
    sh_degree: int | None = 3,
    channels: int = 3,
    per_camera_colors: bool = False,
) -> dict:
    """A small random scene in front of `n_cam` cameras: a few Gaussians behind the camera or
    off-screen, a mix of sizes and opacities, non-normalised quaternions."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g) * torch.tensor([0.8, 0.6, 0.5]) + torch.tensor([0.0, 0.0, 3.0])
    means[:2, 2] = -1.0  # behind the cameras
    means[2, 0] = 40.0  # far off-screen
    quats = torch.randn(n, 4, generator=g) * 2
    scales = torch.rand(n, 3, generator=g) * 0.25 + 0.02
    opacities = torch.rand(n, generator=g) * 0.95 + 0.04
    if sh_degree is None:
        shape = (n_cam, n, channels) if per_camera_colors else (n, channels)
        colors = torch.rand(*shape, generator=g)
    else:
        colors = torch.randn(n, (sh_degree + 1) ** 2, 3, generator=g) * 0.4
    viewmats = torch.eye(4).repeat(n_cam, 1, 1)
    for c in range(n_cam):  # small rotations about y and translations
        a = 0.15 * c
        viewmats[c, 0, 0], viewmats[c, 0, 2], viewmats[c, 2, 0], viewmats[c, 2, 2] = (
            math.cos(a),
            math.sin(a),
            -math.sin(a),
            math.cos(a),
        )
        viewmats[c, :3, 3] = torch.tensor([0.2 * c, -0.1 * c, 0.1 * c])
    Ks = torch.tensor([[30.0, 0, 13.0], [0, 28.0, 9.5], [0, 0, 1]]).repeat(n_cam, 1, 1)
    backgrounds = torch.rand(n_cam, channels, generator=g)
    gaussians = dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors)
    cameras = dict(viewmats=viewmats, Ks=Ks, backgrounds=backgrounds)
    return {**gaussians, **cameras}


SIZE = dict(width=26, height=19, tile_size=8)  # partial tiles on both axes


def _f64(scene: dict) -> dict:
    return {k: v.double() for k, v in scene.items()}


@pytest.mark.parametrize("sh_degree", [None, 0, 1, 2, 3])
def test_forward_matches_reference_all_modes(sh_degree):
    for seed, mode in enumerate(MODES):
        scene = random_scene(seed, sh_degree=sh_degree, channels=4 if sh_degree is None else 3)
        bg = scene.pop("backgrounds") if seed % 2 == 0 else None
        scene.pop("backgrounds", None)
        out, alpha, meta = rasterization(**scene, **SIZE, sh_degree=sh_degree, render_mode=mode, backgrounds=bg)
        ref_bg = None if bg is None else bg.double()
        r_out, r_alpha, r_meta = rasterization_reference(
            **_f64(scene), **SIZE, sh_degree=sh_degree, render_mode=mode, backgrounds=ref_bg
        )
        assert out.shape == r_out.shape and alpha.shape == r_alpha.shape == (2, 19, 26, 1)
        assert float(alpha.max()) > 0.5, "the scene should cover part of the image"
        assert torch.equal(meta["radii"], r_meta["radii"])
        assert meta["radii"].dtype == torch.int32 and meta["radii"].shape == (2, 24)
        assert (meta["radii"][:, :3] == 0).all()  # behind the camera / off-screen
        torch.testing.assert_close(alpha.double(), r_alpha, atol=2e-5, rtol=0)
        # expected depth divides by alpha: compare relative there
        torch.testing.assert_close(out.double(), r_out, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(meta["means2d"].double(), r_meta["means2d"], atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(meta["conics"].double(), r_meta["conics"], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(meta["depths"].double(), r_meta["depths"], atol=1e-5, rtol=1e-5)


def test_per_camera_feature_colors_match_reference():
    scene = random_scene(7, sh_degree=None, channels=5, per_camera_colors=True)
    out, alpha, _ = rasterization(**scene, **SIZE)
    r_out, r_alpha, _ = rasterization_reference(**_f64(scene), **SIZE)
    torch.testing.assert_close(out.double(), r_out, atol=1e-5, rtol=0)


GRAD_INPUTS = ("means", "quats", "scales", "opacities", "colors", "backgrounds")


def _grads(fn, scene: dict, dtype: torch.dtype, **kw) -> dict:
    leaves = {k: v.detach().to(dtype).clone().requires_grad_(k in GRAD_INPUTS) for k, v in scene.items()}
    out, alpha, meta = fn(**leaves, **SIZE, **kw)
    meta["means2d"].retain_grad()
    g = torch.Generator().manual_seed(123)
    w_out = torch.randn(out.shape, generator=g).to(dtype)
    w_alpha = torch.randn(alpha.shape, generator=g).to(dtype)
    ((out * w_out).sum() + (alpha * w_alpha).sum()).backward()
    grads = {k: leaves[k].grad for k in GRAD_INPUTS}
    grads["means2d"] = meta["means2d"].grad
    return grads


@pytest.mark.parametrize("sh_degree,mode", [(3, "RGB+ED"), (1, "RGB"), (None, "RGB+D"), (None, "ED")])
def test_gradients_match_float64_reference(sh_degree, mode):
    scene = random_scene(11, sh_degree=sh_degree)
    fast = _grads(rasterization, scene, torch.float32, sh_degree=sh_degree, render_mode=mode)
    ref = _grads(rasterization_reference, scene, torch.float64, sh_degree=sh_degree, render_mode=mode)
    for name in (*GRAD_INPUTS, "means2d"):
        if ref[name] is None:
            assert mode in ("D", "ED") and name in ("colors", "backgrounds") and fast[name] is None
            continue
        scale = float(ref[name].abs().max())
        assert scale > 0, name
        err = float((fast[name].double() - ref[name]).abs().max())
        assert err <= 2e-4 * scale + 1e-6, f"{name}: max error {err:.3g} vs scale {scale:.3g}"


def test_reference_gradcheck_float64():
    scene = _f64(random_scene(3, n=4, n_cam=1, sh_degree=1))
    scene["means"][:, 2] = torch.tensor([2.5, 3.0, 3.5, 2.8], dtype=torch.float64)  # all in front this time
    scene["means"][:, :2] = scene["means"][:, :2].clamp(-0.6, 0.6)
    scene["Ks"] = torch.tensor([[[9.0, 0, 4.0], [0, 9.0, 3.0], [0, 0, 1]]], dtype=torch.float64)
    fixed = {k: scene[k] for k in ("viewmats", "Ks")}
    size = dict(width=8, height=6, tile_size=4, sh_degree=1, render_mode="RGB+ED")

    def f(means, quats, scales, opacities, colors):
        out, alpha, _ = rasterization_reference(means, quats, scales, opacities, colors, **fixed, **size)
        return out, alpha

    names = ("means", "quats", "scales", "opacities", "colors")
    args = tuple(scene[k].clone().requires_grad_(True) for k in names)
    assert float((f(*args)[1] > 0.05).double().mean()) > 0.3, "the Gaussians should cover the image"
    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-5, rtol=1e-4)


def _single(depth: float, scale: float, opacity: float, width: int = 33, height: int = 33, f: float = 40.0):
    """One isotropic Gaussian on the optical axis of a camera at the origin, its principal point at the
    image centre."""
    return dict(
        means=torch.tensor([[0.0, 0.0, depth]]),
        quats=torch.tensor([[2.0, 0.0, 0.0, 0.0]]),  # identity, not normalised
        scales=torch.full((1, 3), scale),
        opacities=torch.tensor([opacity]),
        colors=torch.tensor([[0.2, 0.5, 0.9]]),
        viewmats=torch.eye(4)[None],
        Ks=torch.tensor([[[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]]]),
        width=width,
        height=height,
    )


def test_isotropic_gaussian_facing_camera_is_analytic():
    depth, scale, op, f = 2.0, 0.05, 0.8, 40.0
    out, alpha, meta = rasterization(**_single(depth, scale, op, f=f), eps2d=0.3)
    var = (f * scale / depth) ** 2 + 0.3  # EWA 2D variance plus the eps2d dilation
    torch.testing.assert_close(meta["means2d"][0, 0], torch.tensor([16.5, 16.5]))  # pinhole: (cx, cy)
    torch.testing.assert_close(meta["conics"][0, 0], torch.tensor([1 / var, 0.0, 1 / var]), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(meta["depths"][0, 0], torch.tensor(depth))
    assert float(alpha[0, 16, 16, 0]) == pytest.approx(op, rel=1e-6)  # pixel centre 16.5 is the mean
    assert float(alpha[0, 16, 19, 0]) == pytest.approx(op * math.exp(-0.5 * 9 / var), rel=1e-5)
    torch.testing.assert_close(out[0, 16, 16], op * torch.tensor([0.2, 0.5, 0.9]))
    extend = min(3.33, math.sqrt(2 * math.log(op * 255)))
    assert int(meta["radii"][0, 0]) == math.ceil(extend * math.sqrt(var))
    assert float(alpha[0, 0, 0, 0]) == 0.0  # far corner: alpha < 1/255 is skipped


def test_opaque_stack_stops_early_and_alpha_clamps():
    scene = _single(2.0, 0.2, 1.0)
    n = 6
    for k in ("means", "quats", "scales", "opacities", "colors"):
        scene[k] = scene[k].repeat(n, *([1] * (scene[k].dim() - 1)))
    scene["means"][:, 2] = torch.arange(n) * 0.1 + 2.0
    scene["colors"] = torch.eye(3).repeat(2, 1)
    out, alpha, _ = rasterization(**scene)
    ref, r_alpha, _ = rasterization_reference(
        **_f64({k: v for k, v in scene.items() if torch.is_tensor(v)}),
        width=scene["width"],
        height=scene["height"],
    )
    # alpha 0.999 each: T after one is 1e-3, after two 1e-6 <= 1e-4, so the second is never composited
    assert float(alpha[0, 16, 16, 0]) == pytest.approx(0.999, abs=1e-6)
    torch.testing.assert_close(out[0, 16, 16], torch.tensor([0.999, 0.0, 0.0]))
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=0)


def test_behind_near_plane_and_beyond_far_are_culled():
    bg = torch.tensor([[0.1, 0.2, 0.3]])
    for depth, near, far in ((-2.0, 0.01, 1e10), (0.5, 1.0, 1e10), (5.0, 0.01, 4.0)):
        out, alpha, meta = rasterization(**_single(depth, 0.3, 0.9), near_plane=near, far_plane=far, backgrounds=bg)
        assert int(meta["radii"][0, 0]) == 0
        assert float(alpha.abs().max()) == 0.0
        torch.testing.assert_close(out, bg[:, None, None, :].expand_as(out))


def test_early_cull_is_conservative_at_the_image_border():
    """The projection rejects Gaussians with a cheap bound before the covariance maths: it must never
    drop one the exact test keeps. Thousands of Gaussians around the image border, near and far,
    tiny to large and thin, random rotations, two cameras with off-centre principal points."""
    g = torch.Generator().manual_seed(4)
    n, width, height = 4000, 26, 19
    Ks = torch.tensor([[[30.0, 0, 8.0], [0, 28.0, 12.5], [0, 0, 1]], [[22.0, 0, 15.0], [0, 25.0, 6.0], [0, 0, 1]]])
    z = torch.rand(n, generator=g) * 8 + 0.02
    u = (torch.rand(n, generator=g) * 1.8 - 0.4) * width  # screen position, 40 % of the size beyond each side
    v = (torch.rand(n, generator=g) * 1.8 - 0.4) * height
    means = torch.stack([(u - 8.0) / 30.0 * z, (v - 12.5) / 28.0 * z, z], -1)
    scales = torch.exp(torch.rand(n, 3, generator=g) * 7 - 6)  # 2.5 mm .. 2.7 m per axis
    quats = torch.randn(n, 4, generator=g)
    opacities = torch.rand(n, generator=g) * 0.99 + 0.01
    viewmats = torch.eye(4).repeat(2, 1, 1)
    viewmats[1, :3, 3] = torch.tensor([0.1, -0.05, 0.0])
    args = (means, quats, scales, opacities, viewmats, Ks, width, height)
    _, _, meta = rasterization(*args[:4], torch.rand(n, 3, generator=g), *args[4:])
    ref = project_reference(*(t.double() for t in args[:6]), width, height, 0.3, 0.01, 1e10, 0.0)
    assert torch.equal(meta["radii_xy"], ref["radii_xy"])
    centre = meta["means2d"]
    off_screen = (centre[..., 0] < 0) | (centre[..., 0] > width) | (centre[..., 1] < 0) | (centre[..., 1] > height)
    assert int(((meta["radii"] > 0) & off_screen).sum()) > 100, "the border cases should be exercised"
    torch.testing.assert_close(meta["means2d"].double(), ref["means2d"], atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(meta["conics"].double(), ref["conics"], atol=1e-5, rtol=1e-4)


def test_empty_scene_renders_background():
    bg = torch.tensor([[0.3, 0.6, 0.9], [1.0, 0.0, 0.5]])
    empty = dict(
        means=torch.zeros(0, 3),
        quats=torch.zeros(0, 4),
        scales=torch.zeros(0, 3),
        opacities=torch.zeros(0),
        colors=torch.zeros(0, 3),
        viewmats=torch.eye(4).repeat(2, 1, 1),
        Ks=torch.tensor([[20.0, 0, 8], [0, 20, 8], [0, 0, 1]]).repeat(2, 1, 1),
    )
    for fn in (rasterization, rasterization_reference):
        out, alpha, meta = fn(**empty, width=16, height=16, backgrounds=bg, render_mode="RGB+D")
        assert out.shape == (2, 16, 16, 4) and meta["radii"].shape == (2, 0)
        torch.testing.assert_close(out[..., :3], bg[:, None, None, :].expand(2, 16, 16, 3))
        assert float(out[..., 3].abs().max()) == 0.0 and float(alpha.abs().max()) == 0.0


def test_many_gaussians_bin_front_to_back_like_a_direct_sort():
    """Enough Gaussians that the projection splits them into several chunks per camera: every
    tile's bin is the Gaussians whose tile rectangle covers it, by depth and then index, and the
    image is the reference's."""
    from scenes.rasterize.kernels_projection import num_chunks

    n, n_cam = 2000, 3
    assert num_chunks(n) > 4
    scene = random_scene(5, n=n, n_cam=n_cam)
    scene["scales"] = scene["scales"] * 0.3  # mostly small: many tiles, few Gaussians each
    width, height, ts = SIZE["width"], SIZE["height"], SIZE["tile_size"]
    with torch.no_grad():
        out, alpha, meta = rasterization(**scene, **SIZE, sh_degree=3)
    tiles_x, tiles_y = math.ceil(width / ts), math.ceil(height / ts)
    m2, rxy, depth = meta["means2d"].double(), meta["radii_xy"].double(), meta["depths"]
    lo = torch.floor((m2 - rxy) / ts).long()
    hi = torch.ceil((m2 + rxy) / ts).long()
    offsets, ids = meta["isect_offsets"].tolist(), meta["flatten_ids"].tolist()
    for c in range(n_cam):
        visible = ((rxy[c] > 0).all(-1)).nonzero()[:, 0].tolist()
        front_to_back = sorted(visible, key=lambda g: (float(depth[c, g]), g))
        for tile in range(tiles_x * tiles_y):
            tx, ty = tile % tiles_x, tile // tiles_x
            want = [g for g in front_to_back if lo[c, g, 0] <= tx < hi[c, g, 0] and lo[c, g, 1] <= ty < hi[c, g, 1]]
            b = c * tiles_x * tiles_y + tile
            assert ids[offsets[b] : offsets[b + 1]] == want, (c, tile)
    assert offsets[-1] == len(ids) > 2 * n
    r_out, r_alpha, _ = rasterization_reference(**_f64(scene), **SIZE, sh_degree=3)
    torch.testing.assert_close(alpha.double(), r_alpha, atol=2e-5, rtol=0)
    torch.testing.assert_close(out.double(), r_out, atol=1e-4, rtol=1e-4)


def test_the_tile_size_changes_neither_image_nor_gradients():
    """The CPU default (tile_size=None) picks 32 px tiles when there are enough of them for the
    threads, else 16; any tile size gives the same image and alphas bit for bit (a Gaussian's
    tile rectangle holds every pixel where its alpha reaches 1/255), and the same gradients up to
    the order in which a Gaussian's per-tile terms are summed."""
    from scenes.rasterize.cpu import cpu_tile_size

    scene = random_scene(7, n=300, n_cam=2)
    size = dict(width=70, height=50)
    threads = numba.get_num_threads()
    assert cpu_tile_size(1, 64, 64) == (32 if threads <= 2 else 16)  # four 32-px tiles
    assert cpu_tile_size(2, 70, 50) == (32 if threads <= 6 else 16) and cpu_tile_size(1, 8, 8) == 16
    results = {}
    for ts in (None, 8, 16, 32):
        leaves = {k: v.clone().requires_grad_(k != "backgrounds") for k, v in scene.items()}
        out, alpha, meta = rasterization(**leaves, **size, tile_size=ts, sh_degree=3, render_mode="RGB+ED")
        assert meta["tile_size"] == (cpu_tile_size(2, 70, 50) if ts is None else ts)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        results[ts] = [out.detach(), alpha.detach()] + [
            leaves[k].grad for k in ("means", "quats", "scales", "opacities", "colors")
        ]
    for ts in (8, 16, 32):
        assert torch.equal(results[None][0], results[ts][0]) and torch.equal(results[None][1], results[ts][1])
        for a, b in zip(results[None][2:], results[ts][2:]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5 * float(b.abs().max()))


def test_no_grad_path_equals_autograd_path_and_float64_round_trips():
    scene = random_scene(5, sh_degree=3)
    with torch.no_grad():
        lean = rasterization(**scene, **SIZE, sh_degree=3, render_mode="RGB+ED")
    leaves = {k: v.clone().requires_grad_(k == "means") for k, v in scene.items()}
    graph = rasterization(**leaves, **SIZE, sh_degree=3, render_mode="RGB+ED")
    assert graph[0].requires_grad and not lean[0].requires_grad
    assert torch.equal(lean[0], graph[0].detach()) and torch.equal(lean[1], graph[1].detach())
    assert torch.equal(lean[2]["radii"], graph[2]["radii"])
    out64, _, _ = rasterization(**_f64(scene), **SIZE, sh_degree=3)
    assert out64.dtype == torch.float64


def test_absgrad_is_set_on_means2d():
    scene = random_scene(2, sh_degree=None)
    leaves = {k: v.clone().requires_grad_(k in ("means", "colors")) for k, v in scene.items()}
    out, _, meta = rasterization(**leaves, **SIZE, absgrad=True)
    meta["means2d"].retain_grad()
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(0))).sum().backward()
    grad, absgrad = meta["means2d"].grad, meta["means2d"].absgrad
    assert absgrad.shape == grad.shape and float(absgrad.abs().sum()) > 0
    assert bool((absgrad >= grad.abs() - 1e-6).all())


def test_bad_inputs_raise_user_input_error():
    scene = random_scene(0, sh_degree=3)
    scene.pop("backgrounds")
    with pytest.raises(UserInputError, match="render_mode"):
        rasterization(**scene, **SIZE, sh_degree=3, render_mode="RGBD")
    with pytest.raises(UserInputError, match="colors"):
        rasterization(**scene, **SIZE, sh_degree=None)  # SH coefficients passed as features
    with pytest.raises(UserInputError, match="backgrounds"):
        rasterization(**scene, **SIZE, sh_degree=3, render_mode="RGB+D", backgrounds=torch.zeros(2, 4))
    with pytest.raises(UserInputError, match="quats"):
        rasterization(**{**scene, "quats": scene["quats"][:, :3]}, **SIZE, sh_degree=3)
    size = dict(width=SIZE["width"], height=SIZE["height"])  # the default tile size
    with pytest.raises(UserInputError, match="means"):
        rasterization(**{**scene, "means": scene["means"].numpy()}, **size, sh_degree=3)
    with pytest.raises(UserInputError, match="tile_size"):
        rasterization(**scene, **size, tile_size=0, sh_degree=3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and gsplat")
def test_cpu_path_matches_gsplat_on_cuda():
    pytest.importorskip("gsplat")
    for sh_degree, mode in ((3, "RGB+ED"), (None, "RGB")):
        scene = random_scene(21, n=200, sh_degree=sh_degree)
        cpu = rasterization(**scene, width=64, height=48, sh_degree=sh_degree, render_mode=mode)
        gpu = rasterization(
            **{k: v.cuda() for k, v in scene.items()},
            width=64,
            height=48,
            sh_degree=sh_degree,
            render_mode=mode,
        )
        torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=2e-3, rtol=2e-3)
        torch.testing.assert_close(gpu[1].cpu(), cpu[1], atol=2e-3, rtol=0)
        assert torch.equal(gpu[2]["radii"].cpu(), cpu[2]["radii"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA and gsplat")
def test_cpu_gradients_match_gsplat_on_cuda():
    """Splats trained on a GPU must learn what they learn on the CPU: every parameter's gradient, and
    the screen-space gradient that densification reads, agree with gsplat's."""
    pytest.importorskip("gsplat")
    scene = random_scene(22, n=200, sh_degree=3)
    target = torch.rand(2, 48, 64, 3, generator=torch.Generator().manual_seed(3))
    names = ("means", "quats", "scales", "opacities", "colors")
    grads = {}
    for dev in ("cpu", "cuda"):
        params = {k: scene[k].to(dev, copy=True).requires_grad_(True) for k in names}
        fixed = {k: scene[k].to(dev) for k in ("viewmats", "Ks", "backgrounds")}
        img, alpha, meta = rasterization(**params, **fixed, width=64, height=48, sh_degree=3, render_mode="RGB+ED")
        meta["means2d"].retain_grad()
        loss = (img[..., :3] - target.to(dev)).abs().mean() + 0.05 * img[..., 3].mean() + alpha.mean()
        loss.backward()
        grads[dev] = {k: v.grad.cpu() for k, v in params.items()} | {"means2d": meta["means2d"].grad.cpu()}
    for k, a in grads["cpu"].items():
        b = grads["cuda"][k]
        rel = float(torch.linalg.norm(b - a) / torch.linalg.norm(a))
        print(f"{k}: |grad| {float(torch.linalg.norm(a)):.4g}, relative difference {rel:.2e}")
        assert float(torch.linalg.norm(a)) > 0 and rel < 1e-2, k
