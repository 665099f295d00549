"""The demo's graded family of pixel policies, the ones `validate` judges in every world: a policy cloned
from the expert's twin demonstrations with random actions mixed in at several rates, SB3 PPO in the twin and
its checkpoints (when asked: --twin-ppo-steps), SB3 PPO trained model-free in reality with the loop's real
steps, the loop's own policies, and random."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envs.scene_config import SceneEnvConfig
from training.actor_critic import PPOHyperparameters

if TYPE_CHECKING:
    from training.demo import DemoConfig

EXAMPLE = "assets/example_room"
"""The bundled example capture (relative to the repository root, where `make demo` runs)."""


def clone_policy(cfg: DemoConfig, scenes: list[Path], twins: list[dict[str, Any]], data: Path, out: Path) -> Path:
    """The policy cloned from the twins' expert episodes and corrected by DAgger in the twins (free steps; its
    rounds take the twins in turn), at the loop policies' input size: the family's clone, and the loop's starting
    policy with --loop-from-clone. `twins` are the twins' SceneEnv options (each its own goal), as `scenes`."""
    from training.behaviour_cloning import BehaviourCloningConfig, behaviour_cloning
    from training.model_based import loop_policy_input_size

    goals = tuple(float(v) for t in twins for v in t["goal"]) if len(scenes) > 1 else ()
    return behaviour_cloning(
        BehaviourCloningConfig(
            data,
            out=out,
            steps=cfg.clone_steps,
            input_size=loop_policy_input_size(cfg.loop, cfg.resolution),
            frames=cfg.loop.policy_frames,
            dagger_scene=tuple(str(s) for s in scenes) if cfg.clone_dagger_rounds else (),
            dagger_goals=goals if cfg.clone_dagger_rounds else (),
            env=SceneEnvConfig(**twins[0]),
            dagger_rounds=max(1, cfg.clone_dagger_rounds),
            dagger_episodes=cfg.clone_dagger_episodes,
            dagger_steps=max(1, cfg.clone_steps // 2),
            device=cfg.device,
            seed=cfg.seed,
            overwrite=cfg.resume,
        )
    )


def build_family(cfg: DemoConfig, scene: Path, worlds: dict[str, Any], bc: Path, loop: Path, out: Path) -> dict:
    """The graded family of pixel policies validate judges (around the clone `bc`): name -> policy spec."""
    from training.train_policy_scene import TrainPolicySceneConfig, train_policy_scene
    from wmcore.atomic import write_json

    family: dict[str, str] = {"random": "random"}
    for eps in sorted(cfg.clone_noise, reverse=True):
        family[f"clone + {100 * eps:.0f}% random"] = f"noisy:{eps}:{bc}"
    family["clone"] = str(bc)
    if cfg.twin_ppo_steps:
        every = max(1, cfg.twin_ppo_steps // (cfg.twin_ppo_checkpoints + 1))
        twin = train_policy_scene(
            TrainPolicySceneConfig(
                scene,
                env=SceneEnvConfig(**worlds["twin"]),
                out=out / "ppo_twin",
                total_steps=cfg.twin_ppo_steps,
                num_envs=16,
                checkpoint_every=every,
                device=cfg.device,
                seed=cfg.seed,
                overwrite=cfg.resume,
            )
        )
        ckpts = sorted((out / "ppo_twin" / "checkpoints").glob("step_*"))[1:-1][: cfg.twin_ppo_checkpoints]
        for c in ckpts:
            family[f"PPO in twin, {int(c.name[5:]) // 1000}k steps"] = str(c)
        family[f"PPO in twin, {cfg.twin_ppo_steps // 1000}k steps"] = str(twin)
    summary = json.loads((loop / "summary.json").read_text())
    if cfg.reality_ppo:
        family[f"PPO in reality, {summary['real_steps']} real steps"] = str(
            ppo_in_reality(cfg, worlds["reality"], summary["real_steps"], out / "ppo_reality")
        )
    # one more of the loop's policies, not the deployed one: its first, else its last
    deployed = (summary.get("deploy") or {}).get("deployed")
    last = len(summary["iterations"]) - 1
    for it in dict.fromkeys((0, last)):
        if f"policy_iter_{it}" != deployed:
            family[f"imagination, loop iteration {it + 1}"] = str(loop / f"policy_iter_{it}")
            break
    family["imagination-trained"] = str(loop / "policy")
    write_json(out / "family.json", {"policies": family, "real_steps_of_the_loop": summary["real_steps"]})
    return family


DEPLOYMENT = ("imagination-trained", "random", "PPO in reality")
"""The family members the deployment checks compare in reality (names start so)."""


def measure_deployment(
    cfg: DemoConfig, worlds: dict[str, Any], scene: Path, family: Path, validation: Path, out: Path
) -> Path:
    """--deployment-episodes episodes in reality of each DEPLOYMENT policy of the family, from starts no other
    stage used (seeds 2,000,000 on): their returns and success with intervals; and --transfer-episodes of the
    twin-trained policy (`demo_report.twin_trained` of the validation report) in reality and in the twin
    (`paired_transfer`). In OUT/deployment.json."""
    from envs.reality import make_room_env
    from training.demo_report import twin_trained
    from training.policies import resolve_policy
    from training.rollouts import true_episodes
    from training.stats import summarise
    from wmcore.atomic import write_json

    policies = json.loads((family / "family.json").read_text())["policies"]
    env = make_room_env(EXAMPLE, **worlds["reality"])
    seeds = [cfg.seed + 2_000_000 + i for i in range(cfg.deployment_episodes)]
    result = {}
    for name, spec in policies.items():
        if name.startswith(DEPLOYMENT) and cfg.deployment_episodes:
            eps = true_episodes(env, resolve_policy(spec, env, seed=cfg.seed), seeds, cfg.episode_steps)
            result[name] = summarise([e["rewards"].sum() for e in eps], [e["success"] for e in eps])
    report: dict[str, Any] = {"episodes": cfg.deployment_episodes, "policies": result}
    name = twin_trained(json.loads((validation / "report.json").read_text()))
    if cfg.transfer_episodes and name is not None:
        done = out / "twin_transfer.json"  # measured beside the loop (`clone_transfer`) when it is the clone's
        earlier = json.loads(done.read_text()) if done.is_file() else None
        if (
            earlier is not None
            and earlier["policy"] == name
            and earlier["episodes"] == cfg.transfer_episodes
            and earlier.get("policy_digest") == _digest(policies[name])
        ):
            report["twin_transfer"] = earlier
        else:
            report["twin_transfer"] = paired_transfer(cfg, worlds, scene, name, policies[name])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "deployment.json", report)
    return out


def clone_transfer(cfg: DemoConfig, worlds: dict[str, Any], scene: Path, spec: str, out: Path) -> Path:
    """`paired_transfer` of the clone, written to OUT (a JSON file) for the deployment stage: when the family
    has no PPO in the twin the clone is its twin-trained policy, known as soon as it is trained, so the demo
    measures its transfer beside the model-based loop."""
    from wmcore.atomic import write_json

    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, {**paired_transfer(cfg, worlds, scene, "clone", spec), "policy_digest": _digest(spec)})
    return out


