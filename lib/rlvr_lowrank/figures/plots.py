"""Figures: one function per figure, each returns a matplotlib Figure; the theme is set once here.

Saving goes through :func:`save_figure`, which writes PNG and PDF with deterministic metadata
(no timestamps, no software version) so that re-running the pipeline does not churn files.
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")  # scripts and CI: no display; notebooks keep their inline backend
import matplotlib.pyplot as plt
import seaborn as sns

from .. import fileio
from ..analysis import power_law
from ..claims import verdict
from ..claims.base import arm_label

sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
THRESHOLD_STYLE = {"color": "crimson", "lw": 1.2, "ls": "--"}  # every line a verdict is read against
ZERO_MARK = {"marker": "_", "s": 260, "color": "black", "zorder": 4, "linewidths": 2}  # bar tops, visible at 0
READING_LABELS = {"strict": "pre-registered test", "ww_band": "weaker reading (reliable fit, α ≤ 6)",
                  "shuffled": "entry-shuffled control"}
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                     "axes.titlesize": "medium", "pdf.fonttype": 42})


def save_figure(fig, directory: str | Path, name: str) -> list[Path]:
    """Write ``<name>.png`` and ``<name>.pdf`` atomically with deterministic metadata."""
    out = []
    for ext, meta in (("png", {"Software": None}),
                      ("pdf", {"Creator": None, "Producer": None, "CreationDate": None})):
        path = Path(directory) / f"{name}.{ext}"
        with fileio.atomic_path(path) as tmp:
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
         title: str = "", xlabel: str = "") -> "plt.Figure":
    """A labelled bar chart with optional [lo, hi] error bars; keys are shown with ``arm_label`` and each
    bar's top is marked, so a bar at 0 stays visible."""
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [arm_label(k) for k in values]
    values = dict(zip(labels, values.values()))
    errors = {arm_label(k): v for k, v in errors.items()} if errors else None
    ys = [values[k] for k in labels]
    yerr = None
    if errors:
        # max(0, .): the mean of equal seeds can exceed their max by one rounding step (matplotlib refuses < 0)
        yerr = [[max(0.0, ys[i] - errors[k][0]) for i, k in enumerate(labels)],
                [max(0.0, errors[k][1] - ys[i]) for i, k in enumerate(labels)]]
    ax.bar(labels, ys, yerr=yerr, capsize=3, color=sns.color_palette(n_colors=len(labels)), edgecolor="black", lw=0.6)
    ax.scatter(labels, ys, **ZERO_MARK)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.set_ylim(-0.03, 1.05)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=30)
    plt.setp(ax.get_xticklabels(), ha="right")
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

    ``panels``: (title, eigenvalues, power_law.PowerLawFit). The fitted tail is drawn as
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
    """Fitted α per target matrix (x: matrix index in model order). Top: α of each model (``model``
    column, seed bands) with the heavy-tailed band of the C3 test (power_law.ALPHA_HT_LO ≤ α ≤
    power_law.ALPHA_HT_HI); bottom: α(model) − α(base) per matrix, which shows what the curves on top
    hide (RL moves α little). Without a "base" model (one model's spectra) only the top panel is drawn."""
    table = table.assign(model=table["model"].map(arm_label))
    base = table[table["model"] == arm_label("base")].groupby("index")["alpha"].mean()
    others = table[table["model"] != arm_label("base")]
    if base.empty or others.empty:
        fig, top = plt.subplots(figsize=(9, 3.6))
        bottom = None
    else:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True, height_ratios=(3, 2))
    sns.lineplot(data=table, x="index", y="alpha", hue="model", style="model", markers=True, dashes=False,
                 errorbar=("pi", 100), ms=5, ax=top)
    for y in (power_law.ALPHA_HT_LO, power_law.ALPHA_HT_HI):
        top.axhline(y, **THRESHOLD_STYLE, label=f"heavy-tailed band {power_law.ALPHA_HT_LO:g} ≤ α ≤ "
                    f"{power_law.ALPHA_HT_HI:g}" if y == power_law.ALPHA_HT_LO else None)
    top.set_ylabel("fitted α (ESD tail)")
    top.set_title(title)
    top.legend(frameon=False, fontsize="small", ncol=2)
    top.set_xlabel("target matrix (model order: layer × q k v o gate up down)")
    if bottom is None:
        fig.tight_layout()
        return fig
    diff = others.copy()
    diff["Δα"] = diff["alpha"] - diff["index"].map(base)
    sns.lineplot(data=diff, x="index", y="Δα", hue="model", style="model", markers=True, dashes=False,
                 errorbar=("pi", 100), ms=5, ax=bottom, palette=sns.color_palette()[1:1 + diff["model"].nunique()])
    bottom.axhline(0, color="grey", lw=0.8)
    bottom.set_ylabel("α(RL model) − α(base)")
    bottom.set_xlabel("target matrix (model order: layer × q k v o gate up down)")
    bottom.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def fraction_bars(summary: "pd.DataFrame", title: str = "", threshold: float | None = None) -> "plt.Figure":
    """Grouped bars: ``value`` per ``model`` (x) and ``reading`` (hue) with [ci_lo, ci_hi] error bars,
    each bar's top marked (visible at 0); ``threshold``: the claim's line."""
    fig, ax = plt.subplots(figsize=(8, 3.8))
    models_ = list(dict.fromkeys(summary["model"]))
    readings = list(dict.fromkeys(summary["reading"]))
    width = 0.8 / len(readings)
    for j, reading in enumerate(readings):
        part = summary[summary["reading"] == reading].set_index("model").reindex(models_)
        x = np.arange(len(models_)) + (j - (len(readings) - 1) / 2) * width
        err = [(part["value"] - part["ci_lo"]).clip(lower=0), (part["ci_hi"] - part["value"]).clip(lower=0)]
        ax.bar(x, part["value"], width, yerr=err, capsize=3, label=READING_LABELS.get(reading, reading),
               edgecolor="black", lw=0.6)
        ax.scatter(x, part["value"], **{**ZERO_MARK, "s": 120})
    if threshold is not None:
        ax.axhline(threshold, **THRESHOLD_STYLE, label=f"threshold ({threshold:g})")
    ax.set_xticks(np.arange(len(models_)), [textwrap.fill(arm_label(m), 14) for m in models_])
    ax.set_ylim(-0.03, 1.08)
    ax.set_ylabel("fraction of target matrices")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    return fig


