"""Bad inputs to the training commands (collect, train-world-model, evaluate-world-model, starting
from saved weights, train-policy, validate, render) and to the dataset, model and env API: the
corpus of issue 16 (reconstruct, the demo and the Scene API are in test_bad_input_scenes.py).

Every CLI case asserts what a user gets (see `helpers.refused`): exit status 2, one line that names the
culprit, no traceback, and an output location that holds exactly what it held before. The inputs are
tiny and almost every case fails in validation, so the whole file takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import refused, write_user_files

from training.cli import main
from wmcore.errors import UserInputError

RES = 40


# ---------------------------------------------------------------------- shared inputs
@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A tiny twin (Scene), a dataset recorded in it by `collect`, a world model trained 2 steps by
    `train-world-model` (with a checkpoint), and a folder of images."""
    from scenes.truth_scene import truth_scene

    root = tmp_path_factory.mktemp("bad_input")
    scene = truth_scene(root / "scene", num_gaussians=2000, views=6)
    kwargs = json.dumps({"scene": str(scene), "width": RES, "height": RES})
    data = root / "data"
    assert (
        main(
            [
                "collect",
                "worldmodel/SceneNav-v0",
                "--out",
                str(data),
                "--episodes",
                "3",
                "--max-steps",
                "8",
                "--resolution",
                str(RES),
                str(RES),
                "--frames",
                "observation",
                "--env-kwargs",
                kwargs,
            ]
        )
        == 0
    )
    wm = root / "wm"
    assert main(["train-world-model", str(data), "--out", str(wm), *TINY_MODEL, "--steps", "2"]) == 0
    return {"root": root, "scene": scene, "data": data, "wm": wm, "model": wm / "model", "kwargs": Path(kwargs)}


TINY_MODEL = [
    "--model.context",
    "2",
    "--model.block-out-channels",
    "8",
    "16",
    "--model.reward-channels",
    "8",
    "--model.action-embed-dim",
    "8",
    "--batch-size",
    "2",
    "--eval-every",
    "0",
    "--checkpoint-every",
    "1",
    "--warmup-steps",
    "1",
]


# ---------------------------------------------------------------------- collect
def _collect(inputs, out: Path, *extra: str) -> list[str]:
    kwargs = str(inputs["kwargs"])
    return ["collect", "worldmodel/SceneNav-v0", "--out", str(out), "--env-kwargs", kwargs, *extra]


def test_collect_zero_episodes(capsys, inputs, tmp_path):
    out = tmp_path / "d"
    refused(capsys, _collect(inputs, out, "--episodes", "0"), out, "--episodes 0")


def test_collect_nan_in_env_kwargs(capsys, tmp_path):
    out = tmp_path / "d"
    args = ["collect", "CartPole-v1", "--out", str(out), "--env-kwargs", '{"width": NaN}']
    refused(capsys, args, out, "--env-kwargs", "NaN")


def test_collect_list_in_env_kwargs(capsys, inputs, tmp_path):
    out = tmp_path / "d"
    kwargs = json.dumps({"scene": str(inputs["scene"]), "width": [RES]})
    args = ["collect", "worldmodel/SceneNav-v0", "--out", str(out), "--env-kwargs", kwargs]
    refused(capsys, args, out, "width")


def test_collect_env_kwargs_not_an_object(capsys, tmp_path):
    out = tmp_path / "d"
    refused(capsys, ["collect", "CartPole-v1", "--out", str(out), "--env-kwargs", "[1, 2]"], out, "--env-kwargs")


def test_collect_unknown_environment(capsys, tmp_path):
    out = tmp_path / "d"
    refused(capsys, ["collect", "NoSuchEnv-v9", "--out", str(out)], out, "NoSuchEnv-v9")


def test_collect_zero_action_repeat(capsys, tmp_path):
    out = tmp_path / "d"
    refused(capsys, ["collect", "CartPole-v1", "--out", str(out), "--action-repeat", "0"], out, "--action-repeat")


def test_collect_zero_resolution(capsys, tmp_path):
    out = tmp_path / "d"
    refused(capsys, ["collect", "CartPole-v1", "--out", str(out), "--resolution", "0", "0"], out, "--resolution")


def test_collect_into_a_dataset_with_another_seed_changes_nothing(capsys, inputs, tmp_path):
    """The issue's case: refused, and the dataset's config.json still says its own seed."""
    out = tmp_path / "data"
    shutil.copytree(inputs["data"], out)
    refused(capsys, _collect(inputs, out, "--seed", "7"), out, str(out), "--append", "--overwrite")
    assert json.loads((out / "config.json").read_text())["seed"] == 0