def _digest(spec: str) -> str | None:
    """SHA-256 of a saved policy's weights (None for a spec that names no saved policy): the transfer measured
    beside the loop is used only for the weights it measured (a resumed run may have trained the clone again)."""
    import hashlib

    weights = Path(spec) / "policy.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None


def paired_transfer(cfg: DemoConfig, worlds: dict[str, Any], scene: Path, name: str, spec: str) -> dict[str, Any]:
    """--transfer-episodes episodes of one policy in reality (from the deployment stage's starts) and in the
    twin from the same starts (carried over by the Sim(3) between the capture's true cameras and the
    reconstruction's, onto the twin's free floor): each world's return and success, and the per-episode
    difference of success, reality − twin, with its Student-t 95 % interval. Pairing takes out the starts'
    share of the spread: about ±8 points at 200 episodes, where two unpaired sets of 30 leave ±25."""
    import numpy as np

    from envs.reality import FloorMap, make_room_env
    from envs.scene_env import SceneEnv
    from training.policies import resolve_policy
    from training.rollouts import true_episodes
    from training.stats import summarise, t_interval

    room, twin = make_room_env(EXAMPLE, **worlds["reality"]), SceneEnv(str(scene), **worlds["twin"])
    floor = FloorMap.for_scene(scene, EXAMPLE)
    seeds = [cfg.seed + 2_000_000 + i for i in range(cfg.transfer_episodes)]
    real = true_episodes(room, resolve_policy(spec, room, seed=cfg.seed), seeds, cfg.episode_steps)
    starts = [floor.start_in_twin(twin, e["start"]) for e in real]
    in_twin = true_episodes(twin, resolve_policy(spec, twin, seed=cfg.seed), seeds, cfg.episode_steps, starts=starts)
    diff = np.array([float(r["success"]) - float(t["success"]) for r, t in zip(real, in_twin)])
    mean, lo, hi = t_interval(diff)
    figures = {
        w: summarise([e["rewards"].sum() for e in eps], [e["success"] for e in eps])
        for w, eps in (("reality", real), ("twin", in_twin))
    }
    return {"policy": name, "episodes": len(seeds), **figures, "reality_minus_twin": mean, "gap_ci95": [lo, hi]}


def ppo_in_reality(cfg: DemoConfig, reality: dict[str, Any], steps: int, out: Path) -> Path:
    """SB3 PPO (CnnPolicy) trained model-free in reality for `steps` real steps: the baseline the loop must beat
    (4 bodies and 32-step rollouts, so that so few steps still make a dozen updates)."""
    from training.train_policy_scene import TrainPolicySceneConfig, train_policy_scene

    hp = PPOHyperparameters(rollout_steps=32, epochs=4, minibatches=4, ent_coef=0.01)
    return train_policy_scene(
        TrainPolicySceneConfig(
            Path(f"room:{EXAMPLE}"),
            env=SceneEnvConfig(**reality),
            out=out,
            total_steps=steps,
            num_envs=4,
            hp=hp,
            device=cfg.device,
            seed=cfg.seed,
            overwrite=cfg.resume,
        )
    )
