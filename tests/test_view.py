"""`worldmodel view`: what a PATH resolves to, and the page itself in headless Chromium (Debian's package,
installed by `make chromium`): the splats are drawn on the canvas and the timeline controls exist."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import tiny_world_model

from scenes.truth_scene import truth_scene
from training.collect import CollectConfig, collect
from training.view import ViewConfig, Viewer, find_sources, splats_for_viewer
from wmcore.errors import UserInputError
from worldmodel.dataset import TrajectoryDataset

RES = 40


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny Scene, a dataset of two expert episodes in it (poses recorded), an untrained world model and a
    validate-like run directory naming the three."""
    root = tmp_path_factory.mktemp("view")
    scene = truth_scene(root / "scene", num_gaussians=3000, views=8)
    kwargs = {"scene": str(scene), "width": RES, "height": RES, "max_steps": 12}
    collect(
        CollectConfig(
            "worldmodel/SceneNav-v0",
            out=root / "data",
            episodes=2,
            max_steps=12,
            resolution=(RES, RES),
            policy="noisy:0.3:expert",
            env_kwargs=json.dumps(kwargs),
            frames="observation",
        )
    )
    tiny_world_model(resolution=(RES, RES), num_steps=1).save_pretrained(root / "model")
    run = root / "run"
    run.mkdir()
    (run / "config.json").write_text(
        json.dumps({"model": str(root / "model"), "dataset": str(root / "data"), "scene": str(scene)})
    )
    return root


def test_datasets_record_poses_and_goal(run_dir):
    data = TrajectoryDataset(run_dir / "data")
    ep = data.episodes[0]
    assert ep.poses is not None and ep.poses.shape == (ep.steps + 1, 3)
    assert ep.goal is not None and ep.goal.shape == (2,)
    moved = np.linalg.norm(np.diff(ep.poses[:, :2], axis=0), axis=1)
    assert moved.max() > 0.05  # the body moved: the poses follow the steps


def test_sources(run_dir, tmp_path):
    src = find_sources(ViewConfig(run_dir / "run"))
    assert src.kind == "run" and src.scene == run_dir / "scene" and src.model == run_dir / "model"
    assert list(src.datasets.values()) == [run_dir / "data"]
    src = find_sources(ViewConfig(run_dir / "data"))  # a dataset finds the scene it was recorded in
    assert src.kind == "dataset" and src.scene == run_dir / "scene" and src.model is None
    assert find_sources(ViewConfig(run_dir / "scene" / "splats.ply")).kind == "scene"
    with pytest.raises(UserInputError, match="not a Scene directory"):
        find_sources(ViewConfig(tmp_path))
    with pytest.raises(UserInputError, match="not found"):
        find_sources(ViewConfig(run_dir / "missing"))


def test_viewer_snaps_where_the_run_did(run_dir, tmp_path):
    """A run that judged with snapped imagination is viewed snapped (--plain turns it off, --snap-to picks the
    data): every imagined frame the viewer shows after the context is a frame of that dataset."""
    from training.view_data import imagine_episode

    run = tmp_path / "snapped"
    run.mkdir()
    conf = json.loads((run_dir / "run" / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**conf, "snap_to_data": True}))
    assert find_sources(ViewConfig(run)).snap_to == run_dir / "data"
    assert find_sources(ViewConfig(run, plain=True)).snap_to is None
    assert find_sources(ViewConfig(run_dir / "run")).snap_to is None
    assert find_sources(ViewConfig(run_dir / "run", snap_to=run_dir / "data")).snap_to == run_dir / "data"
    with pytest.raises(UserInputError, match="--snap-to .*missing: no dataset.json"):
        find_sources(ViewConfig(run, snap_to=tmp_path / "missing"))
    cfg = ViewConfig(run, port=_free_port())
    viewer = Viewer(cfg, find_sources(cfg))
    try:
        assert viewer.core is not None and viewer.core.memory is not None
        ep = viewer.datasets["data"].data.episodes[0]
        frames = imagine_episode(viewer.core, ep, 0)["frames"][viewer.core.L :]
        pool = np.concatenate([e.frames for e in TrajectoryDataset(run_dir / "data").episodes])
        assert len(frames) and all((pool == f).all(axis=(1, 2, 3)).any() for f in frames)
    finally:
        viewer.server.stop()


