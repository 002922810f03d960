"""Figures: one function per figure, each returns a matplotlib Figure; the theme is set once here.

Saving goes through :func:`save_figure`, which writes PNG and PDF with deterministic metadata
(no timestamps, no software version) so that re-running the pipeline does not churn files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")  # scripts and CI: no display; notebooks keep their inline backend
import matplotlib.pyplot as plt
import seaborn as sns

from . import io

sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                     "axes.titlesize": "medium", "pdf.fonttype": 42})


def save_figure(fig, directory: str | Path, name: str) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.pdf`` atomically with deterministic metadata."""
    out = []
    for ext, meta in (("png", {"Software": None}),
                      ("pdf", {"Creator": None, "Producer": None, "CreationDate": None})):
        path = Path(directory) / f"{name}.{ext}"
        with io.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, metadata=meta)
        out.append(path)
    return out


def pass_at_k_curve(curves: Mapping[str, Mapping[int, float]], title: str = "") -> "plt.Figure":
    """pass@k vs k (log2 x-axis), one line per label (e.g. per difficulty)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for label, curve in curves.items():
        ks = sorted(int(k) for k in curve)
        ax.plot(ks, [curve[k] if k in curve else curve[str(k)] for k in ks], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples, T = 1)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def bars(values: Mapping[str, float], errors: Mapping[str, Sequence[float]] | None = None, ylabel: str = "",
         title: str = "") -> "plt.Figure":
    """A simple labelled bar chart with optional [lo, hi] error bars."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    labels = list(values)
    ys = [values[k] for k in labels]
    yerr = None
    if errors:
        # max(0, .): the mean of equal seeds can exceed their max by one rounding step (matplotlib refuses < 0)
        yerr = [[max(0.0, ys[i] - errors[k][0]) for i, k in enumerate(labels)],
                [max(0.0, errors[k][1] - ys[i]) for i, k in enumerate(labels)]]
    ax.bar(labels, ys, yerr=yerr, capsize=3, color=sns.color_palette()[: len(labels)])
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def reward_and_test_curves(curves: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """Training reward (left) and greedy test / train-subset accuracy (right) vs step, one colour per arm,
    seed bands (mean ± min/max over seeds). ``curves`` is long-form: arm, seed, step, metric, value."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metrics, ylabel in ((axes[0], ["reward (EMA 10)"], "training reward"),
                                (axes[1], ["test_acc", "train_acc"], "greedy accuracy")):
        data = curves[curves["metric"].isin(metrics)]
        sns.lineplot(data=data, x="step", y="value", hue="arm", style="metric" if len(metrics) > 1 else None,
                     errorbar=("pi", 100), estimator="mean", ax=ax)
        ax.set_ylabel(ylabel)
        ax.set_ylim(-0.02, 1.02)
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def esd_tails(panels: Sequence[tuple[str, "np.ndarray", object]], ncols: int = 3) -> "plt.Figure":
    """Empirical CCDF P(λ ≥ x) of each ESD on log-log axes with its fitted power-law tail.

    ``panels``: (title, eigenvalues, spectra.PowerLawFit). The fitted tail is drawn as
    (n_tail / n) · (x / x_min)^(1 − α) from x_min to λ_max, the CCDF of the fitted Pareto tail.
    """
    n = len(panels)
    rows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(rows, ncols, figsize=(3.4 * ncols, 2.9 * rows), squeeze=False)
    for ax, (title, lam, fit) in zip(axes.flat, panels):
        lam = np.sort(np.asarray(lam, dtype=float))
        lam = lam[lam > 0]
        ccdf = 1.0 - np.arange(len(lam)) / len(lam)
        ax.loglog(lam, ccdf, ".", ms=3, label="ESD")
        if np.isfinite(fit.alpha) and np.isfinite(fit.xmin):
            x = lam[lam >= fit.xmin]
            ax.loglog(x, (len(x) / len(lam)) * (x / fit.xmin) ** (1 - fit.alpha), "-", lw=2,
                      label=f"α = {fit.alpha:.2f}")
            ax.axvline(fit.xmin, color="grey", lw=0.8, ls=":")
        ax.set_title(title, fontsize="small")
        ax.set_xlabel("λ = σ²")
        ax.set_ylabel("P(Λ ≥ λ)")
        ax.legend(frameon=False, fontsize="x-small")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def alpha_by_matrix(table: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """Fitted α per target matrix (x: matrix index in model order), one line per model (``model``
    column), seed bands; the WeightWatcher bands α = 2 and α = 6 as dotted lines."""
    fig, ax = plt.subplots(figsize=(9, 3.4))
    sns.lineplot(data=table, x="index", y="alpha", hue="model", errorbar=("pi", 100), marker="o", ms=3, ax=ax)
    for y in (2.0, 6.0):
        ax.axhline(y, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("target matrix (model order: layer × q k v o gate up down)")
    ax.set_ylabel("fitted α (ESD tail)")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def fraction_bars(summary: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """Grouped bars: ``value`` per ``model`` (x) and ``reading`` (hue) with [ci_lo, ci_hi] error bars."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    models_ = list(dict.fromkeys(summary["model"]))
    readings = list(dict.fromkeys(summary["reading"]))
    width = 0.8 / len(readings)
    for j, reading in enumerate(readings):
        part = summary[summary["reading"] == reading].set_index("model").reindex(models_)
        x = np.arange(len(models_)) + (j - (len(readings) - 1) / 2) * width
        err = [part["value"] - part["ci_lo"], part["ci_hi"] - part["value"]]
        ax.bar(x, part["value"], width, yerr=err, capsize=3, label=reading)
    ax.set_xticks(np.arange(len(models_)), models_, rotation=15)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("fraction of target matrices")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def alignment_curves(table: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """|cos(x(t), x(T))| vs step for x = u1 and v1 (hue: side), one panel per arm, seed bands; the
    random-vector baseline of each side dotted. ``table``: arm, seed, step, side, cos_final, baseline
    (already averaged over matrices per seed)."""
    arms = list(dict.fromkeys(table["arm"]))
    fig, axes = plt.subplots(1, len(arms), figsize=(5 * len(arms), 3.4), squeeze=False, sharey=True)
    for ax, arm in zip(axes.flat, arms):
        part = table[table["arm"] == arm]
        sns.lineplot(data=part, x="step", y="cos_final", hue="side", errorbar=("pi", 100), ax=ax)
        for side, colour in zip(("u", "v"), sns.color_palette()):
            ax.axhline(part.loc[part["side"] == side, "baseline"].mean(), color=colour, lw=0.8, ls=":")
        ax.set_title(arm)
        ax.set_ylabel("|cos(x(t), x(T))|")
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False, fontsize="small", title="rank-1 vector")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep_gaps(sweep: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """Two panels (Δ training reward, Δ test accuracy; Full − PR1S): one point per PR1S arm with its CI,
    labelled by K and variant. ``sweep``: arm, K, variant, metric (reward_gap | test_gap), mean, ci_lo, ci_hi."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, metric, ylabel in ((axes[0], "reward_gap", "Δ training reward (last quarter)"),
                               (axes[1], "test_gap", "Δ final greedy test accuracy")):
        part = sweep[sweep["metric"] == metric].reset_index(drop=True)
        x = np.arange(len(part))
        ax.errorbar(x, part["mean"], yerr=[part["mean"] - part["ci_lo"], part["ci_hi"] - part["mean"]],
                    fmt="o", capsize=4)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(x, [f"{v}\nK={k}" for v, k in zip(part["variant"], part["K"])])
        ax.set_ylabel(ylabel + "\n(Full − PR1S)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def delta_bars(summary: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """C2 figure: change relative to the base model per axis (x) and model (hue), with 95% CIs; one panel
    for exact-match accuracy and one for the answer log-likelihood. ``summary``: axis, measure
    (acc | logp), model, mean, ci_lo, ci_hi (claims.paired_deltas)."""
    measures = [m for m in ("acc", "logp") if m in set(summary["measure"])]
    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 3.6), squeeze=False)
    models = list(dict.fromkeys(summary["model"]))
    width = 0.8 / max(1, len(models))
    for ax, measure in zip(axes.flat, measures):
        part = summary[summary["measure"] == measure]
        axes_names = list(dict.fromkeys(part["axis"]))
        for j, (model, colour) in enumerate(zip(models, sns.color_palette(n_colors=len(models)))):
            rows = part[part["model"] == model].set_index("axis").reindex(axes_names)
            x = np.arange(len(axes_names)) + (j - (len(models) - 1) / 2) * width
            ax.bar(x, rows["mean"], width, color=colour, label=model,
                   yerr=[rows["mean"] - rows["ci_lo"], rows["ci_hi"] - rows["mean"]], capsize=2)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(np.arange(len(axes_names)), axes_names)
        ax.set_ylabel("Δ greedy accuracy vs base" if measure == "acc" else "Δ mean log p(answer) vs base")
    axes.flat[0].legend(frameon=False, fontsize="small", ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def recovery_vs_rank(rec: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """Recovery of the full-RL gain vs the rank k of the kept update, one line per task, seed bands.
    ``rec``: task, k, seed, recovery (claims.per_task_recovery rows with a numeric k)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    sns.lineplot(data=rec, x="k", y="recovery", hue="task", marker="o", errorbar=("pi", 100), ax=ax)
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rank k of the kept update (truncated)")
    ax.set_ylabel("recovery of the full-RL gain")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def extrapolation_curves(extra: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """Extrapolated / trained test accuracy vs the window's last step, one line per method, seed bands.
    ``extra``: window, method, seed, ratio."""
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sns.lineplot(data=extra, x="window", y="ratio", hue="method", marker="o", errorbar=("pi", 100), ax=ax)
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("last step of the early window")
    ax.set_ylabel("test accuracy / trained model's")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def claims_overview(report: dict, title: str = "") -> "plt.Figure":
    """One row per measured quantity of the claims report: mean with its 95% CI, grouped by claim and
    labelled with the claim's verdict (quantities have different units; zero is marked)."""
    rows = [(c["id"], c["verdict"], m) for c in report["claims"] for m in c["measured"]]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(3, len(rows)) + 1))
    colours = dict(zip(("holds", "does not hold", "inconclusive"), sns.color_palette(n_colors=3)))
    for i, (cid, verdict, m) in enumerate(rows):
        y = len(rows) - 1 - i
        ax.errorbar(m["mean"], y, xerr=[[m["mean"] - m["ci"][0]], [m["ci"][1] - m["mean"]]], fmt="o", capsize=3,
                    color=colours.get(verdict, "grey"))
    ax.set_yticks(range(len(rows)), [f"{cid} ({verdict}): {m['quantity']}" for cid, verdict, m in reversed(rows)],
                  fontsize="small")
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("measured value (mean, 95% CI over seeds)")
    ax.set_title(title)
    fig.tight_layout()
    return fig