SIDE_LABELS = {"u": "u1 (output side)", "v": "v1 (input side)"}


def alignment_curves(table: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """|cos(x(t), x(T))| vs step for x = u1 and v1 (hue: side), one panel per arm, seed bands; the
    random-vector baseline of each side dotted, with its legend entry. ``table``: arm, seed, step,
    side, cos_final, baseline (already averaged over matrices per seed)."""
    arms = list(dict.fromkeys(table["arm"]))
    fig, axes = plt.subplots(1, len(arms), figsize=(5 * len(arms), 3.6), squeeze=False, sharey=True)
    for ax, arm in zip(axes.flat, arms):
        part = table[table["arm"] == arm].assign(side=lambda d: d["side"].map(SIDE_LABELS))
        sns.lineplot(data=part, x="step", y="cos_final", hue="side", hue_order=list(SIDE_LABELS.values()),
                     errorbar=("pi", 100), ax=ax)
        for side, colour in zip(SIDE_LABELS.values(), sns.color_palette()):
            ax.axhline(part.loc[part["side"] == side, "baseline"].mean(), color=colour, lw=1, ls=":",
                       label=f"random baseline, {side.split(' ')[0]}")
        ax.set_title(arm_label(arm))
        ax.set_ylabel("|cos(x(t), x(T))|")
        ax.set_ylim(0, 1.02)
        ax.legend(frameon=False, fontsize="small", title="rank-1 vector")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def sweep_gaps(sweep: "pd.DataFrame", title: str = "",
               thresholds: Mapping[str, Sequence[float]] | None = None) -> "plt.Figure":
    """Two panels (Δ training reward, Δ test accuracy; Full − PR1S): one point per PR1S arm with its
    bootstrap CI (and, where the rows have it, the t-interval as a thin bar), labelled by K and variant.
    ``sweep``: arm, K, variant, metric (reward_gap | test_gap), mean, ci_lo, ci_hi[, t_lo, t_hi];
    ``thresholds``: metric -> the claim's lines on it."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, ylabel in ((axes[0], "reward_gap", "Δ training reward (last quarter)"),
                               (axes[1], "test_gap", "Δ final greedy test accuracy")):
        part = sweep[sweep["metric"] == metric].reset_index(drop=True)
        x = np.arange(len(part))
        if "t_lo" in part:
            ax.errorbar(x + 0.12, part["mean"], yerr=[part["mean"] - part["t_lo"], part["t_hi"] - part["mean"]],
                        fmt="s", ms=3, capsize=2, lw=0.8, color="grey", label="95% t-interval")
        ax.errorbar(x, part["mean"], yerr=[part["mean"] - part["ci_lo"], part["ci_hi"] - part["mean"]],
                    fmt="o", capsize=4, label="95% bootstrap CI")
        ax.axhline(0, color="grey", lw=0.8)
        for j, y in enumerate((thresholds or {}).get(metric, ())):
            ax.axhline(y, **THRESHOLD_STYLE, label="threshold" if j == 0 else None)
        ax.set_xticks(x, [f"K = {k}\n{'norm-matched' if v == 'normmatch' else 'truncated' if v == 'trunc' else v}"
                          for v, k in zip(part["variant"], part["K"])])
        ax.set_ylabel(ylabel + "\n(Full − PR1S)")
        ax.legend(frameon=False, fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


AXIS_LABELS = {"math": "math test", "fact": "knowledge probe", "skill": "second skill"}


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
            ax.bar(x, rows["mean"], width, color=colour, label=arm_label(model), edgecolor="black", lw=0.5,
                   yerr=[rows["mean"] - rows["ci_lo"], rows["ci_hi"] - rows["mean"]], capsize=2)
            ax.scatter(x, rows["mean"], **{**ZERO_MARK, "s": 60})
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(np.arange(len(axes_names)), [AXIS_LABELS.get(a, a) for a in axes_names])
        ax.set_ylabel("Δ greedy accuracy vs base" if measure == "acc" else "Δ mean log p(answer) vs base")
    axes.flat[0].legend(frameon=False, fontsize="small", ncol=2)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def recovery_vs_rank(rec: "pd.DataFrame", title: str = "",
                     thresholds: Mapping[str, float] | None = None) -> "plt.Figure":
    """Recovery of the full-RL gain vs the rank k of the kept update, one colour per task, seed bands;
    the truncated rank-k models as lines and the norm-matched rank-1 model (what C2's verdict reads)
    as a separate marker at k = 1. ``rec``: task, k, seed, recovery, variant ("truncated" |
    "norm-matched"); ``thresholds``: label -> the claim's line."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    if "variant" not in rec:
        rec = rec.assign(variant="truncated")
    tasks_ = list(dict.fromkeys(rec["task"]))
    colours = dict(zip(tasks_, sns.color_palette(n_colors=len(tasks_))))
    trunc = rec[rec["variant"] == "truncated"]
    sns.lineplot(data=trunc.assign(task=trunc["task"] + ", truncated rank-k"), x="k", y="recovery", hue="task",
                 palette=[colours[t] for t in dict.fromkeys(trunc["task"])], marker="o", errorbar=("pi", 100), ax=ax)
    for task, part in rec[rec["variant"] == "norm-matched"].groupby("task", sort=False):
        ax.scatter(part["k"].mean(), part["recovery"].mean(), marker="*", s=220, color=colours[task], edgecolor="black",
                   zorder=5, label=f"{task}, rank-1 norm-matched (the verdict's)")
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.axhline(0, color="grey", lw=0.8)
    for label, y in (thresholds or {}).items():
        ax.axhline(y, **THRESHOLD_STYLE)
        ax.annotate(label, (ax.get_xlim()[1], y), xytext=(-4, 3), textcoords="offset points", ha="right",
                    fontsize="x-small", color=THRESHOLD_STYLE["color"])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("rank k of the kept update")
    ax.set_ylabel("recovery of the full-RL gain")
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="x-small")
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


# one colour per verdict class of claims.verdict, in its order (colour-blind-safe palette)
VERDICT_COLOURS = dict(zip(verdict.CLASSES, sns.color_palette("colorblind", n_colors=len(verdict.CLASSES))))


def condition_class(claim: dict, quantity: str) -> str:
    """The verdict class of the condition of ``claim`` (a claims.json entry) that reads ``quantity``, searched
    through its ``decided_by`` conditions; the claim's own class where no condition names that quantity."""
    stack = list((claim.get("decided_by") or {}).get("conditions") or [])
    while stack:
        c = stack.pop(0)
        if c.get("quantity") == quantity and not c.get("conditions"):
            return c["class"]
        stack += c.get("conditions") or []
    return claim["verdict"]


def claims_overview(report: dict, title: str = "") -> "plt.Figure":
    """One row per measured quantity of the claims report: mean with its bootstrap CI (thick) and
    t-interval (thin), coloured by the verdict class of the condition that reads it (``condition_class``:
    a quantity that meets its condition is not coloured by its claim's failing verdict), the quantity's
    threshold as a red tick where the claim states one (``threshold`` of a measured entry); quantities have
    different units, zero is marked."""
    rows = [(c["id"], condition_class(c, m["quantity"]), m) for c in report["claims"] for m in c["measured"]]
    fig, ax = plt.subplots(figsize=(8, 0.5 * max(3, len(rows)) + 1.4))
    for i, (cid, klass, m) in enumerate(rows):
        y = len(rows) - 1 - i
        colour = VERDICT_COLOURS.get(klass, "grey")
        if m.get("t_ci"):
            ax.errorbar(m["mean"], y, xerr=[[max(0, m["mean"] - m["t_ci"][0])], [max(0, m["t_ci"][1] - m["mean"])]],
                        fmt="none", capsize=2, lw=0.8, color=colour)
        ax.errorbar(m["mean"], y, xerr=[[max(0, m["mean"] - m["ci"][0])], [max(0, m["ci"][1] - m["mean"])]], fmt="o",
                    capsize=3, lw=2.2, color=colour)
        for t in m.get("thresholds") or ():
            ax.plot([t], [y], marker="|", ms=16, mew=2, color=THRESHOLD_STYLE["color"], zorder=5)
    ax.set_yticks(range(len(rows)), [f"{cid}: {m['quantity']}" for cid, _, m in reversed(rows)], fontsize="small")
    ax.axvline(0, color="grey", lw=0.8)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=v) for v, c in VERDICT_COLOURS.items()]
    handles += [plt.Line2D([], [], color=THRESHOLD_STYLE["color"], marker="|", ms=12, mew=2, ls="none",
                           label="threshold"),
                plt.Line2D([], [], color="grey", lw=0.8, label="thin: t-interval; thick: bootstrap CI")]
    ax.legend(handles=handles, frameon=False, fontsize="x-small", loc="upper left", bbox_to_anchor=(1, 1),
              title="class of the quantity's condition", title_fontsize="x-small")
    ax.set_xlabel("measured value (mean, 95% intervals over seeds)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def pls_r2_boxes(pls: "pd.DataFrame", title: str = "") -> "plt.Figure":
    """PLS R² per matrix type, in-sample and leave-one-out, one panel per signal; the y range covers
    every value (no box clipped). ``pls``: signal, type, seed, r2, r2_loo."""
    long = pls.melt(id_vars=["signal", "type", "seed"], value_vars=["r2", "r2_loo"], var_name="fit", value_name="R²")
    long["fit"] = long["fit"].map({"r2": "in-sample R²", "r2_loo": "leave-one-out R²"})
    long["type"] = long["type"].str.replace("_proj", "", regex=False)
    signals = list(dict.fromkeys(long["signal"]))
    fig, axes = plt.subplots(1, len(signals), figsize=(5.5 * len(signals), 3.8), squeeze=False, sharey=True)
    for ax, signal in zip(axes.flat, signals):
        part = long[(long["signal"] == signal) & np.isfinite(long["R²"])]
        types, fits = list(dict.fromkeys(long["type"])), list(dict.fromkeys(long["fit"]))
        for j, (fit, colour) in enumerate(zip(fits, sns.color_palette(n_colors=len(fits)))):
            for i, typ in enumerate(types):
                vals = part.loc[(part["type"] == typ) & (part["fit"] == fit), "R²"].to_numpy()
                if len(vals):
                    ax.boxplot(vals, positions=[i + (j - (len(fits) - 1) / 2) * 0.38], widths=0.34, patch_artist=True,
                               boxprops={"facecolor": colour}, medianprops={"color": "black"})
            ax.plot([], [], "s", color=colour, label=fit)
        ax.set_xticks(range(len(types)), types)
        ax.set_title(str(signal).replace("_", " "))
        ax.set_xlabel("matrix type")
        ax.axhline(0, color="grey", lw=0.8)
        ax.legend(frameon=False, fontsize="x-small")
    lo = float(np.nanmin(long["R²"])) if len(long) else -1.0
    axes.flat[0].set_ylim(min(-0.05, lo - 0.05), 1.05)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
