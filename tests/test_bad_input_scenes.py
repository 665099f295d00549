"""Bad inputs to `reconstruct`, the demo and the Scene API, and one case through the real program
(the corpus of issue 16; the training commands are in test_bad_input_training.py).

Every CLI case asserts what a user gets (see `helpers.refused`): exit status 2, one line that names the
culprit, no traceback, and an output location that holds exactly what it held before. Every case fails
in validation, so the whole file takes seconds.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import refused, snapshot, write_user_files

from wmcore.errors import UserInputError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def twin(tmp_path_factory) -> Path:
    """A tiny twin (Scene)."""
    from scenes.truth_scene import truth_scene

    return truth_scene(tmp_path_factory.mktemp("bad_input") / "scene", num_gaussians=2000, views=6)


# ---------------------------------------------------------------------- reconstruct
def _capture(root: Path) -> Path:
    """A photo folder (ingest is never reached in these cases: every one fails in validation)."""
    folder = root / "photos"
    if not folder.exists():
        folder.mkdir()
        rng = np.random.default_rng(0)
        import cv2

        for i in range(4):
            cv2.imwrite(str(folder / f"p{i}.png"), rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
    return folder


def test_reconstruct_missing_input(capsys, tmp_path):
    out = tmp_path / "scene"
    refused(capsys, ["reconstruct", str(tmp_path / "nope.mp4"), "--out", str(out)], out, "nope.mp4")


def test_reconstruct_output_is_a_file(capsys, tmp_path):
    out = tmp_path / "scene"
    out.write_text("a file the user keeps")
    refused(capsys, ["reconstruct", str(_capture(tmp_path)), "--out", str(out)], out, str(out), "is a file")


def test_reconstruct_output_under_a_file(capsys, tmp_path):
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "scene"
    refused(capsys, ["reconstruct", str(_capture(tmp_path)), "--out", str(out)], tmp_path / "f", "is a file")


def test_reconstruct_output_not_writable(capsys, tmp_path):
    out = Path("/proc/worldmodel-scene")
    refused(capsys, ["reconstruct", str(_capture(tmp_path)), "--out", str(out)], out, "--out", "cannot write")


def test_reconstruct_never_replaces_a_users_folder(capsys, tmp_path):
    out = tmp_path / "keep"
    write_user_files(out)
    refused(capsys, ["reconstruct", str(_capture(tmp_path)), "--out", str(out)], out, str(out), "--overwrite")


def test_reconstruct_overwrite_replaces_only_a_previous_run(capsys, tmp_path):
    out = tmp_path / "keep"
    write_user_files(out)
    args = ["reconstruct", str(_capture(tmp_path)), "--out", str(out), "--overwrite"]
    refused(capsys, args, out, "not a worldmodel run")


@pytest.mark.parametrize(
    "option, culprits",
    [
        pytest.param(["--ingest.scale-from", "two metres"], ["--scale-from", "two metres"], id="scale-from-words"),
        pytest.param(["--ingest.scale-from", "p0,p1,-2"], ["--scale-from", "-2"], id="scale-from-negative-distance"),
        pytest.param(["--train.iterations", "0"], ["--train.iterations"], id="zero-iterations"),
        pytest.param(["--method", "nerf"], ["nerf"], id="unknown-method"),
        pytest.param(["--min-views", "0"], ["--min-views"], id="min-views-zero"),
        pytest.param(["--voxel-size", "nan"], ["--voxel-size"], id="nan-voxel-size"),
        pytest.param(
            ["--device", "cuda"],
            ["--device"],
            id="cuda-without-a-gpu",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA"),
        ),
    ],
)
def test_reconstruct_bad_option_is_refused_before_any_work(capsys, tmp_path, option, culprits):
    out = tmp_path / "scene"
    refused(capsys, ["reconstruct", str(_capture(tmp_path)), "--out", str(out), *option], out, *culprits)


def test_reconstruct_failed_overwrite_puts_the_previous_run_back(capsys, tmp_path):
    """A run --overwrite replaces stays until the new one has finished: here ingest fails (too few
    images) after the run started, and the previous Scene is back, byte for byte."""
    out = tmp_path / "scene"
    out.mkdir()
    (out / "scene.json").write_text("{}")
    (out / "splats.ply").write_bytes(b"old")
    few = tmp_path / "few"
    few.mkdir()
    import cv2

    cv2.imwrite(str(few / "a.png"), np.zeros((16, 16, 3), np.uint8))
    cv2.imwrite(str(few / "b.png"), np.zeros((16, 16, 3), np.uint8))
    refused(capsys, ["reconstruct", str(few), "--out", str(out), "--overwrite"], out, str(few))


# ---------------------------------------------------------------------- demo
def test_demo_into_a_non_empty_folder(capsys, tmp_path):
    out = tmp_path / "keep"
    write_user_files(out)
    refused(capsys, ["demo", "--out", str(out)], out, str(out), "--resume")


def test_demo_output_is_a_file(capsys, tmp_path):
    out = tmp_path / "demo"
    out.write_text("x")
    refused(capsys, ["demo", "--out", str(out)], out, "is a file")


def test_demo_checks_stage_options_first(capsys, tmp_path):
    out = tmp_path / "demo"
    flag = "--reconstruct.train.iterations"  # nested options are named as the demo spells them
    refused(capsys, ["demo", "--out", str(out), flag, "0"], out, flag)


def test_demo_zero_resolution(capsys, tmp_path):
    out = tmp_path / "demo"
    refused(capsys, ["demo", "--out", str(out), "--resolution", "0"], out, "--resolution")


@pytest.mark.parametrize(
    "flag,value",
    [("--collision-penalty", "-1"), ("--loop.policy-frames", "0"), ("--supersample", "0"), ("--seed", "-1")],
)
def test_demo_refuses_a_negative_bump_price_or_seed_no_frames_or_no_rays(capsys, tmp_path, flag, value):
    out = tmp_path / "demo"
    refused(capsys, ["demo", "--out", str(out), flag, value], out, flag)


# ---------------------------------------------------------------------- the Python API
def test_api_render_nan_pose(twin):
    from scenes.scene import Scene

    scene = Scene.load(twin)
    pose = np.eye(4)
    pose[0, 3] = math.nan
    K = np.array([[30.0, 0, 20], [0, 30, 20], [0, 0, 1]])
    with pytest.raises(ValueError, match="NaN"):
        scene.render(pose, K, 40, 40)


def test_api_raycast_nan_direction(twin):
    from scenes.scene import Scene

    scene = Scene.load(twin)
    with pytest.raises(ValueError, match="NaN"):
        scene.raycast(np.zeros((1, 3)), np.array([[math.nan, 0, 0]]), 5.0)


def test_api_is_free_wrong_shape(twin):
    from scenes.scene import Scene

    scene = Scene.load(twin)
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        scene.is_free(np.zeros((3, 2)))


def test_api_scene_json_nan_scale(twin, tmp_path):
    from scenes.scene import Scene

    scene = tmp_path / "scene"
    shutil.copytree(twin, scene)
    text = (scene / "scene.json").read_text()
    meta = json.loads(text)
    meta["metric_scale"] = "NaN"
    (scene / "scene.json").write_text(json.dumps(meta).replace('"NaN"', "NaN"))
    with pytest.raises(UserInputError, match="metric_scale"):
        Scene.load(scene)


def test_api_scene_env_nan_goal(twin):
    from envs.scene_env import SceneEnv

    with pytest.raises(ValueError, match="goal"):
        SceneEnv(twin, goal=(math.nan, 0.0))


def test_api_open_run_refuses_a_users_folder(tmp_path):
    from wmcore.rundir import open_run

    out = tmp_path / "keep"
    write_user_files(out)
    before = snapshot(out)
    with pytest.raises(UserInputError, match="--overwrite"):
        with open_run(out, {"a": 1}):
            pass
    assert snapshot(out) == before


def test_api_scale_from_checked_alone():
    from scenes.normalize import check_scale_spec

    with pytest.raises(UserInputError, match="camera-height:0"):
        check_scale_spec("camera-height:0")


# ---------------------------------------------------------------------- the real program
def test_the_program_exits_2_without_a_traceback(tmp_path):
    """One case through the installed entry point's module: the exit status and stderr a shell sees."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.cli",
            "collect",
            "CartPole-v1",
            "--out",
            str(tmp_path / "d"),
            "--episodes",
            "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: --episodes 0")
    assert not (tmp_path / "d").exists()
