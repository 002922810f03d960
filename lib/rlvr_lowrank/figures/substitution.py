"""Figures of substituted models: recovery of the RL gain (fig01, C0), what the rank-1 model keeps besides math
(fig03, C2 reading 1) and recovery per task vs rank under multi-task RL (fig03_multitask_rank_k, reading 2)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns

from ..claims import stats
from ..claims.base import arm_label
from .style import (
    THRESHOLD_STYLE,
    ZERO_MARK,
    bottom_legend,
    error_bars,
    finish,
    legend_outside,
    pass_handle,
    plt,
    threshold,
)

C0_ORDER = ("base", "random", "residual", "trunc", "normmatch", "rank-2", "rank-4", "rank-8", "full")
_PAL = sns.color_palette("colorblind")
# fig01's colours say what each bar is for
ROLE_COLOURS = {"reference (0 and 1 by definition)": "white", "control (should recover nothing)": "0.6",
                "the verdict's model": _PAL[0], "other rank-1 / rank-k": sns.light_palette(_PAL[0], 4)[1]}


def _role(variant: str) -> str:
    if variant in ("base", "full"):
        return "reference (0 and 1 by definition)"
    if variant in ("random", "residual"):
        return "control (should recover nothing)"
    if variant == "normmatch":
        return "the verdict's model"
    return "other rank-1 / rank-k"


def recovery_bars(recovery: Mapping[str, Mapping], thresholds: Mapping[str, float] | None = None, title: str = "",
                  caption: str = "") -> "plt.Figure":
    """C0's figure: recovery of the full-RL gain, (acc(model) − acc(base)) / (acc(full) − acc(base)), per
    substituted model: bar = mean over seeds, thick error bar = 95% bootstrap CI, dots = seeds; each bar's top
    marked (visible at 0); colours by role; C0's thresholds drawn over the bars they apply to (norm-matched
    rank-1: mean ≥ min_recovery and CI lower bound ≥ min_recovery_ci_lo; random direction: CI upper bound <
    max_random_recovery). ``recovery``: variant -> {mean, ci, values} (c0.json's ``recovery``)."""
    variants = [v for v in C0_ORDER if v in recovery] + [v for v in recovery if v not in C0_ORDER]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    x = np.arange(len(variants))
    means = np.array([recovery[v]["mean"] for v in variants], dtype=float)
    ci = np.array([recovery[v].get("ci") or (recovery[v]["mean"],) * 2 for v in variants], dtype=float)
    ax.bar(x, means, color=[ROLE_COLOURS[_role(v)] for v in variants], edgecolor="black", lw=0.7,
           yerr=error_bars(means, ci[:, 0], ci[:, 1]), capsize=4,
           error_kw={"lw": 1.6})
    ax.scatter(x, means, **ZERO_MARK)
    for xi, v in zip(x, variants):
        vals = recovery[v].get("values") or []
        ax.scatter(np.full(len(vals), xi) + np.linspace(-0.18, 0.18, len(vals)), vals, s=9, color="black",
                   alpha=0.6, zorder=5, lw=0)
    lo = min(-0.1, float(np.nanmin(ci)) - 0.05)
    hi = max(1.15, float(np.nanmax(ci)) + 0.05)
    ax.set_ylim(lo, hi)
    ax.set_xlim(-0.6, len(variants) - 0.4)
    ax.axhline(0, color="grey", lw=0.8)
    t = thresholds or {}

    def over(v):  # the axes-fraction span of one bar, for a threshold segment over it
        i = variants.index(v)
        return ((i - 0.45 + 0.6) / len(variants), (i + 0.45 + 0.6) / len(variants))
    # the definition heads the legend: as a second line of the y label it ran into the rotated tick labels
    handles = [plt.Line2D([], [], ls="none", label="recovery = (acc − acc(base)) / (acc(full) − acc(base))")]
    handles += [plt.Rectangle((0, 0), 1, 1, facecolor=c, edgecolor="black", lw=0.7, label=r)
                for r, c in ROLE_COLOURS.items() if any(_role(v) == r for v in variants)]
    if "normmatch" in variants and "min_recovery" in t:
        threshold(ax, t["min_recovery"], "above", span=over("normmatch"))
        handles.append(plt.Line2D([], [], **THRESHOLD_STYLE,
                                  label=f"norm-matched rank-1: mean ≥ {t['min_recovery']:g}"))
    if "normmatch" in variants and "min_recovery_ci_lo" in t:
        ax.axhline(t["min_recovery_ci_lo"], *over("normmatch"), color="crimson", lw=1.2, ls=":")
        handles.append(plt.Line2D([], [], color="crimson", lw=1.2, ls=":",
                                  label=f"… and CI lower bound ≥ {t['min_recovery_ci_lo']:g}"))
    if "random" in variants and "max_random_recovery" in t:
        threshold(ax, t["max_random_recovery"], "below", span=over("random"))
        handles.append(plt.Line2D([], [], **THRESHOLD_STYLE, label=f"random direction: CI upper bound < "
                                                                  f"{t['max_random_recovery']:g}"))
    handles += [pass_handle("condition holds (shaded)"),
                plt.Line2D([], [], color="black", marker="o", ms=3, ls="none", label="one seed"),
                plt.Line2D([], [], color="black", lw=1.6, label="95% bootstrap CI over seeds")]
    ax.set_xticks(x, [arm_label(v) for v in variants], rotation=30, ha="right", rotation_mode="anchor")
    ax.set_xlabel("model: base + part of the full-RL update ΔW")
    ax.set_ylabel("recovery of the full-RL gain")
    legend_outside(ax, handles=handles, fontsize="x-small")
    return finish(fig, title, caption)


AXIS_LABELS = {"math": "math test", "fact": "knowledge probe", "skill": "second skill"}
C2_MODELS = ("base", "full", "normmatch", "trunc", "residual")  # then the trained arms (PR1S, LoRA) in their order


def knowledge_panels(scores: "pd.DataFrame", thresholds: Mapping[str, float], ceiling: float | None = None,
                     math_recovery: Mapping | None = None, title: str = "", caption: str = "") -> "plt.Figure":
    """C2 reading 1. Left: greedy accuracy of each model on the three axes (mean over seeds, bars min–max), with
    the probes' ceiling (a probe on which base, full and rank-1 all score ≥ ``ceiling`` cannot show a drop).
    Middle, what decides: the drop full − rank-1 (norm-matched) in accuracy on the knowledge probe and the
    second skill per seed (dots) with its 95% bootstrap CI, against ``min_knowledge_drop`` (knowledge is
    lost at ≥ it, CI above 0). Right (not used by the verdict): the same drop in the mean log-probability of the
    correct answer, natural log summed over the answer's tokens (nats). ``scores``: seed, model,
    <axis>_acc, <axis>_logp (c2.json's ``scores``)."""
    fig, (a0, a1, a2) = plt.subplots(1, 3, figsize=(15, 4.4), width_ratios=(2.2, 1.1, 1.3))
    axes_names = [a for a in AXIS_LABELS if f"{a}_acc" in scores]
    models = [m for m in C2_MODELS if m in set(scores["model"])]
    models += [m for m in dict.fromkeys(scores["model"]) if m not in models]
    colours = dict(zip(models, sns.color_palette(n_colors=len(models))))
    width = 0.8 / len(models)
    for j, model in enumerate(models):
        part = scores[scores["model"] == model]
        agg = np.array([[part[f"{a}_acc"].mean(), part[f"{a}_acc"].min(), part[f"{a}_acc"].max()]
                        for a in axes_names])
        x = np.arange(len(axes_names)) + (j - (len(models) - 1) / 2) * width
        a0.bar(x, agg[:, 0], width, color=colours[model], edgecolor="black", lw=0.5, label=arm_label(model),
               yerr=error_bars(agg[:, 0], agg[:, 1], agg[:, 2]), capsize=2)
        a0.scatter(x, agg[:, 0], **{**ZERO_MARK, "s": 50})
    if ceiling is not None:
        a0.axhline(ceiling, color="0.3", lw=1, ls="-.", label=f"probe ceiling {ceiling:g}: at or above it a probe "
                                                              "cannot show a drop")
    a0.set_xticks(np.arange(len(axes_names)), [AXIS_LABELS[a] for a in axes_names])
    a0.set_ylim(-0.03, 1.08)
    a0.set_ylabel("greedy accuracy (exact match)")
    a0.set_title("accuracy per model (bars: min–max over seeds)", fontsize="small")
    wide = scores.set_index(["seed", "model"])
    seeds = [s for s in dict.fromkeys(scores["seed"]) if (s, "full") in wide.index and (s, "normmatch") in wide.index]

    def drops(measure, names):
        return {a: [wide.loc[(s, "full"), f"{a}_{measure}"] - wide.loc[(s, "normmatch"), f"{a}_{measure}"]
                    for s in seeds] for a in names}
    for ax, measure, names, ylabel in (
            (a1, "acc", [a for a in ("fact", "skill") if a in axes_names], "accuracy drop: full − rank-1"),
            (a2, "logp", [a for a in axes_names if f"{a}_logp" in scores],
             "log-probability drop: full − rank-1\n(nats, summed over answer tokens)")):
        d = drops(measure, names)
        for i, a in enumerate(names):
            s = stats.summarize(d[a]) if d[a] else {"mean": np.nan, "ci": (np.nan, np.nan)}
            ax.scatter(np.full(len(d[a]), i) + np.linspace(-0.12, 0.12, len(d[a])), d[a], s=12, color="0.4", zorder=4)
            ax.errorbar(i + 0.25, s["mean"], yerr=[[max(0, s["mean"] - s["ci"][0])], [max(0, s["ci"][1] - s["mean"])]],
                        fmt="o", color="tab:blue", capsize=3, lw=2)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xticks(range(len(names)), [AXIS_LABELS[a].replace(" ", "\n") for a in names])
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylabel(ylabel)
    lo, hi = a1.get_ylim()
    k = thresholds.get("min_knowledge_drop")
    if k is not None:
        a1.set_ylim(min(lo, -0.02), max(hi, k + 0.03))
        threshold(a1, k, "above", label=f"knowledge lost at ≥ {k:g} (CI > 0)")
    handles = a0.get_legend_handles_labels()[0] + a1.get_legend_handles_labels()[0]
    handles += [pass_handle("holds (shaded)"), plt.Line2D([], [], color="0.4", marker="o", ms=3, ls="none",
                                                           label="one seed"),
                plt.Line2D([], [], color="tab:blue", marker="o", lw=2, label="mean, 95% bootstrap CI")]
    rec = ""
    if math_recovery:
        m = math_recovery
        rec = (f"\nrank-1 math recovery {stats.fmt_mean_ci(m)} (needs ≥ "
               f"{thresholds.get('min_math_recovery', float('nan')):g})")
    a1.set_title("what decides: rank-1 = norm-matched" + rec, fontsize="small")
    a2.set_title("log-probability (not used by the verdict)", fontsize="small")
    finish(fig, title, caption)
    bottom_legend(fig, handles, ncol=4)
    return fig


def task_recovery(rows: "pd.DataFrame", tasks: Sequence[str] = ("math", "skill")) -> "pd.DataFrame":
    """Recovery per (seed, model, task) from rows of greedy accuracies (c2.json's ``multitask``): (x − x(base)) /
    (x(full) − x(base)), NaN where the gain is 0 (as claims.c2.per_task_recovery)."""
    out = []
    for seed, part in rows.groupby("seed"):
        by = part.set_index("model")
        for task in tasks:
            b, f = by.loc["base", f"{task}_acc"], by.loc["full", f"{task}_acc"]
            for model, x in by[f"{task}_acc"].items():
                out.append({"seed": seed, "model": model, "task": task, "recovery": stats.recovery(x, b, f)})
    return pd.DataFrame(out)


def rank_table(mix_rows: "pd.DataFrame") -> "pd.DataFrame":
    """fig03_multitask_rank_k's table from the multi-task rows: task, k, seed, recovery, variant."""
    rec = task_recovery(mix_rows)
    rec = rec[rec["model"].isin(["trunc", "normmatch", "rank-2", "rank-4", "rank-8"])].copy()
    rec["k"] = rec["model"].map(lambda m: 1 if m in ("trunc", "normmatch") else int(m.split("-")[1]))
    rec["variant"] = rec["model"].map(lambda m: "norm-matched" if m == "normmatch" else "truncated")
    return rec


def recovery_vs_rank(rec: "pd.DataFrame", title: str = "", thresholds: Mapping[str, float] | None = None,
                     caption: str = "") -> "plt.Figure":
    """Recovery of the full-RL gain vs the rank k of the kept update, one colour per task: the truncated rank-k
    models as points with min–max bars over seeds (joined by a thin line: k is discrete), and the norm-matched
    rank-1 model (what C2's verdict reads) as a star with its min–max bar at k = 1. ``rec``: task, k, seed,
    recovery[, variant ("truncated" | "norm-matched")]; ``thresholds``: label -> the claim's line."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    if "variant" not in rec:
        rec = rec.assign(variant="truncated")
    tasks_ = list(dict.fromkeys(rec["task"]))
    colours = dict(zip(tasks_, sns.color_palette(n_colors=len(tasks_))))
    for i, task in enumerate(tasks_):
        off = 1 + (i - (len(tasks_) - 1) / 2) * 0.06  # multiplicative dodge on the log axis
        for variant, marker, ms in (("truncated", "o", 5), ("norm-matched", "*", 13)):
            part = rec[(rec["task"] == task) & (rec["variant"] == variant)]
            if part.empty:
                continue
            agg = part.groupby("k")["recovery"].agg(["mean", "min", "max"])
            x = agg.index.to_numpy(dtype=float) * (off if variant == "truncated" else off * 0.9)
            ax.errorbar(x, agg["mean"], yerr=error_bars(agg["mean"], agg["min"], agg["max"]), fmt=marker,
                        ms=ms, color=colours[task], mec="black" if variant == "norm-matched" else colours[task],
                        ls="-" if variant == "truncated" else "none", lw=0.8, capsize=3,
                        label=f"{task}, {'truncated rank-k' if variant == 'truncated' else 'rank-1 norm-matched '}"
                              f"{'' if variant == 'truncated' else '(the verdict’s)'}".strip())
    ax.axhline(1, color="grey", lw=0.8, ls=":")
    ax.axhline(0, color="grey", lw=0.8)
    styles = ("--", "-.", ":")
    for j, (label, y) in enumerate((thresholds or {}).items()):
        ax.axhline(y, color="crimson", lw=1.2, ls=styles[j % 3], label=f"threshold: {label}")
    ax.set_xscale("log", base=2)
    ks = sorted(rec["k"].unique())
    ax.set_xticks(ks, [str(int(k)) for k in ks])
    ax.set_xlabel("rank k of the kept update")
    ax.set_ylabel("recovery of the full-RL gain")
    legend_outside(ax, fontsize="x-small", title="bars: min–max over seeds", title_fontsize="x-small")
    return finish(fig, title, caption)
