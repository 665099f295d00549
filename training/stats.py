"""Statistics of policy evaluations: intervals for means and rates, and how well one world ranks
policies the way another does (rank correlations with bootstrap intervals, and regret).

A check in this project passes only when intervals separate, so every figure here comes with one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def t_interval(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and its Student-t confidence interval (a single value gives a zero-width interval)."""
    from scipy import stats

    x = np.asarray(x, np.float64)
    m = float(x.mean())
    if len(x) < 2 or float(x.std()) == 0.0:
        return m, m, m
    h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, m - h, m + h


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float, float]:
    """Success rate and its Wilson score interval (sound at 0% and 100%, unlike the normal one)."""
    from scipy import stats

    if n == 0:
        return float("nan"), float("nan"), float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)  # exact ends, not rounding noise
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return p, lo, hi


def summarise(returns: np.ndarray, success: np.ndarray) -> dict[str, Any]:
    """Mean return (95% t-interval) and success rate (95% Wilson interval) of a set of episodes."""
    returns, success = np.asarray(returns, np.float64), np.asarray(success, bool)
    m, lo, hi = t_interval(returns)
    p, plo, phi = wilson_interval(int(success.sum()), len(success))
    return {
        "episodes": len(returns),
        "mean_return": m,
        "return_ci95": [lo, hi],
        "success": p,
        "success_ci95": [plo, phi],
        "returns": returns.tolist(),
        "successes": success.tolist(),
    }


def separated(a: list[float], b: list[float]) -> bool:
    """True when interval `a` lies wholly above interval `b` (a check that can fail)."""
    return float(a[0]) > float(b[1])


def _rank_stats(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman rho and Kendall tau-b of two score vectors (nan when either is constant)."""
    from scipy import stats

    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    return float(stats.spearmanr(x, y)[0]), float(stats.kendalltau(x, y)[0])


def split_half_agreement(returns: list[np.ndarray], splits: int = 2000, seed: int = 0) -> dict[str, Any]:
    """How well the true world ranks the policies against itself: for random halvings of every policy's
    episodes, Spearman rho between the mean returns of the two halves (median and 2.5th-97.5th
    percentiles over the halvings).

    This is the noise ceiling of a ranking check at this many episodes: a judging world whose returns
    carried no error at all would still not agree with a finite sample of the truth better than the
    truth's own halves roughly do (each half has half the episodes, so this errs on the low side). A
    family whose policies are too close for their episode count shows up here, not as a failure of
    the judge."""
    rng = np.random.default_rng(seed)
    rhos = []
    for _ in range(splits):
        a, b = np.empty(len(returns)), np.empty(len(returns))
        for p, r in enumerate(returns):
            r = np.asarray(r, np.float64)
            perm = rng.permutation(len(r))
            half = len(r) // 2
            a[p], b[p] = r[perm[:half]].mean(), r[perm[half : 2 * half]].mean()
        rho = _rank_stats(a, b)[0]
        if not math.isnan(rho):
            rhos.append(rho)
    if not rhos:
        return {"policies": len(returns), "spearman_rho_median": None, "spearman_rho_ci95": None, "splits": splits}
    return {
        "policies": len(returns),
        "spearman_rho_median": float(np.median(rhos)),
        "spearman_rho_ci95": [float(np.percentile(rhos, 2.5)), float(np.percentile(rhos, 97.5))],
        "splits": splits,
    }


def regret(judge: np.ndarray, truth: np.ndarray) -> float:
    """True return of the truly best policy minus that of the policy the judging world ranks best
    (ties in the judge's ranking: the worst of the tied, as a cautious user would fear)."""
    best = np.flatnonzero(judge == judge.max())
    return float(truth.max() - truth[best].min())


def rank_agreement(
    judge_returns: list[np.ndarray],
    truth_returns: list[np.ndarray],
    spread: float | None = None,
    samples: int = 2000,
    seed: int = 0,
    paired: bool = True,
) -> dict[str, Any]:
    """How well a judging world ranks policies as the true world does.

    `judge_returns[p]` and `truth_returns[p]` are policy p's episode returns in the two worlds. The
    bootstrap resamples episodes within each policy (the same indices in both worlds when `paired`,
    i.e. when episode i started from the same state in both) and recomputes the mean returns, Spearman
    rho, Kendall tau and regret; intervals are the 2.5th and 97.5th percentiles. `spread` (e.g. the
    expert-random return difference in the true world) expresses the regret as a fraction of it."""
    jm = np.array([np.mean(r) for r in judge_returns])
    tm = np.array([np.mean(r) for r in truth_returns])
    rho, tau = _rank_stats(jm, tm)
    reg = regret(jm, tm)
    rng = np.random.default_rng(seed)
    boot = np.empty((samples, 3))
    for b in range(samples):
        jb, tb = np.empty(len(jm)), np.empty(len(tm))
        for p, (jr, tr) in enumerate(zip(judge_returns, truth_returns)):
            i = rng.integers(len(tr), size=len(tr))
            jb[p] = np.mean(np.asarray(jr)[i if paired else rng.integers(len(jr), size=len(jr))])
            tb[p] = np.mean(np.asarray(tr)[i])
        boot[b, :2] = _rank_stats(jb, tb)
        boot[b, 2] = regret(jb, tb)

    def ci(col: np.ndarray) -> list[float] | None:
        col = col[np.isfinite(col)]
        return [float(np.percentile(col, 2.5)), float(np.percentile(col, 97.5))] if len(col) else None

    out: dict[str, Any] = {
        "policies": len(jm),
        "spearman_rho": None if math.isnan(rho) else rho,
        "spearman_rho_ci95": ci(boot[:, 0]),
        "kendall_tau": None if math.isnan(tau) else tau,
        "kendall_tau_ci95": ci(boot[:, 1]),
        "regret": reg,
        "regret_ci95": ci(boot[:, 2]),
        "picked": int(np.argmax(jm)),
        "truly_best": int(np.argmax(tm)),
        "bootstrap_samples": samples,
    }
    if spread:
        out["spread"] = float(spread)
        out["regret_fraction"] = reg / float(spread)
        out["regret_fraction_ci95"] = [v / float(spread) for v in out["regret_ci95"]]
    return out
