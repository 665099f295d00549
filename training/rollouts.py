"""Episodes of a policy in each of the three worlds, acting on its own observations.

- **reality** and the **twin** are Gymnasium envs (a SceneEnv over the true room or over the
  reconstruction; or any env the data came from): `true_episodes` runs the policy closed loop from
  seeded resets, or from given start poses (so the twin starts where reality started).
- **imagination** is the world model: `imagined_episodes` starts each episode from the first L
  frames and L-1 actions of its reality episode (the model needs real context) and lets the policy
  act on the imagined frames from there, all episodes in one batch. With `spread=True` every step
  also draws a second sample of the next frame from the same context; the RMS difference of the two
  is how unsure the model is along this policy's own rollouts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.policies import act


def episode_success(info: dict[str, Any], terminated: bool, ret: float, success_return: float | None) -> bool:
    """SceneNav reports arrival in info["success"]; other envs succeed by reaching `success_return`,
    or (None) by ending through termination rather than the step limit."""
    if "success" in info:
        return bool(info["success"])
    return ret >= success_return if success_return is not None else bool(terminated)


def true_episode(
    env: Any,
    policy: Any,
    seed: int,
    max_steps: int,
    deterministic: bool = False,
    start: Any = None,
    success_return: float | None = None,
) -> dict[str, Any]:
    """One episode in a real (or twin) env: frames, actions, rewards, terminated, success (and whether the env
    reported it or `episode_success` inferred it), for a SceneEnv the start pose (x, y, heading) it began
    from, and `bumps`: the steps whose info reported `collided` (None when the env reports no collisions)."""
    options = None if start is None else {"start": tuple(float(v) for v in start)}
    obs, info = env.reset(seed=seed, options=options)
    base = getattr(env, "unwrapped", env)
    pose = np.array([*base.pos[:2], base.heading]) if hasattr(base, "pos") else None
    poses = [pose]
    frames, actions, rewards, term, ret = [np.asarray(obs)], [], [], False, 0.0
    bumps: int | None = None
    for t in range(max_steps):
        a = act(policy, np.asarray(obs)[None], deterministic, episode_start=[t == 0])[0]
        obs, r, term, trunc, info = env.step(a)
        frames.append(np.asarray(obs))
        actions.append(a)
        rewards.append(float(r))
        ret += float(r)
        poses.append(np.array([*base.pos[:2], base.heading]) if pose is not None else None)
        if isinstance(info, dict) and "collided" in info:
            bumps = (bumps or 0) + bool(info["collided"])
        if term or trunc:
            break
    return {
        "frames": np.stack(frames),
        "actions": np.stack(actions),
        "rewards": np.array(rewards),
        "terminated": bool(term),
        "success": episode_success(info, bool(term), ret, success_return),
        "success_reported": isinstance(info, dict) and "success" in info,
        "start": pose,
        "poses": None if pose is None else np.stack(poses),
        "goal": info.get("goal") if isinstance(info, dict) else None,
        "bumps": bumps,
    }


def true_episodes(
    env: Any,
    policy: Any,
    seeds: list[int],
    max_steps: int,
    deterministic: bool = False,
    starts: list[Any] | None = None,
    success_return: float | None = None,
) -> list[dict[str, Any]]:
    """`true_episode` for every seed (and start pose, when given). In a SceneEnv, with a policy that acts on its
    observations alone, the episodes run side by side (`scene_episodes`): the same bodies, starts and steps,
    the policy asked once per step for all of them."""
    from envs.scene_env import SceneEnv

    plain = type(env) is SceneEnv and not (env.cfg.depth or env.cfg.state) and env.cfg.observation_device == "numpy"
    if plain and not getattr(policy, "reads_env", False) and len(seeds) > 1:
        return scene_episodes(env, policy, seeds, max_steps, deterministic, starts, success_return)
    return [
        true_episode(env, policy, s, max_steps, deterministic, None if starts is None else starts[i], success_return)
        for i, s in enumerate(seeds)
    ]


def scene_episodes(
    env: Any,
    policy: Any,
    seeds: list[int],
    max_steps: int,
    deterministic: bool = False,
    starts: list[Any] | None = None,
    success_return: float | None = None,
) -> list[dict[str, Any]]:
    """`true_episode` in a SceneEnv for every seed at once: one body per episode in the env's Scene (its
    config, so each body starts, moves and is rewarded as `env` would from the same seed or start), the policy
    asked for every episode's action in one batch (ended ones too, so that a policy's per-slot memory stays
    aligned; their actions are dropped), only the running bodies rendered."""
    import gymnasium as gym

    from envs.scene_bodies import SceneBodies

    n = len(seeds)
    bodies = SceneBodies(env.scene, env.cfg, n)
    rngs = [gym.utils.seeding.np_random(int(s))[0] for s in seeds]
    start = None if starts is None else np.array([[float(v) for v in p] for p in starts])
    bodies.reset(np.arange(n), rngs, start)
    obs = np.array(bodies.observe())
    poses = [[np.array([*bodies.pos[k, :2], bodies.heading[k]])] for k in range(n)]
    frames = [[obs[k].copy()] for k in range(n)]
    actions: list[list[Any]] = [[] for _ in range(n)]
    rewards: list[list[float]] = [[] for _ in range(n)]
    infos: list[dict[str, Any]] = [{"collided": False, **bodies.info(k)} for k in range(n)]
    term, bumps, done = np.zeros(n, bool), np.zeros(n, np.int64), np.zeros(n, bool)
    for t in range(max_steps):
        live = np.flatnonzero(~done)
        if not len(live):
            break
        a = act(policy, obs, deterministic, episode_start=np.full(n, t == 0))
        r, te, tr, step_info = bodies.step(live, np.asarray(a)[live])
        seen = np.array(bodies.observe(live))
        for j, k in enumerate(live):
            obs[k] = seen[j]
            frames[k].append(seen[j].copy())
            actions[k].append(a[k])
            rewards[k].append(float(r[j]))
            poses[k].append(np.array([*bodies.pos[k, :2], bodies.heading[k]]))
            info = {key: (v[j].item() if v.ndim == 1 else v[j]) for key, v in step_info.items()}
            infos[k] = {"collided": info.pop("collided"), **bodies.info(k), **info}
            bumps[k] += bool(infos[k]["collided"])
            term[k], done[k] = bool(te[j]), bool(te[j] or tr[j])
    return [
        {
            "frames": np.stack(frames[k]),
            "actions": np.stack(actions[k]),
            "rewards": np.array(rewards[k]),
            "terminated": bool(term[k]),
            "success": episode_success(infos[k], bool(term[k]), float(np.sum(rewards[k])), success_return),
            "success_reported": "success" in infos[k],
            "start": poses[k][0],
            "poses": np.stack(poses[k]),
            "goal": infos[k].get("goal"),
            "bumps": int(bumps[k]),
        }
        for k in range(n)
    ]


def imagined_episodes(
    core: Any,
    policy: Any,
    truths: list[dict[str, Any]],
    max_steps: int,
    deterministic: bool = False,
    spread: bool = False,
    success_return: float | None = None,
    spread_episodes: int | None = None,
) -> list[dict[str, Any]]:
    """Every episode at once in the world model (`core`: an envs.dream_env.DreamCore with at least
    len(truths) slots), each started from its true episode's first L frames and L-1 actions; the
    policy then acts on the imagined frames. Returns and success include the shared context steps.

    With `spread`, each episode also carries `spread`: the mean over its imagined steps of the RMS
    difference (0-255 pixel units) between two samples of the next frame from the same context; only the
    first `spread_episodes` do (None: all; the others carry NaN), which saves that many second samples. With a
    core that snaps to its data, `snap_distance` is the mean RMS distance of its samples to the frames shown."""
    L, n = core.L, len(truths)
    out = []
    for i, tr in enumerate(truths):
        k = min(L - 1, len(tr["actions"]))  # steps shared with the true episode
        ended = k < L - 1
        out.append(
            {
                "frames": list(tr["frames"][: k + 1]),
                "rewards": list(tr["rewards"][:k]),
                "terminated": bool(tr["terminated"]) if ended else False,
                "success": bool(tr["success"]) if ended else False,
                "done": ended,
                "spread": [],
                "snap": [],
            }
        )
        if not ended:
            core.set_context(i, tr["frames"][:L], tr["actions"][: L - 1])
    core.steps[:] = 0
    first = True
    for _ in range(L - 1, max_steps):
        live = [i for i in range(n) if not out[i]["done"]]
        if not live:
            break
        acts = act(policy, core.observations()[:n], deterministic, episode_start=np.full(n, first))
        first = False
        if len(core.frames) > n:  # spare slots repeat the last action: they are never read
            acts = np.concatenate([acts, np.repeat(acts[-1:], len(core.frames) - n, 0)])
        nxt, rew, term, _ = core.step(acts, spread=spread, spread_envs=spread_episodes)
        for i in live:
            e = out[i]
            e["frames"].append(nxt[i])
            e["rewards"].append(float(rew[i]))
            if spread and (spread_episodes is None or i < spread_episodes):
                e["spread"].append(float(core.spread[i]))
            if core.memory is not None:
                e["snap"].append(float(core.snap_distance[i]))
            if term[i]:
                e["terminated"] = e["done"] = True
    result = []
    for e in out:
        ret = float(np.sum(e["rewards"]))
        success = e["success"] or (ret >= success_return if success_return is not None else e["terminated"])
        result.append(
            {
                "frames": np.stack(e["frames"]),
                "rewards": np.array(e["rewards"]),
                "terminated": e["terminated"],
                "success": bool(success),
                "spread": float(np.mean(e["spread"])) if e["spread"] else float("nan"),
                "snap_distance": float(np.mean(e["snap"])) if e["snap"] else float("nan"),
            }
        )
    return result


def replayed_spread(core: Any, episodes: list[Any], max_steps: int) -> float:
    """The model's sampled-future spread along recorded episodes, replaying their own actions: the
    in-data reference a policy's spread is compared with."""
    L = core.L
    eps = [e for e in episodes if e.steps >= L][: len(core.frames)]
    if not eps:
        return float("nan")
    for i, e in enumerate(eps):
        core.set_context(i, e.frames[:L], e.actions[: L - 1])
    values = []
    for t in range(L - 1, max_steps):
        live = [i for i, e in enumerate(eps) if t < e.steps]
        if not live:
            break
        acts = np.stack([eps[i].actions[min(t, eps[i].steps - 1)] for i in range(len(eps))])
        if len(core.frames) > len(eps):
            acts = np.concatenate([acts, np.repeat(acts[-1:], len(core.frames) - len(eps), 0)])
        core.step(acts, spread=True)
        values += [float(core.spread[i]) for i in live]
    return float(np.mean(values))


