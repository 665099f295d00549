"""`worldmodel view PATH`: a Scene, a trajectory dataset or a run in the browser, on viser.

PATH may be

- a Scene directory (`worldmodel reconstruct`) or any 3DGS `.ply`: the splats, the capture's cameras, the
  floor and (a toggle) the collision occupancy;
- a trajectory dataset (`worldmodel collect`): the same scene (the one the dataset was recorded in) with
  every episode's path and its goal, and a timeline that plays an episode's first-person frames;
- a `validate` run, or any run directory whose `config.json` names a `model`, a `dataset` and a `scene`:
  the same, with the world model's imagined rollout beside the true one under the same actions (replayed
  from the episode's first L frames), step, action, reward and the episode's return in both worlds;
- a `demo` run: its twin, its datasets (the twin's episodes, reality's held-out ones, the loop's) and its
  final world model.

Splats are drawn by viser's own Gaussian-splat renderer in the browser (viser 0.2.7's experimental
`_add_gaussian_splats`: centres, covariances and degree-0 colours; view-dependent SH colour is dropped);
"splat centres" draws them as coloured points instead, for machines without WebGL2. Paths need poses
recorded with the episodes (datasets recorded since poses were stored; older ones show the timeline only).
Episodes recorded in reality (`room:DIR`) are carried into the twin's frame by the Sim(3) between the
capture's true and reconstructed cameras (`envs.reality.FloorMap`).

The server binds 127.0.0.1 by default and prints its URL; `--seconds` stops it after a while (tests).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from training.view_data import (
    Episodes,
    ViewSources,
    body_camera,
    capture_cameras,
    find_sources,
    imagine_episode,
    matrix_to_wxyz,
    png_data_url,
    splats_for_viewer,
)
from wmcore.errors import UserInputError

LOG = logging.getLogger("worldmodel.view")


@dataclass
class ViewConfig:
    """Look at a Scene, a trajectory dataset or a run (collect, validate, demo) in the browser."""

    path: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="SCENE_OR_RUN")]]
    """A Scene directory, a 3DGS .ply, a trajectory dataset, a validate run (or any run whose config.json names
    model, dataset and scene) or a demo run."""
    host: str = "127.0.0.1"
    """Address the server binds: this machine only by default; 0.0.0.0 shares it on the network."""
    port: int = 8080
    """Port to serve on (the next free one is taken when it is busy)."""
    scene: Path | None = None
    """The Scene drawn (default: the one PATH is or names)."""
    dataset: Path | None = None
    """The trajectory dataset whose episodes are shown (default: the one(s) PATH is or names)."""
    model: Path | None = None
    """The world model that imagines each episode under its actions (default: the one PATH names)."""
    episode: int = 0
    """The episode shown first."""
    max_splats: int = 300_000
    """Splats sent to the browser at most (the most opaque are kept)."""
    max_splat_size: float = 0.5
    """Splats whose largest standard deviation exceeds this many metres are not drawn (the few huge, faint
    floaters a reconstruction leaves around a room would fog the view); 0 draws them all."""
    denoising_steps: int | None = None
    """Denoising steps per imagined frame (None: the model's default)."""
    snap_to: Path | None = None
    """Show, at every imagined step, the nearest frame of this dataset (the model's training data, as `render
    --snap-to`); default: what PATH's run judged with (a demo run's RUN/loop/data when its loop snapped, a
    validate run's dataset with --snap-to-data), else the model's own frames."""
    plain: bool = False
    """Show the model's own imagined frames even where PATH's run snapped them to its data."""
    device: str = "cpu"
    """Torch device of the world model."""
    seed: int = 0
    """Seed of the imagined rollouts' sampling noise."""
    seconds: float | None = None
    """Serve this many seconds, then exit (None: until Ctrl-C)."""


# ---------------------------------------------------------------------------------------------- the viewer
class Viewer:
    """The viser server and its scene, timeline and imagination state."""

    def __init__(self, cfg: ViewConfig, sources: ViewSources):
        import viser

        self.cfg, self.src = cfg, sources
        self.lock = threading.RLock()
        self.scene = self._load_scene(sources.scene)
        self.datasets = {name: Episodes(p, sources.scene) for name, p in sources.datasets.items()}
        self.server = viser.ViserServer(host=cfg.host, port=cfg.port, verbose=False)
        self.server.scene.set_up_direction("+z")
        self.url = f"http://{cfg.host}:{self.server.get_port()}"
        self.core: Any = None
        self.core_error = ""
        self.memory: Any = None
        self.imagined: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        self.pending: set[tuple[str, int]] = set()
        self._draw_scene()
        self._build_gui()
        self._select_dataset(next(iter(self.datasets), None), cfg.episode)

    # ------------------------------------------------------------------ scene
    def _load_scene(self, path: Path | None) -> Any:
        if path is None:
            return None
        from scenes.scene import load_scene

        return load_scene(path)

    def _draw_scene(self) -> None:
        sc, s = self.server.scene, self.scene
        self.splat_handles: list[Any] = []
        self.point_handles: list[Any] = []
        self.camera_handles: list[Any] = []
        self.occupancy_handle = None
        where = None
        floor_z = 0.0
        lo, hi = np.array([-3.0, -3.0, 0.0]), np.array([3.0, 3.0, 2.0])
        if s is not None:
            floor_z, lo, hi = float(s.floor_z), np.asarray(s.bounds_min), np.asarray(s.bounds_max)
            if hasattr(s, "gaussians"):
                sp = splats_for_viewer(s.gaussians(), self.cfg.max_splats, self.cfg.max_splat_size)
                self.splat_handles.append(sc._add_gaussian_splats("/splats", **sp))
                self.point_handles.append(
                    sc.add_point_cloud(
                        "/splat_centres",
                        sp["centers"],
                        (sp["rgbs"] * 255).astype(np.uint8),
                        point_size=0.02,
                        visible=False,
                    )
                )
            cams = []
            if self.src.scene is not None and Path(self.src.scene).is_dir():
                cams = capture_cameras(Path(self.src.scene), float(s.metric_scale))
            if cams:  # look at where the capture looked from, not at the bounds (floaters widen them)
                where = np.array([c["c2w"][:3, 3] for c in cams])
                lo, hi = np.maximum(where.min(0) - 1.5, lo), np.minimum(where.max(0) + 1.5, hi)
            for i, cam in enumerate(cams):
                self.camera_handles.append(
                    sc.add_camera_frustum(
                        f"/capture/cam_{i:04d}",
                        fov=cam["fov"],
                        aspect=cam["aspect"],
                        scale=0.12,
                        color=(60, 120, 255),
                        wxyz=matrix_to_wxyz(cam["c2w"][:3, :3]),
                        position=cam["c2w"][:3, 3],
                    )
                )
            occ = getattr(s, "occupancy", None)
            if occ is not None:
                # what a body on the floor can run into: occupied voxels from the floor up to 2 m (the solid
                # ground under the floor and the ceiling would hide them)
                idx = np.argwhere(occ.occupied)
                pts = occ.origin + (idx + 0.5) * occ.voxel_size
                pts = pts[(pts[:, 2] > floor_z) & (pts[:, 2] < floor_z + 2.0)]
                if len(pts) > 150_000:
                    pts = pts[np.random.default_rng(0).choice(len(pts), 150_000, replace=False)]
                z = (pts[:, 2] - floor_z) / 2.0
                colors = np.stack([255 * z, 80 + 0 * z, 255 * (1 - z)], -1).astype(np.uint8)
                self.occupancy_handle = sc.add_point_cloud(
                    "/occupancy", pts.astype(np.float32), colors, point_size=occ.voxel_size * 0.8, visible=False
                )
        self.floor_z = floor_z
        sc.add_frame("/world_axes", axes_length=0.5, axes_radius=0.01, position=(0.0, 0.0, floor_z))
        size = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0)) * 1.2
        self.floor_handle = sc.add_grid(
            "/floor",
            width=size,
            height=size,
            cell_size=0.5,
            position=(float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2, floor_z),
        )
        c = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, floor_z])
        eye, target = c + np.array([-0.55, -0.55, 0.6]) * size, c
        if self.scene is not None and where is not None:
            # inside a captured room: from above the capture's cameras, looking across the floor (from outside,
            # the near wall and the floaters beyond it would hide the room)
            mid, spread = where.mean(0), np.ptp(where, 0)
            eye = np.array([mid[0] - 0.4 * spread[0], mid[1] - 0.4 * spread[1], where[:, 2].max() + 1.0])
            target = np.array([mid[0] + 0.3 * spread[0], mid[1] + 0.3 * spread[1], floor_z])

        @self.server.on_client_connect
        def _(client: Any) -> None:
            client.camera.position = tuple(float(v) for v in eye)
            client.camera.look_at = tuple(float(v) for v in target)
            client.camera.up_direction = (0.0, 0.0, 1.0)

    # ------------------------------------------------------------------ GUI
    def _build_gui(self) -> None:
        gui = self.server.gui
        lines = [f"**worldmodel view** · {self.src.kind}: `{self.cfg.path}`"]
        if self.scene is not None:
            n = getattr(self.scene, "num_gaussians", None)
            lines.append(f"scene `{self.src.scene}`" + (f" · {n:,} Gaussians" if n else ""))
        if self.src.model is not None:
            lines.append(f"world model `{self.src.model}`")
        gui.add_markdown("  \n".join(lines))
        with gui.add_folder("Scene"):
            self.cb_splats = gui.add_checkbox("Splats", True)
            self.cb_points = gui.add_checkbox("Splat centres (points)", False)
            self.cb_cameras = gui.add_checkbox("Capture cameras", True)
            self.cb_floor = gui.add_checkbox("Floor", True)
            self.cb_occupancy = gui.add_checkbox("Collision occupancy", False)
            self.cb_paths = gui.add_checkbox("Agent paths", True)

        def toggle(cb: Any, handles: Any) -> None:
            @cb.on_update
            def _(_: Any) -> None:
                for h in handles():
                    if h is not None:
                        h.visible = cb.value

        toggle(self.cb_splats, lambda: self.splat_handles)
        toggle(self.cb_points, lambda: self.point_handles)
        toggle(self.cb_cameras, lambda: self.camera_handles)
        toggle(self.cb_floor, lambda: [self.floor_handle])
        toggle(self.cb_occupancy, lambda: [self.occupancy_handle])
        toggle(self.cb_paths, lambda: self.path_handles)
        self.path_handles: list[Any] = []
        self.ds_name: str | None = None
        if not self.datasets:
            return
        self.sl_episode: Any = None
        self.sl_step: Any = None
        self.fd_timeline = gui.add_folder("Timeline")
        with self.fd_timeline:
            names = list(self.datasets)
            self.dd_dataset = gui.add_dropdown("Dataset", names, initial_value=names[0])
            self._episode_slider(len(self.datasets[names[0]]), 0)
            self._step_slider(self.datasets[names[0]].data.episodes[0].steps)
            self.cb_play = gui.add_checkbox("Play", False)
            self.sl_fps = gui.add_slider("Frames/s", 1, 30, 1, 6)
            self.bt_prev = gui.add_button("Previous step")
            self.bt_next = gui.add_button("Next step")
            self.md_frame = gui.add_markdown("", image_root=Path("."))
            self.md_episode = gui.add_markdown("", image_root=Path("."))

        @self.dd_dataset.on_update
        def _(_: Any) -> None:
            self._select_dataset(self.dd_dataset.value, 0)

        @self.bt_prev.on_click
        def _(_: Any) -> None:
            self.sl_step.value = max(0, int(self.sl_step.value) - 1)

        @self.bt_next.on_click
        def _(_: Any) -> None:
            self.sl_step.value = min(self.step_max, int(self.sl_step.value) + 1)

        threading.Thread(target=self._player, daemon=True).start()

    def _timeline(self) -> Any:
        """The timeline folder as a context, unless the GUI is already being built inside it."""
        import contextlib

        inside = self.server.gui._get_container_id() == self.fd_timeline._id
        return contextlib.nullcontext() if inside else self.fd_timeline

    def _episode_slider(self, n: int, value: int) -> None:
        """(Re)build the episode slider for n episodes (viser 0.2.7 sliders cannot change their range)."""
        old = self.sl_episode
        with self._timeline():
            sl = self.server.gui.add_slider(
                "Episode", 0, max(n - 1, 1), 1, min(value, max(n - 1, 1)), order=None if old is None else old.order
            )
        if old is not None:
            old.remove()
        sl.on_update(lambda _: self._select_episode(int(sl.value)))
        self.sl_episode = sl

    def _step_slider(self, steps: int) -> None:
        """(Re)build the step slider for an episode of `steps` steps (frames 0..steps)."""
        old = self.sl_step
        with self._timeline():
            sl = self.server.gui.add_slider("Step", 0, max(steps, 1), 1, 0, order=None if old is None else old.order)
        if old is not None:
            old.remove()
        sl.on_update(lambda _: self._show_step())
        self.sl_step, self.step_max = sl, max(steps, 1)

    def _player(self) -> None:
        while True:
            time.sleep(1.0 / max(float(self.sl_fps.value), 1.0))
            if self.cb_play.value and self.ds_name is not None:
                step = int(self.sl_step.value) + 1
                self.sl_step.value = 0 if step > self.step_max else step

    # ------------------------------------------------------------------ episodes and the timeline
    def _select_dataset(self, name: str | None, episode: int) -> None:
        if name is None:
            return
        with self.lock:
            self.ds_name = name
            eps = self.datasets[name]
            for h in self.path_handles:
                h.remove()
            self.path_handles = []
            self._draw_paths(eps)
            self.core, self.core_error = None, ""
            if self.src.model is not None:
                try:
                    from envs.dream_env import DreamCore

                    core = DreamCore(self.src.model, eps.data, 1, 10**6, self.cfg.device, self.cfg.denoising_steps)
                    if self.src.snap_to is not None:
                        core.memory = self._memory(core)
                    self.core = core
                except UserInputError as e:
                    self.core_error = str(e)
            episode = min(max(int(episode), 0), len(eps) - 1)
            self._episode_slider(len(eps), episode)
            self._select_episode(episode)

    def _memory(self, core: Any) -> Any:
        """The frames imagined ones snap to (--snap-to), built on the first model load and shared by every
        dataset's core."""
        if self.memory is None:
            core.snap_to(self.src.snap_to)
            self.memory = core.memory
        return self.memory

    def _draw_paths(self, eps: Episodes) -> None:
        sc = self.server.scene
        z = self.floor_z + 0.05
        for i, poses in enumerate(eps.poses):
            if poses is None or len(poses) < 2:
                continue
            ok = bool(eps.data.episodes[i].terminated[-1])
            pts = np.column_stack([poses[:, :2], np.full(len(poses), z)])
            self.path_handles.append(
                sc.add_spline_catmull_rom(
                    f"/paths/ep_{i:06d}",
                    pts,
                    line_width=1.5,
                    color=(40, 170, 80) if ok else (150, 150, 170),
                    segments=len(pts) * 2,
                    visible=self.cb_paths.value,
                )
            )
        goals = {tuple(np.round(g, 3)) for g in eps.goals if g is not None}
        for k, g in enumerate(sorted(goals)[:50]):
            pos = np.array([[g[0], g[1], z + 0.1]], np.float32)
            self.path_handles.append(
                sc.add_point_cloud(f"/goals/goal_{k}", pos, np.array([[230, 40, 40]], np.uint8), point_size=0.25)
            )
            self.path_handles.append(sc.add_label(f"/goals/label_{k}", "goal", position=(g[0], g[1], z + 0.4)))

    def _select_episode(self, i: int) -> None:
        with self.lock:
            eps = self.datasets[self.ds_name]
            self.episode = i
            ep = eps.data.episodes[i]
            if self.step_max != max(ep.steps, 1):
                self._step_slider(ep.steps)
            sc = self.server.scene
            poses = eps.poses[i]
            if poses is not None and len(poses) >= 2:
                pts = np.column_stack([poses[:, :2], np.full(len(poses), self.floor_z + 0.07)])
                self.current_path = sc.add_spline_catmull_rom(
                    "/current/path", pts, line_width=4.0, color=(255, 140, 0), segments=len(pts) * 2
                )
            else:
                sc.add_frame("/current/path", show_axes=False, visible=False)
            key = (self.ds_name, i)
            if self.core is not None and key not in self.imagined and key not in self.pending:
                if ep.steps >= self.core.L:
                    self.pending.add(key)
                    threading.Thread(target=self._imagine, args=(key,), daemon=True).start()
        self._show_step()

    def _imagine(self, key: tuple[str, int]) -> None:
        try:
            with self.lock:
                ep = self.datasets[key[0]].data.episodes[key[1]]
                self.imagined[key] = imagine_episode(self.core, ep, self.cfg.seed)
        except Exception as e:  # shown in the page rather than killing the server
            LOG.exception("imagining episode %s failed", key)
            self.core_error = f"imagining episode {key[1]} failed: {e}"
        finally:
            self.pending.discard(key)
        if (self.ds_name, self.episode) == key:
            self._show_step()

    def _show_step(self) -> None:
        with self.lock:
            if self.ds_name is None:
                return
            eps = self.datasets[self.ds_name]
            i = self.episode
            ep = eps.data.episodes[i]
            t = min(int(self.sl_step.value), ep.steps)
            imag = self.imagined.get((self.ds_name, i))
            true_frame = np.asarray(ep.frames[t])
            scale = max(1, 160 // true_frame.shape[0])
            panels = [true_frame]
            if imag is not None:
                panels += [np.full((true_frame.shape[0], 2, 3), 255, np.uint8), imag["frames"][t]]
            img = np.concatenate(panels, 1).repeat(scale, 0).repeat(scale, 1)
            title = "true | imagined" if imag is not None else "first-person frame"
            act = eps.action_text(ep.actions[t]) if t < ep.steps else "(end)"
            rt = float(ep.rewards[t - 1]) if t > 0 else 0.0
            true_so_far, true_total = float(ep.rewards[:t].sum()), float(ep.rewards.sum())
            md = [
                f"**{self.ds_name} · episode {i} · step {t} / {ep.steps}** · next action: `{act}`",
                f"![{title}]({png_data_url(img)})",
                "",
                "| | reward | return so far | episode return |",
                "|---|---|---|---|",
                f"| true | {rt:+.3f} | {true_so_far:+.3f} | {true_total:+.3f} |",
            ]
            if imag is not None:
                ri = float(imag["rewards"][t - 1]) if t > 0 else 0.0
                md.append(
                    f"| imagined | {ri:+.3f} | {float(imag['rewards'][:t].sum()):+.3f} | "
                    f"{float(imag['rewards'].sum()):+.3f} |"
                )
            self.md_frame.content = "\n".join(md)
            notes = []
            if self.core_error:
                notes.append(f"no imagined rollout: {self.core_error}")
            elif self.core is not None and imag is None:
                notes.append(
                    "imagining this episode…"
                    if (self.ds_name, i) in self.pending
                    else f"episode shorter than the model's {self.core.L} context frames"
                )
            elif self.core is not None:
                snapped = "" if self.core.memory is None else f", snapped to the nearest frames of {self.src.snap_to}"
                notes.append(f"imagined from the episode's first {self.core.L} frames under its actions{snapped}")
            if eps.note:
                notes.append(eps.note)
            meta = ep.meta or {}
            if meta.get("policy"):
                notes.append(f"policy `{meta['policy']}`" + (f" in {meta['world']}" if meta.get("world") else ""))
            self.md_episode.content = "  \n".join(notes) or " "
            poses = eps.poses[i]
            if poses is not None:
                x, y, h = (float(v) for v in poses[t])
                c2w = body_camera(x, y, h, self.floor_z + eps.eye)
                self.server.scene.add_camera_frustum(
                    "/current/agent",
                    fov=math.radians(70.0),
                    aspect=true_frame.shape[1] / true_frame.shape[0],
                    scale=0.25,
                    color=(255, 140, 0),
                    image=true_frame,
                    format="png",
                    wxyz=matrix_to_wxyz(c2w[:3, :3]),
                    position=c2w[:3, 3],
                )


def view(cfg: ViewConfig) -> Viewer:
    """Serve the viewer; blocks until Ctrl-C (or `cfg.seconds` have passed) and returns it stopped."""
    src = find_sources(cfg)
    viewer = Viewer(cfg, src)
    print(f"worldmodel view: open {viewer.url} in a browser (Ctrl-C stops)", flush=True)
    LOG.info("serving %s at %s", cfg.path, viewer.url)
    t0 = time.time()
    try:
        while cfg.seconds is None or time.time() - t0 < cfg.seconds:
            time.sleep(0.2)
    finally:
        viewer.server.stop()
    return viewer
