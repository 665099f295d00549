"""A demo run's validation again, with another world model as imagination (or another number of episodes): the
same family, reality and twin episodes and settings as RUN/validate/config.json, so two models' rankings of the
family compare pair by pair.

    python benchmarks/imagination/judge_with_model.py RUN EPISODES OUT [MODEL]   # MODEL: a saved world model
"""

import dataclasses
import json
import sys
from pathlib import Path

from training.validate import ValidateConfig, validate


def config(run: Path, episodes: int, out: Path, model: str | None = None) -> ValidateConfig:
    saved = json.loads((run / "validate" / "config.json").read_text())
    saved.update(episodes=episodes, out=str(out), **({"model": model} if model else {}))
    kw = {f.name: saved[f.name] for f in dataclasses.fields(ValidateConfig) if f.name in saved}
    kw["policies"], kw["names"] = tuple(kw["policies"]), tuple(kw["names"])
    for k in ("model", "dataset", "scene", "out", "eval_metrics"):
        if kw.get(k) is not None:
            kw[k] = Path(kw[k])
    if isinstance(kw.get("env_kwargs"), dict):
        kw["env_kwargs"] = json.dumps(kw["env_kwargs"])
    return ValidateConfig(**kw)


if __name__ == "__main__":  # the side process re-imports this file: nothing may run at import
    run, episodes, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    report = validate(config(run, episodes, out, sys.argv[4] if len(sys.argv) > 4 else None))
    pair = report["pairs"]["imagination-reality"]
    rho, ci, regret = pair["spearman_rho"], pair["spearman_rho_ci95"], pair["regret_fraction"]
    print(f"imagination-reality rho {rho:.2f} ({ci[0]:.2f}-{ci[1]:.2f}), regret {regret}")
