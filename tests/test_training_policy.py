"""train-policy: both algorithms train in imagination, save, load without pickle and act in the
SceneEnv; the native actor-critic learns an imagined task whose reward depends only on the action."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_model_based_loop, tiny_world_model

from envs.scene_config import SceneEnvConfig
from envs.scene_env import SceneEnv
from scenes.truth_scene import truth_scene
from training.actor_critic import ActorCritic, ActorCriticNetConfig, PPOHyperparameters, train_actor_critic
from training.policies import load_policy
from training.train_policy import TrainPolicyConfig, train_policy
from wmcore.errors import UserInputError
from worldmodel.action_space import ActionSpace
from worldmodel.dataset import DatasetWriter
from worldmodel.model import WorldModel

RES = 40


def build_setup(root: Path, context: int = 2, episodes: int = 3, max_steps: int = 12):
    """A 40x40 SceneEnv, a dataset of random episodes recorded from its observations, and a tiny
    (untrained) world model over that data."""
    scene = truth_scene(root / "scene", num_gaussians=3000, views=8)
    env = SceneEnv(scene, width=RES, height=RES, max_steps=max_steps)
    writer = DatasetWriter(root / "data", ActionSpace.from_gym(env.action_space), (RES, RES))
    rng = np.random.default_rng(0)
    for ep in range(episodes):
        obs, _ = env.reset(seed=ep)
        frames, acts, rews, terms, truncs = [obs], [], [], [], []
        done = False
        while not done:
            a = int(rng.integers(3))
            obs, r, te, tr, _ = env.step(a)
            frames.append(obs)
            acts.append(a)
            rews.append(r)
            terms.append(te)
            truncs.append(tr)
            done = te or tr
        writer.add(np.stack(frames), acts, rews, terms, truncs)
    tiny_world_model(resolution=(RES, RES), context=context, num_steps=1).save_pretrained(root / "model")
    return env, root / "model", root / "data"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return build_setup(tmp_path_factory.mktemp("policy"))


def small_run(model: Path, data: Path, out: Path, algorithm: str, **kw) -> TrainPolicyConfig:
    """32 imagined steps in 4 environments with a small network: the whole loop, quickly."""
    return TrainPolicyConfig(
        model,
        data,
        out=out,
        algorithm=algorithm,
        total_steps=32,
        num_envs=4,
        max_steps=5,
        hp=PPOHyperparameters(rollout_steps=4, epochs=1, minibatches=2),
        channels=(8, 16, 16),
        hidden=32,
        **kw,
    )


@pytest.mark.parametrize("algorithm", ["actor-critic", "ppo"])
def test_train_policy_saves_a_policy_that_acts_in_scene_env(setup, tmp_path, algorithm, monkeypatch):
    env, model, data = setup
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = train_policy(small_run(model, data, tmp_path / "run", algorithm))
    assert not list((tmp_path / "tmp").iterdir())  # nothing left behind in the temporary folder (SB3's logger)
    for name in ("config.json", "log.txt", "metrics.jsonl", "summary.json"):
        assert (tmp_path / "run" / name).is_file()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] >= 32 and summary["steps_per_second"] > 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all("steps_per_second" in r for r in rows)
    meta = json.loads((path / "policy.json").read_text())
    assert meta["algorithm"] == ("actor-critic" if algorithm == "actor-critic" else "sb3-ppo")
    assert not list(path.glob("*.zip")) and not list(path.glob("*.pkl"))

    policy = load_policy(path)
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        action, _ = policy.predict(obs, deterministic=True)
        assert env.action_space.contains(int(action))
        obs, *_ = env.step(int(action))
    batch = np.stack([obs, obs])
    actions, _ = policy.predict(batch, deterministic=True)
    assert np.asarray(actions).shape == (2,)
    # The reloaded policy is the trained one: same deterministic actions on the same observations.
    again = load_policy(path)
    np.testing.assert_array_equal(again.predict(batch, deterministic=True)[0], actions)


def test_load_policy_bad_input(tmp_path):
    with pytest.raises(UserInputError, match="not a saved policy"):
        load_policy(tmp_path)
    (tmp_path / "policy.json").write_text("{not json")
    with pytest.raises(UserInputError, match="invalid JSON"):
        load_policy(tmp_path)
    (tmp_path / "policy.json").write_text("[1, 2]")
    with pytest.raises(UserInputError, match="not a worldmodel policy"):
        load_policy(tmp_path)


def action_only_reward_model(model_dir: Path) -> tuple[Path, np.ndarray]:
    """A world model (context 1) whose reward ignores the frames: r(a) spans [0, 1] over the
    three actions, and which never terminates."""
    model = tiny_world_model(resolution=(RES, RES), context=1, num_steps=1)
    head = model.reward_model.head
    action_features = model.config.reward_channels[-1]  # the head's input: frame features, then the actions'
    frames = torch.zeros(3, 1, RES, RES, 3, dtype=torch.uint8)
    actions = torch.arange(3)[:, None]
    with torch.no_grad():
        head[0].weight[:, :-action_features] = 0.0  # drop the frame features
        head[2].weight[1] = 0.0
        head[2].bias[1] = -20.0  # termination logit: never
        r, _ = model.predict_reward_termination(frames, actions, frames[:, 0])
        lo, hi = float(r.min()), float(r.max())
        head[2].weight[0] /= hi - lo
        head[2].bias[0] = (head[2].bias[0] - lo) / (hi - lo)
    model.save_pretrained(model_dir)
    rewards, term = WorldModel.from_pretrained(model_dir).predict_reward_termination(frames, actions, frames[:, 0])
    assert not term.any()
    return model_dir, rewards.numpy()


def test_actor_critic_learns_the_rewarded_action(setup, tmp_path):
    from gymnasium.vector import AutoresetMode

    from envs.dream_env import DreamVectorEnv

    data = setup[2]
    model, rewards = action_only_reward_model(tmp_path / "model")
    best = int(np.argmax(rewards))
    assert rewards.max() - np.sort(rewards)[-2] > 0.05  # a real preference to learn
    env = DreamVectorEnv(model, data, num_envs=8, max_steps=8, autoreset_mode=AutoresetMode.SAME_STEP)
    torch.manual_seed(0)
    agent = ActorCritic(
        ActorCriticNetConfig(
            observation_shape=(RES, RES, 3), action_space={"kind": "discrete", "n": 3}, channels=(8, 16, 16), hidden=32
        )
    )
    obs = torch.as_tensor(env.reset(seed=0)[0])
    before = torch.softmax(agent(obs), -1)[:, best].mean().item()
    summary = train_actor_critic(
        agent,
        env,
        total_steps=8 * 8 * 12,
        hp=PPOHyperparameters(learning_rate=3e-3, rollout_steps=8, epochs=4, minibatches=2, ent_coef=0.0),
        seed=0,
        progress=False,
    )
    with torch.no_grad():
        after = torch.softmax(agent(obs), -1)[:, best].mean().item()
    assert before < 0.4 and after > 0.6, (before, after, rewards)  # from ~1/3 (measured: 0.33 -> 0.86)
    assert summary["steps"] == 8 * 8 * 12


def test_model_based_loop_counts_real_steps_and_keeps_learning(setup, tmp_path):
    """Reality is the true room; the loop starts from free data, collects real episodes with its policy,
    resumes the world model and keeps training the same policy (one that sees its last two views)."""
    from scenes.synthetic import EXAMPLE_DIR
    from training.model_based import ModelBasedConfig, model_based
    from worldmodel.dataset import TrajectoryDataset

    env, model, data = setup
    free = TrajectoryDataset(data)
    cfg = ModelBasedConfig(
        f"room:{EXAMPLE_DIR}",
        out=tmp_path / "mb",
        env_kwargs='{"goal": [-2.2, -0.8]}',
        resolution=(RES, RES),
        episode_steps=10,
        init_data=data,
        real_episodes=2,
        hp=PPOHyperparameters(rollout_steps=4, epochs=1, minibatches=2),
        deploy="best_real",
        policy_frames=2,
        **tiny_model_based_loop(),
    )
    result = model_based(cfg)
    data_after = TrajectoryDataset(tmp_path / "mb" / "data")
    real = [e for e in data_after.episodes if (e.meta or {}).get("world") == "reality"]
    # the free episodes first, then 2 real per iteration and 2 by the last policy, which the choice needs
    assert len(data_after) == len(free) + 6 and len(real) == 6
    assert result["real_steps"] == sum(e.steps for e in real) and result["free_episodes"] == len(free)
    assert [row["collected_with"] for row in result["iterations"]] == ["sticky", "policy_iter_0"]
    assert result["iterations"][-1]["real_steps"] == sum(e.steps for e in real[:4])  # then the last policy's 2
    # The world model kept training across iterations (resumed to 2 + 2 steps), and the policy acts on 20x20 views.
    log = (tmp_path / "mb" / "world_model" / "log.txt").read_text()
    assert "resumed" in log and "done at step 4" in log
    assert "world model: trained to step 4 in" in (tmp_path / "mb" / "log.txt").read_text()
    # its world-model phases in as many processes as asked (spawned ranks: the trainer's own tests run them)
    from training.model_based import _world_model_config

    assert _world_model_config(dataclasses.replace(cfg, world_model_processes=2), data, 4, 0).processes == 2
    assert json.loads((tmp_path / "mb" / "world_model" / "model" / "config.json").read_text())["downsample"] == 2
    policy = load_policy(tmp_path / "mb" / "policy")
    assert policy.config.input_size == RES // 2 and policy.config.frames == 2  # it sees its last two views
    assert (tmp_path / "mb" / "policy_iter_0" / "policy.json").is_file()
    deployed = result["deploy"]["deployed"]
    assert [c["policy"] for c in result["deploy"]["candidates"]] == ["policy_iter_0", "policy_iter_1"]
    saved = json.loads((tmp_path / "mb" / "policy" / "policy.json").read_text())
    assert saved["trained_in"]["deployed"] == deployed
    same = load_policy(tmp_path / "mb" / deployed)
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), same.state_dict().values()))
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(int(policy.predict(obs)[0]))


def test_the_loop_deploys_the_policy_with_the_best_real_episodes():
    from training.model_based import choose_deployed

    # success first, then return, then the later policy
    assert choose_deployed([("a", 0.5, 1.0), ("b", 0.7, 0.0), ("c", 0.6, 9.0)], 10)["deployed"] == "b"
    assert choose_deployed([("a", 0.5, 1.0), ("b", 0.5, 2.0)], 10)["deployed"] == "b"
    # an env that reports no success (CarRacing, Atari: an ending may be a crash): by return alone
    assert choose_deployed([("a", None, 9.4), ("b", None, -59.0)], 16)["deployed"] == "a"
    tie = choose_deployed([("a", 0.5, 2.0), ("b", 0.5, 2.0)], 10)
    assert tie["deployed"] == "b" and tie["candidates"][0] == {
        "policy": "a",
        "success": 0.5,
        "return": 2.0,
        "episodes": 10,
    }


def test_actor_critic_continuous_actions_stay_in_the_box(tmp_path):
    space = {"kind": "box", "low": [-1.0, 0.0], "high": [1.0, 0.5]}
    agent = ActorCritic(
        ActorCriticNetConfig(observation_shape=(40, 48, 3), action_space=space, channels=(8, 16, 16), hidden=32)
    )
    obs = np.random.default_rng(0).integers(0, 256, (5, 40, 48, 3), dtype=np.uint8)
    with torch.no_grad():
        agent.log_std.fill_(2.0)  # wide Gaussian: samples fall outside the box and must be clipped
    a, _ = agent.predict(obs, deterministic=False)
    assert a.shape == (5, 2) and a.dtype == np.float32
    assert (a >= [-1.0, 0.0]).all() and (a <= [1.0, 0.5]).all()
    agent.save(tmp_path / "p")
    again = load_policy(tmp_path / "p")
    np.testing.assert_array_equal(again.predict(obs)[0], agent.predict(obs)[0])
    assert again.predict(obs[0])[0].shape == (2,)


def test_train_policy_on_two_cpu_processes(setup, tmp_path):
    """`torchrun --nproc_per_node 2 -m training.train_policy`: two processes imagine from their own
    starts, average gradients, and end with identical agents; the main one saves the policy."""
    import os
    import subprocess
    import sys

    _, model, data = setup
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [
            str(Path(sys.executable).with_name("torchrun")),
            "--nproc_per_node",
            "2",
            "-m",
            "training.train_policy",
            str(model),
            str(data),
            "--out",
            str(tmp_path / "ddp"),
            "--algorithm",
            "actor-critic",
            "--total-steps",
            "32",
            "--num-envs",
            "2",
            "--hp.rollout-steps",
            "4",
            "--channels",
            "8",
            "16",
            "16",
            "--hidden",
            "32",
        ],
        cwd=repo,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps_all_processes"] == 32 and summary["processes_in_sync"]
    assert load_policy(tmp_path / "ddp" / "policy").predict(np.zeros((RES, RES, 3), np.uint8))[0].shape == ()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_actor_critic_trains_with_the_world_model_and_policy_on_cuda(setup, tmp_path):
    env, model, data = setup
    path = train_policy(small_run(model, data, tmp_path / "run", "actor-critic", device="cuda"))
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] >= 32
    policy = load_policy(path)  # saved from the GPU, loaded on the CPU
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))


def test_train_policy_in_the_twin_saves_checkpoints_and_a_learning_curve(tmp_path):
    """`worldmodel train-policy-scene`: SB3 PPO on a SceneVectorEnv; checkpoints at steps 0, 32, 64
    and the end, each a saved policy that loads and acts in SceneEnv; each evaluated on held-out
    seeds in learning_curve.json; bad options are refused with a message naming them."""
    from training.cli import main
    from training.train_policy_scene import TrainPolicySceneConfig, train_policy_scene

    scene = truth_scene(tmp_path / "scene", num_gaussians=3000, views=8)
    task = SceneEnvConfig(width=RES, height=RES, max_steps=6, goal=(-2.2, -0.8))
    cfg = TrainPolicySceneConfig(
        scene,
        env=task,
        out=tmp_path / "twin",
        total_steps=80,
        num_envs=4,
        checkpoint_every=32,
        eval_episodes=3,
        hidden=32,
        hp=PPOHyperparameters(rollout_steps=8, epochs=1, minibatches=2),
    )
    path = train_policy_scene(cfg)
    curve = json.loads((tmp_path / "twin" / "learning_curve.json").read_text())
    assert [r["steps"] for r in curve["rows"]] == [0, 32, 64, 96]
    assert [r["checkpoint"] for r in curve["rows"]] == [f"checkpoints/step_{s:06d}" for s in (0, 32, 64, 96)]
    assert all(
        r["eval"]["episodes"] == 3 and 0 <= r["eval"]["success_ci95"][0] <= r["eval"]["success_ci95"][1] <= 1
        for r in curve["rows"]
    )
    assert all(b["seconds"] >= a["seconds"] for a, b in zip(curve["rows"], curve["rows"][1:]))
    summary = json.loads((tmp_path / "twin" / "summary.json").read_text())
    assert summary["steps"] == 96 and summary["world"] == "twin" and "steps_to_50pct_success" in summary
    assert json.loads((path / "policy.json").read_text())["trained_in"]["env_kwargs"]["goal"] == [-2.2, -0.8]
    env = SceneEnv(scene, width=RES, height=RES, max_steps=6, goal=(-2.2, -0.8))
    obs, _ = env.reset(seed=0)
    for row in curve["rows"]:
        action, _ = load_policy(tmp_path / "twin" / row["checkpoint"]).predict(obs, deterministic=True)
        assert env.action_space.contains(int(action))
    rows = [json.loads(line) for line in (tmp_path / "twin" / "metrics.jsonl").read_text().splitlines()]
    assert rows and all("seconds" in r and "steps_per_second" in r for r in rows)

    for bad, match in (
        (dataclasses.replace(task, depth=True), "RGB"),
        (dataclasses.replace(task, width=16), "36x36"),
        (dataclasses.replace(task, goal=(40.0, 0.0)), "not in the scene's free floor space"),
    ):
        with pytest.raises(UserInputError, match=match):
            train_policy_scene(TrainPolicySceneConfig(scene, env=bad, out=tmp_path / "bad", total_steps=8))
    assert main(["train-policy-scene", str(tmp_path / "nope"), "--out", str(tmp_path / "bad")]) == 2
    # the task's options are flags of their own (--env.*), not a JSON string
    with pytest.raises(SystemExit) as exit_:
        main(["train-policy-scene", str(scene), "--env.speed", "3", "--out", str(tmp_path / "bad")])
    assert exit_.value.code == 2


class _RepeatedView:
    """A vector env whose reward asks whether the view just changed: each step shows a new 8x8 view of one random
    colour or, half of the time, the same one again (a blocked step looks like that); action 1 pays where it is
    the same, action 0 where it changed. One frame cannot tell them apart (half the reward at best); two can."""

    def __init__(self, n: int = 32, horizon: int = 4):
        from gymnasium import spaces

        self.num_envs, self.horizon = n, horizon
        self.single_observation_space = spaces.Box(0, 255, (8, 8, 3), np.uint8)
        self.rng = np.random.default_rng(0)

    def _new(self, k: int) -> np.ndarray:
        return np.broadcast_to(self.rng.integers(0, 256, (k, 1, 1, 3), dtype=np.uint8), (k, 8, 8, 3)).copy()

    def reset(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)
        # a first view counts as unchanged: a policy's memory starts with it repeated
        self.obs, self.same, self.t = self._new(self.num_envs), np.ones(self.num_envs, bool), np.zeros(self.num_envs)
        return self.obs.copy(), {}

    def step(self, actions):
        reward = (np.asarray(actions) == self.same.astype(int)).astype(np.float32)
        self.t += 1
        self.same = self.rng.random(self.num_envs) < 0.5
        nxt = np.where(self.same[:, None, None, None], self.obs, self._new(self.num_envs))
        trunc = self.t >= self.horizon
        info = {"final_obs": nxt.copy()}
        self.obs = nxt
        if trunc.any():  # same-step autoreset: a fresh first view
            self.obs[trunc], self.same[trunc], self.t[trunc] = self._new(int(trunc.sum())), True, 0
        return self.obs.copy(), reward, np.zeros(self.num_envs, bool), trunc, info


@pytest.mark.parametrize("frames", [1, 2])
def test_stacked_frames_let_the_policy_see_a_repeated_view(frames, tmp_path):
    """PPO on the stacked inputs learns to answer "did the view change?" with two frames and cannot with one; the
    saved policy keeps its frames, and `predict`'s own memory (restarted at episode_start) gives the same inputs
    as stacking the episode."""
    env = _RepeatedView()
    torch.manual_seed(0)
    space = {"kind": "discrete", "n": 2}
    agent = ActorCritic(ActorCriticNetConfig((8, 8, 3), space, channels=(8, 16, 16), hidden=32, frames=frames))
    hp = PPOHyperparameters(learning_rate=5e-3, rollout_steps=8, epochs=16, minibatches=2, ent_coef=0.0)
    train_actor_critic(agent, env, total_steps=32 * 8 * 30, hp=hp, seed=0, progress=False)
    agent.eval().save(tmp_path / "p")
    policy = load_policy(tmp_path / "p")
    assert policy.config.frames == frames

    eval_env = _RepeatedView(n=64, horizon=8)
    obs, _ = eval_env.reset(seed=123)
    right, first = [], np.ones(64, bool)
    for _ in range(8):
        a = policy.predict(obs, episode_start=first, deterministic=True)[0]
        right.append(a[~first] == eval_env.same[~first].astype(int))
        obs, _, _, trunc, _ = eval_env.step(a)
        first = trunc
    accuracy = float(np.mean(np.concatenate(right)))
    if frames == 2:
        assert accuracy > 0.9, accuracy
    else:
        assert 0.35 < accuracy < 0.65, accuracy  # chance: one frame shows nothing of the step before

    episode = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    stacked, inputs = policy.stack_episode(episode), None
    assert stacked.shape == (5, 8, 8, 3 * frames)
    for t in range(5):
        inputs = policy.stack(inputs, episode[t][None], [t == 0])
        np.testing.assert_array_equal(inputs[0], stacked[t])
    twice = np.concatenate([episode, episode])  # two episodes back to back: the memory restarts at the second
    acts = [policy.predict(o, episode_start=[t % 5 == 0], deterministic=True)[0] for t, o in enumerate(twice)]
    np.testing.assert_array_equal(acts, policy.act_on(np.concatenate([stacked, stacked]), deterministic=True))


def test_drac_makes_augmented_views_answered_as_the_views_themselves():
    """Fitting a policy and value to targets on some views, with the DrAC term they answer augmented views (shifted,
    blurred, exposure changed) as they answer the views themselves, far more so than without it."""
    from training.actor_critic import augmentation_loss
    from training.augment import augment

    rng = np.random.default_rng(0)
    obs = torch.as_tensor(rng.integers(0, 256, (64, 16, 16, 3), dtype=np.uint8))
    acts, targets = torch.as_tensor(rng.integers(0, 3, 64)), torch.as_tensor(rng.normal(0, 3, 64), dtype=torch.float32)

    def fit(coef: float) -> tuple[float, float]:
        torch.manual_seed(0)
        space = {"kind": "discrete", "n": 3}
        agent = ActorCritic(ActorCriticNetConfig((16, 16, 3), space, channels=(8, 16, 16), hidden=32))
        opt, gen = torch.optim.Adam(agent.parameters(), lr=3e-3), torch.Generator().manual_seed(0)
        for _ in range(200):
            d, v = agent.distribution(obs)
            loss = -d.log_prob(acts).mean() + ((v - targets) ** 2).mean()
            if coef:
                loss = loss + coef * augmentation_loss(agent, obs, d, v, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():  # augmentations neither run was fitted on
            d, v = agent.distribution(obs)
            da, va = agent.distribution(augment(obs, torch.Generator().manual_seed(123)))
        return torch.distributions.kl_divergence(d, da).mean().item(), (va - v).abs().mean().item()

    plain, drac = fit(0.0), fit(1.0)
    # measured: KL 2.50 -> 0.50, value gap 2.33 -> 1.70
    assert drac[0] < 0.5 * plain[0] and drac[1] < 0.85 * plain[1], (plain, drac)


def test_drac_trains_and_is_refused_where_sb3_ppo_runs(setup, tmp_path):
    """With the DrAC term the actor-critic still learns the imagined task; SB3 PPO, which has no such term,
    refuses the option before anything is built."""
    from gymnasium.vector import AutoresetMode

    from envs.dream_env import DreamVectorEnv

    data = setup[2]
    model, rewards = action_only_reward_model(tmp_path / "model")
    best = int(np.argmax(rewards))
    env = DreamVectorEnv(model, data, num_envs=8, max_steps=8, autoreset_mode=AutoresetMode.SAME_STEP)
    torch.manual_seed(0)
    space = {"kind": "discrete", "n": 3}
    agent = ActorCritic(ActorCriticNetConfig((RES, RES, 3), space, channels=(8, 16, 16), hidden=32))
    obs = torch.as_tensor(env.reset(seed=0)[0])
    hp = PPOHyperparameters(
        learning_rate=3e-3, rollout_steps=8, epochs=4, minibatches=2, ent_coef=0.0, augment_coef=0.1
    )
    train_actor_critic(agent, env, total_steps=8 * 8 * 12, hp=hp, seed=0, progress=False)
    with torch.no_grad():
        assert torch.softmax(agent(obs), -1)[:, best].mean().item() > 0.6
    with pytest.raises(UserInputError, match="augment-coef"):
        hp.check(sb3=True)
    hp.check()  # the native actor-critic takes it
    cfg = small_run(setup[1], data, tmp_path / "sb3", "ppo")
    cfg.hp = hp
    with pytest.raises(UserInputError, match="augment-coef"):
        train_policy(cfg)
    assert not (tmp_path / "sb3").exists()