def test_collect_append_to_no_dataset(capsys, inputs, tmp_path):
    out = tmp_path / "d"
    refused(capsys, _collect(inputs, out, "--append"), out, "--append", "dataset.json")


def test_collect_append_other_resolution_changes_nothing(capsys, inputs, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(inputs["data"], out)
    args = _collect(inputs, out, "--append", "--resolution", "32", "32", "--seed", "5")
    refused(capsys, args, out, str(out))


# ---------------------------------------------------------------------- train-world-model
def _bad_dataset(inputs, tmp_path: Path, edit) -> Path:
    data = tmp_path / "data"
    shutil.copytree(inputs["data"], data)
    index = json.loads((data / "dataset.json").read_text())
    edit(index)
    (data / "dataset.json").write_text(json.dumps(index))
    return data


def test_train_missing_dataset(capsys, tmp_path):
    out = tmp_path / "run"
    refused(capsys, ["train-world-model", str(tmp_path / "nope"), "--out", str(out)], out, "nope")


def test_train_dataset_json_wrong_type(capsys, inputs, tmp_path):
    data = _bad_dataset(inputs, tmp_path, lambda d: d.update(height="forty"))
    out = tmp_path / "run"
    refused(capsys, ["train-world-model", str(data), "--out", str(out)], out, "dataset.json", "forty")


def test_train_dataset_json_missing_key(capsys, inputs, tmp_path):
    data = _bad_dataset(inputs, tmp_path, lambda d: d.pop("action_space"))
    out = tmp_path / "run"
    refused(capsys, ["train-world-model", str(data), "--out", str(out)], out, "dataset.json", "action_space")


def test_train_dataset_json_bad_episode_entry(capsys, inputs, tmp_path):
    data = _bad_dataset(inputs, tmp_path, lambda d: d["episodes"][0].pop("steps"))
    out = tmp_path / "run"
    refused(capsys, ["train-world-model", str(data), "--out", str(out)], out, "dataset.json", "steps")


@pytest.mark.parametrize(
    "flag, value",
    [("--batch-size", "0"), ("--steps", "0"), ("--steps", "-5"), ("--processes", "0"), ("--processes", "3")],
)
def test_train_non_positive_counts(capsys, inputs, tmp_path, flag, value):
    out = tmp_path / "run"
    refused(capsys, ["train-world-model", str(inputs["data"]), "--out", str(out), flag, value], out, flag)


def test_train_nan_learning_rate(capsys, inputs, tmp_path):
    out = tmp_path / "run"
    refused(capsys, ["train-world-model", str(inputs["data"]), "--out", str(out), "--lr", "nan"], out, "--lr")


def test_train_out_is_a_file(capsys, inputs, tmp_path):
    out = tmp_path / "run"
    out.write_text("x")
    refused(capsys, ["train-world-model", str(inputs["data"]), "--out", str(out)], out, "is a file")


def test_train_rerun_with_other_channels_changes_nothing(capsys, inputs, tmp_path):
    """The issue's case: refused, and config.json still names the channels the weights have."""
    out = tmp_path / "wm"
    shutil.copytree(inputs["wm"], out)
    args = ["train-world-model", str(inputs["data"]), "--out", str(out), *TINY_MODEL]
    args[args.index("--model.block-out-channels") + 1 : args.index("--model.block-out-channels") + 3] = ["16", "16"]
    refused(capsys, args, out, "another model config")
    assert json.loads((out / "config.json").read_text())["model"]["block_out_channels"] == [8, 16]


def test_train_overwrite_starts_afresh(capsys, inputs, tmp_path):
    """What the refusal above points to: --overwrite replaces the run, its config and checkpoints."""
    out = tmp_path / "wm"
    shutil.copytree(inputs["wm"], out)
    args = ["train-world-model", str(inputs["data"]), "--out", str(out), *TINY_MODEL, "--steps", "1", "--overwrite"]
    args[args.index("--model.block-out-channels") + 1 : args.index("--model.block-out-channels") + 3] = ["16", "16"]
    assert main(args) == 0, capsys.readouterr().err
    assert "replacing the previous run" in (out / "log.txt").read_text()
    assert json.loads((out / "config.json").read_text())["model"]["block_out_channels"] == [16, 16]
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*")) == ["step_00000001"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wm"]


