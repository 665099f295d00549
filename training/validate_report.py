"""validate's outputs for a person: one scatter plot per pair of worlds, example frames, report.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wmcore.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pair(report: dict[str, Any], judge: str, truth: str, path: Path) -> None:
    """Mean return per policy in the judging world against the true world, with 95% intervals and y = x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 5.5))
    lims = []
    for name, p in report["policies"].items():
        w = p["worlds"]
        if judge not in w or truth not in w:
            continue
        t, j = w[truth], w[judge]
        x, y = t["mean_return"], j["mean_return"]
        xerr = [[x - t["return_ci95"][0]], [t["return_ci95"][1] - x]]
        yerr = [[y - j["return_ci95"][0]], [j["return_ci95"][1] - y]]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=name)
        lims += [*t["return_ci95"], *j["return_ci95"]]
    if lims:
        lo, hi = min(lims), max(lims)
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, label=f"{judge} = {truth}")
    pair = report["pairs"].get(f"{judge}-{truth}", {})
    rho = pair.get("spearman_rho")
    ax.set_title(f"{judge} vs {truth}: Spearman ρ = {'n/a' if rho is None else f'{rho:.2f}'} (95% CI)")
    ax.set_xlabel(f"mean return in {truth}")
    ax.set_ylabel(f"mean return in {judge}")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def example_strip(rows: list[np.ndarray], count: int = 8) -> np.ndarray:
    """One row per world (e.g. reality, twin, imagination) of `count` frames at matching steps."""
    n = min(len(r) for r in rows)
    idx = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    pad = 2
    h, w = rows[0].shape[1:3]
    img = np.full((len(rows) * (h + pad) - pad, len(idx) * (w + pad), 3), 255, np.uint8)
    for r, frames in enumerate(rows):
        for j, t in enumerate(idx):
            img[r * (h + pad) : r * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = frames[t]
    return img


def _ci(v: list[float] | None, fmt: str = ".2f") -> str:
    return "n/a" if v is None else f"[{v[0]:{fmt}}, {v[1]:{fmt}}]"


def _world_cell(s: dict[str, Any] | None) -> str:
    if s is None:
        return "—"
    return (
        f"{s['mean_return']:.2f} {_ci(s['return_ci95'])}; {100 * s['success']:.0f}% "
        f"[{100 * s['success_ci95'][0]:.0f}–{100 * s['success_ci95'][1]:.0f}]"
    )


DIAGNOSIS_JUDGES = {
    "reward_model": "reward model on the true frames (no imagined frame)",
    "replay": "the true actions replayed open loop in imagination",
    "imagination": "the policy acting in imagination (closed loop)",
}


def diagnosis_lines(diagnosis: dict[str, Any] | None) -> list[str]:
    """Where imagination loses the ranking: each judge adds one part of the world model to the last, and
    the truth's own split-half agreement is the ceiling at this episode count."""
    if not diagnosis:
        return []
    truth = diagnosis["truth"]
    lines = [
        "",
        f"## Where does imagination lose the ranking? (against {truth})",
        "",
        "| judge | Spearman ρ [bootstrap 95%] | regret / (expert − random) |",
        "|---|---|---|",
    ]
    for judge, pr in diagnosis["pairs"].items():
        rho, frac = pr["spearman_rho"], pr.get("regret_fraction")
        lines.append(
            f"| {DIAGNOSIS_JUDGES.get(judge, judge)} | {'n/a' if rho is None else f'{rho:.2f}'} "
            f"{_ci(pr['spearman_rho_ci95'])} | {'—' if frac is None else f'{100 * frac:.0f}%'} |"
        )
    own = diagnosis["self_agreement"]
    med = own.get("spearman_rho_median")
    lines += [
        f"| {truth} against itself (halves of its episodes) | {'n/a' if med is None else f'{med:.2f}'} "
        f"{_ci(own.get('spearman_rho_ci95'))} | — |",
        "",
        f"The last row is the noise ceiling: two halves of {truth}'s own episodes agree this well, so a judge "
        "cannot be shown to do much better with this family and episode count.",
    ]
    if diagnosis.get("episodes") is not None:
        lines.append(
            f"The reward-model and replay rows judge each policy's first {diagnosis['episodes']} episodes, ranked "
            f"against {truth}'s same ones (`--diagnose-episodes`); the closed loop and the noise ceiling use all."
        )
    return lines


def render_markdown(report: dict[str, Any]) -> str:
    """report.md: the worlds side by side, the rankings, the regret and the trust flags."""
    worlds = report["worlds"]
    snapped = bool(report.get("snap_to_data"))
    lines = [
        "# Validation: the same policies in " + ", ".join(worlds),
        "",
        f"{report['episodes']} episodes per policy and world, at most {report['max_steps']} steps; episode i "
        "starts from the same state in every world (imagination from reality's first "
        f"{report['context']} frames). Cells: mean return [95% t-interval]; success [95% Wilson interval].",
        "",
        "| policy | "
        + " | ".join(worlds)
        + " | imagined-future spread (× in-data) | frames outside the data | decisions kept on imagined frames"
        + (" | snap distance" if snapped else "")
        + " | flags |",
        "|---|" + "---|" * (len(worlds) + 4 + snapped),
    ]
    for name, p in report["policies"].items():
        tr = p.get("trust", {})
        ratio = tr.get("spread_ratio")
        outside, kept, snap = tr.get("outside_data"), tr.get("decisions_kept"), tr.get("snap_distance")
        lines.append(
            f"| {name} | "
            + " | ".join(_world_cell(p["worlds"].get(w)) for w in worlds)
            + f" | {'—' if ratio is None else f'{ratio:.2f}'} | {'—' if outside is None else f'{100 * outside:.0f}%'}"
            + f" | {'—' if kept is None else f'{kept:.2f}'}"
            + (f" | {'—' if snap is None else f'{snap:.1f}'}" if snapped else "")
            + f" | {', '.join(p.get('flags', [])) or '—'} |"
        )
    lines += [
        "",
        "## Does one world rank the policies as another does?",
        "",
        "| judge – truth | policies | Spearman ρ [bootstrap 95%] | Kendall τ [95%] | regret [95%] | "
        "regret / (expert − random) |",
        "|---|---|---|---|---|---|",
    ]
    for key, pr in report["pairs"].items():
        rho, tau = pr["spearman_rho"], pr["kendall_tau"]
        frac = pr.get("regret_fraction")
        lines.append(
            f"| {key} | {pr['policies']} | {'n/a' if rho is None else f'{rho:.2f}'} {_ci(pr['spearman_rho_ci95'])} | "
            f"{'n/a' if tau is None else f'{tau:.2f}'} {_ci(pr['kendall_tau_ci95'])} | {pr['regret']:.2f} "
            f"{_ci(pr['regret_ci95'])} | {'—' if frac is None else f'{100 * frac:.0f}%'} |"
        )
    lines += diagnosis_lines(report.get("diagnosis"))
    trust = report.get("trust_reference", {})
    lines += [
        "",
        "Regret: the true return of the truly best policy minus that of the one the judging world ranks best.",
        "",
        "## How far to trust an imagined return",
        "",
        f"- Spread: the RMS difference between two sampled futures along the policy's own imagined rollouts, "
        f"against {trust.get('in_data_spread', float('nan')):.2f} (0–255) along the dataset's held-out episodes; "
        f"flag `unsure` above {trust.get('spread_flag', 1.5):.1f}×.",
        f"- Outside the data: the share of the policy's frames (in the "
        f"{trust.get('coverage_world', 'twin')}) farther from every training frame than "
        f"{100 * (1 - trust.get('expected_outside', 0.05)):.0f}% of held-out frames are; flag `leaves data` "
        f"above {100 * trust.get('outside_flag', 0.15):.0f}%.",
        "- Decisions kept: reality's episodes replayed open loop in imagination, and how often the policy takes "
        "the same most likely action on the imagined frame as on the true one (relative to how often it repeats "
        "itself on the true one; a policy that ignores what it sees scores 1); flag `sees differently` below "
        f"{trust.get('decision_flag', 0.8):.2f}: imagination judges it on views it does not act on as on real ones, "
        "so its imagined return says little about its true one.",
        *(
            [
                "- Snap distance: imagined frames were snapped to the nearest frame of the model's data "
                "(`--snap-to-data`); the mean RMS distance (0–255, at the model's resolution) from each sample to "
                "the frame shown. Large where the policy takes imagination where the data has no view."
            ]
            if snapped
            else []
        ),
        "",
    ]
    for key in report["plots"]:
        if key.startswith("pair:"):
            lines += [f"![{key[5:]}]({report['plots'][key]})", ""]
    for key, file in report["plots"].items():
        if key.startswith("frames:"):
            lines += [f"Example episode of `{key[7:]}` (rows: {', '.join(worlds)}):", "", f"![{key}]({file})", ""]
    if "psnr_horizon" in report["plots"]:
        lines += ["![PSNR against horizon](psnr_horizon.png)", ""]
    return "\n".join(lines)