def test_splats_for_viewer_covariances():
    g = {
        "means": np.zeros((2, 3), np.float32),
        "quats": np.array([[1, 0, 0, 0], [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]], np.float32),
        "scales": np.array([[1.0, 2.0, 3.0]] * 2, np.float32),
        "opacities": np.array([0.9, 0.5], np.float32),
        "sh": np.zeros((2, 1, 3), np.float32),
    }
    out = splats_for_viewer(g, 10)
    np.testing.assert_allclose(out["covariances"][0], np.diag([1.0, 4.0, 9.0]), atol=1e-6)
    np.testing.assert_allclose(out["covariances"][1], np.diag([4.0, 1.0, 9.0]), atol=1e-5)  # 90° about z
    np.testing.assert_allclose(out["rgbs"], 0.5)
    assert splats_for_viewer(g, 1)["opacities"].ravel().tolist() == [pytest.approx(0.9)]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Page:
    """A headless Chromium tab driven over the DevTools protocol (no extra Python packages)."""

    def __init__(self, browser: str, tmp: Path, width: int = 1200, height: int = 800):
        from websockets.sync.client import connect

        port = _free_port()
        self.proc = subprocess.Popen(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--ignore-gpu-blocklist",
                f"--remote-debugging-port={port}",
                f"--user-data-dir={tmp / 'chromium-profile'}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=1) as r:
                    pages = [t for t in json.loads(r.read()) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("headless chromium did not start")
            time.sleep(0.2)
        self._connection = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.ws = self._connection.__enter__()
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]

    def js(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expression}")

    def screenshot(self, rect: dict) -> np.ndarray:
        clip = {"x": rect["x"], "y": rect["y"], "width": rect["width"], "height": rect["height"], "scale": 1}
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", clip=clip)["data"])
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]

    def close(self) -> None:
        if hasattr(self, "_connection"):
            self._connection.__exit__(None, None, None)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_viewer_in_headless_chromium(run_dir, tmp_path):
    """The viewer on a free local port, loaded in headless Chromium: the canvas shows the splats (it changes
    when they are hidden, and has many colours), the timeline controls exist, and the imagined rollout
    appears beside the true one."""
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (`make chromium` installs Debian's package)")
    cfg = ViewConfig(run_dir / "run", port=_free_port())
    viewer = Viewer(cfg, find_sources(cfg))
    assert viewer.url.startswith("http://127.0.0.1:")
    page = None
    try:
        page = Page(browser, tmp_path)
        page.call("Page.navigate", url=viewer.url)
        # the timeline: its folder, the episode and step sliders, play and step buttons
        page.wait_for("document.body && document.body.innerText.includes('Timeline')")
        text = page.wait_for(
            "document.querySelectorAll('[role=slider]').length >= 3 && document.body.innerText.includes('Next step') "
            "&& document.body.innerText"
        )
        for label in ("Episode", "Step", "Play", "Previous step", "Splats", "Collision occupancy"):
            assert label in text, label
        # the first-person frame and the imagined one, with the returns in both worlds
        page.wait_for("document.body.innerText.includes('imagined from the episode')", timeout=30)
        assert page.js("Array.from(document.images).some(i => i.src.startsWith('data:image/png') && i.width > 100)")
        assert "imagined" in page.js("document.body.innerText")
        rect = page.wait_for(
            "(() => { const c = Array.from(document.querySelectorAll('canvas'))"
            ".sort((a, b) => b.width * b.height - a.width * a.height)[0];"
            " if (!c) return null; const r = c.getBoundingClientRect();"
            " return r.width > 100 ? {x: r.x, y: r.y, width: r.width, height: r.height} : null; })()"
        )
        time.sleep(3.0)  # splats sorted and drawn
        shown = page.screenshot(rect).astype(np.int16)
        for h in viewer.splat_handles:
            h.visible = False
        time.sleep(2.0)
        hidden = page.screenshot(rect).astype(np.int16)
        Path(cfg.path.parent / "view_screenshot.png").write_bytes(cv2.imencode(".png", shown[..., ::-1])[1].tobytes())
        colours = len(np.unique((shown // 8).reshape(-1, 3), axis=0))
        assert shown.std() > 10 and colours > 50, (shown.std(), colours)
        changed = (np.abs(shown - hidden).max(-1) > 30).mean()
        assert changed > 0.02, changed  # the splats cover part of the view
    finally:
        if page is not None:
            page.close()
        viewer.server.stop()