def test_train_into_a_users_folder(capsys, inputs, tmp_path):
    out = tmp_path / "keep"
    write_user_files(out)
    refused(capsys, ["train-world-model", str(inputs["data"]), "--out", str(out)], out, str(out), "--overwrite")


# ---------------------------------------------------------------------- evaluate-world-model
def _evaluate(inputs, out: Path, *extra: str, model: Path | None = None) -> list[str]:
    return ["evaluate-world-model", str(model or inputs["model"]), str(inputs["data"]), "--out", str(out), *extra]


def test_evaluate_bad_horizons(capsys, inputs, tmp_path):
    out = tmp_path / "e"
    refused(capsys, _evaluate(inputs, out, "--horizons", "0", "-3"), out, "--horizons")


def test_evaluate_zero_batch_size(capsys, inputs, tmp_path):
    out = tmp_path / "e"
    refused(capsys, _evaluate(inputs, out, "--batch-size", "0"), out, "--batch-size")


@pytest.mark.parametrize(
    "field, value", [("context", "four"), ("block_out_channels", 8), ("sigma_min", None), ("num_steps", 2.5)]
)
def test_evaluate_model_config_wrong_type(capsys, inputs, tmp_path, field, value):
    model = tmp_path / "model"
    shutil.copytree(inputs["model"], model)
    cfg = json.loads((model / "config.json").read_text())
    cfg[field] = value
    (model / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "e"
    refused(capsys, _evaluate(inputs, out, model=model), out, "config.json", field)


def test_evaluate_not_a_model(capsys, inputs, tmp_path):
    out = tmp_path / "e"
    refused(capsys, _evaluate(inputs, out, model=inputs["data"]), out, str(inputs["data"]))


def test_evaluate_into_a_previous_run(capsys, inputs, tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "metrics.json").write_text('{"next_frame_psnr": 20}')
    refused(capsys, _evaluate(inputs, out), out, "--overwrite")


# ---------------------------------------------------------------------- starting from saved weights
def test_train_init_not_a_model(capsys, inputs, tmp_path):
    out = tmp_path / "wm"
    args = ["train-world-model", str(inputs["data"]), "--out", str(out), "--init", str(inputs["data"])]
    refused(capsys, args, out, "--init", "not a saved world model")


def test_model_based_world_model_init_of_another_size(capsys, inputs, tmp_path):
    out = tmp_path / "mb"
    args = ["model-based", "room:assets/example_room", "--out", str(out), "--world-model-init", str(inputs["model"])]
    refused(capsys, args, out, "--world-model-init", "(64, 64)")  # reality at the default 64 x 64, the model 40


def test_model_based_world_model_processes_that_do_not_split_the_batch(capsys, tmp_path):
    out = tmp_path / "mb"
    args = ["model-based", "room:assets/example_room", "--out", str(out), "--world-model-processes", "3"]
    refused(capsys, args, out, "--world-model-processes 3", "--world-model-batch-size 16")


def test_train_world_model_rank_error_is_one_line(capsys, inputs, tmp_path):
    """Bad input found inside a spawned rank (the --init weights are read there) still ends with one line."""
    out = tmp_path / "wm"
    args = ["train-world-model", str(inputs["data"]), "--out", str(out), "--init", str(inputs["data"])]
    refused(capsys, [*args, "--processes", "2"], out, "--init", "not a saved world model")


def test_model_based_init_policy_not_a_policy(capsys, inputs, tmp_path):
    out = tmp_path / "mb"
    args = ["model-based", "room:assets/example_room", "--out", str(out), "--init-policy", str(inputs["data"])]
    refused(capsys, args, out, "--init-policy", "not a saved actor-critic policy")


def test_behaviour_cloning_dagger_views_of_another_size(capsys, inputs, tmp_path):
    out = tmp_path / "bc"
    args = ["behaviour-cloning", str(inputs["data"]), "--out", str(out), "--demonstrations", ""]
    args += ["--dagger-scene", str(inputs["scene"]), "--env.width", "32", "--env.height", "32"]
    refused(capsys, args, out, "--env.width 32", "recorded at")


# ---------------------------------------------------------------------- train-policy
def test_train_policy_zero_steps(capsys, inputs, tmp_path):
    out = tmp_path / "p"
    args = ["train-policy", str(inputs["model"]), str(inputs["data"]), "--out", str(out), "--total-steps", "0"]
    refused(capsys, args, out, "--total-steps")


def test_train_policy_gamma_above_one(capsys, inputs, tmp_path):
    out = tmp_path / "p"
    args = ["train-policy", str(inputs["model"]), str(inputs["data"]), "--out", str(out), "--hp.gamma", "2"]
    refused(capsys, args, out, "--hp.gamma")


def test_train_policy_not_a_model(capsys, inputs, tmp_path):
    out = tmp_path / "p"
    args = ["train-policy", str(tmp_path / "nomodel"), str(inputs["data"]), "--out", str(out)]
    refused(capsys, args, out, "nomodel")


# ---------------------------------------------------------------------- validate
def _validate(inputs, out: Path, *extra: str) -> list[str]:
    return ["validate", str(inputs["model"]), str(inputs["data"]), "--out", str(out), "--episodes", "1", *extra]


def test_validate_nan_goal(capsys, inputs, tmp_path):
    out = tmp_path / "v"
    refused(capsys, _validate(inputs, out, "--env-kwargs", '{"goal": [NaN, 0.0]}'), out, "NaN")


def test_validate_goal_not_numbers(capsys, inputs, tmp_path):
    out = tmp_path / "v"
    refused(capsys, _validate(inputs, out, "--env-kwargs", '{"goal": ["north", 1]}'), out, "goal")


def test_validate_zero_episodes(capsys, inputs, tmp_path):
    out = tmp_path / "v"
    refused(capsys, _validate(inputs, out, "--episodes", "0"), out, "--episodes")


def test_validate_unknown_policy(capsys, inputs, tmp_path):
    out = tmp_path / "v"
    refused(capsys, _validate(inputs, out, "--policies", str(tmp_path / "no_policy")), out, "no_policy")
    # the last of several is found before the first one's episodes, in the side process or not
    for beside in ("--beside", "--no-beside"):
        args = _validate(inputs, out, beside, "--policies", "random", "sticky", "noisy:0.5:nope")
        refused(capsys, args, out, "nope")


def test_validate_bad_eval_metrics(capsys, inputs, tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    out = tmp_path / "v"
    refused(capsys, _validate(inputs, out, "--eval-metrics", str(bad)), out, str(bad))


# ---------------------------------------------------------------------- render
def test_render_scene_without_scene(capsys, tmp_path):
    out = tmp_path / "r"
    refused(capsys, ["render", "--kind", "scene", "--out", str(out)], out, "--scene")


def test_render_episode_out_of_range(capsys, inputs, tmp_path):
    out = tmp_path / "r"
    args = ["render", "--kind", "compare", "--model", str(inputs["model"]), "--dataset", str(inputs["data"])]
    refused(capsys, [*args, "--episode", "99", "--out", str(out)], out, "--episode 99")


def test_render_snap_to_missing_dataset(capsys, inputs, tmp_path):
    out = tmp_path / "r"
    args = ["render", "--kind", "compare", "--model", str(inputs["model"]), "--dataset", str(inputs["data"])]
    refused(capsys, [*args, "--snap-to", str(tmp_path / "nodata"), "--out", str(out)], out, "nodata")


def test_render_zero_width(capsys, inputs, tmp_path):
    out = tmp_path / "r"
    args = ["render", "--kind", "scene", "--scene", str(inputs["scene"]), "--env-kwargs", '{"width": 0}']
    refused(capsys, [*args, "--out", str(out)], out, "width")


def test_render_zero_fps(capsys, inputs, tmp_path):
    out = tmp_path / "r"
    args = ["render", "--kind", "scene", "--scene", str(inputs["scene"]), "--fps", "0", "--out", str(out)]
    refused(capsys, args, out, "--fps")


# ---------------------------------------------------------------------- the Python API
def test_api_dream_env_zero_max_steps(inputs):
    from envs.dream_env import DreamEnv

    with pytest.raises(ValueError, match="max_steps"):
        DreamEnv(inputs["model"], inputs["data"], max_steps=0)


def test_api_dataset_not_an_object(tmp_path):
    from worldmodel.dataset import TrajectoryDataset

    (tmp_path / "dataset.json").write_text("[1, 2]")
    with pytest.raises(UserInputError, match="dataset.json"):
        TrajectoryDataset(tmp_path)


def test_api_model_config_not_an_object(tmp_path):
    from worldmodel.model import WorldModel

    (tmp_path / "config.json").write_text('"hello"')
    with pytest.raises(UserInputError, match="config.json"):
        WorldModel.from_pretrained(tmp_path)