def reward_model_returns(core: Any, truths: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The world model's reward and termination model read along true episodes — reality's own frames
    and actions, no imagined frame: each episode's first L-1 true rewards, then the predicted rewards up
    to the first predicted termination. Ranked against reality, this isolates the reward model's error
    from the dynamics' (`replayed_episodes` adds the dynamics open loop, `imagined_episodes` closes it)."""
    import torch

    L, model = core.L, core.model
    out = []
    for tr in truths:
        n = len(tr["actions"])
        rewards, term = list(tr["rewards"][: L - 1]), bool(tr["terminated"]) and n < L
        if n >= L:
            frames = torch.from_numpy(np.asarray(tr["frames"]))
            acts = torch.as_tensor(np.asarray(tr["actions"])).to(core.actions.dtype)
            idx = range(L - 1, n)
            ctx = torch.stack([frames[t - L + 1 : t + 1] for t in idx])
            a = torch.stack([acts[t - L + 1 : t + 1] for t in idx])
            pred, ends = model.predict_reward_termination(ctx, a, frames[L : n + 1])
            pred, ends = pred.cpu().numpy(), ends.cpu().numpy()
            stop = int(np.argmax(ends)) + 1 if ends.any() else len(ends)
            rewards += [float(r) for r in pred[:stop]]
            term = bool(ends.any())
        out.append({"rewards": np.array(rewards), "terminated": term, "success": term})
    return out


def replayed_episodes(core: Any, truths: list[dict[str, Any]], max_steps: int) -> list[dict[str, Any]]:
    """Each true episode's own actions replayed open loop in the world model from its first L frames, all
    at once: the imagined return of what the policy truly did. An imagined episode ends where the model
    predicts termination or where the true one ended."""
    L, n = core.L, len(truths)
    out = [
        {"rewards": list(tr["rewards"][: L - 1]), "terminated": False, "done": len(tr["actions"]) < L, "frames": []}
        for tr in truths
    ]
    for i, tr in enumerate(truths):
        if out[i]["done"]:
            out[i]["terminated"] = bool(tr["terminated"])
        else:
            core.set_context(i, tr["frames"][:L], tr["actions"][: L - 1])
    core.steps[:] = 0
    for t in range(L - 1, max_steps):
        for i, tr in enumerate(truths):
            out[i]["done"] = out[i]["done"] or t >= len(tr["actions"])
        live = [i for i in range(n) if not out[i]["done"]]
        if not live:
            break
        acts = np.stack([np.asarray(tr["actions"][min(t, len(tr["actions"]) - 1)]) for tr in truths])
        if len(core.frames) > n:
            acts = np.concatenate([acts, np.repeat(acts[-1:], len(core.frames) - n, 0)])
        nxt, rew, term, _ = core.step(acts)
        for i in live:
            out[i]["rewards"].append(float(rew[i]))
            out[i]["frames"].append(nxt[i])
            if term[i]:
                out[i]["terminated"] = out[i]["done"] = True
    return [
        {
            "rewards": np.array(e["rewards"]),
            "terminated": e["terminated"],
            "success": e["terminated"],
            "frames": e["frames"],
        }
        for e in out
    ]


def decisions_kept(
    policy: Any, truths: list[dict[str, Any]], replayed: list[dict[str, Any]], context: int
) -> float | None:
    """How often the policy takes the same (most likely) action on the imagined frame of an open-loop replay as on
    the true frame of the same step, relative to how often it repeats its own action on the true frame (1 for a
    policy that decides from what it sees; a random one is judged fairly whatever it is shown). Low values mean
    imagination shows this policy views it decides differently on, so its imagined return says little about its
    true one. None for continuous actions or when no step was replayed."""
    same, again = [], []
    for tr, rp in zip(truths, replayed):
        k = len(rp["frames"])
        if k == 0:
            continue
        true = np.asarray(tr["frames"][context : context + k])
        imagined = np.stack(rp["frames"][: len(true)])
        alone = np.ones(len(true), bool)  # each frame judged alone (a policy that stacks frames sees it repeated)
        a = act(policy, true, deterministic=True, episode_start=alone)
        if a.ndim > 1:
            return None
        same.append(a == act(policy, imagined, deterministic=True, episode_start=alone))
        again.append(a == act(policy, true, deterministic=True, episode_start=alone))
    if not same:
        return None
    chance = float(np.mean(np.concatenate(again)))
    return float(np.mean(np.concatenate(same))) / chance if chance > 0 else None
