"""Figures of training: pass@k of the base model (fig00), training reward and accuracy of Full RL vs PR1S
(fig02) and the PR1S sweep's gaps (fig02_sweep)."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns

from ..claims.base import arm_label
from .style import bottom_legend, error_bars, finish, legend_outside, pass_band, pass_handle, plt, threshold

REWARD_EMA_SPAN = 10  # fig02 draws the sampled reward smoothed by an exponential moving average of this span (steps)
EVAL_LABELS = {"test_acc": "held-out test problems", "train_acc": "RL training problems (train subset)"}


def pass_at_k_curve(curves: Mapping[str, Mapping[int, float]], title: str = "", caption: str = "") -> "plt.Figure":
    """pass@k vs k (log2 x-axis), one line per label (e.g. per difficulty); points at the measured k."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for label, curve in curves.items():
        ks = sorted(int(k) for k in curve)
        ax.plot(ks, [curve[k] if k in curve else curve[str(k)] for k in ks], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples at temperature 1)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0, 1.02)
    legend_outside(ax, title="difficulty")
    return finish(fig, title, caption)


def _ema(values: pd.Series, span: int) -> pd.Series:
    return values.ewm(span=span).mean()


def reward_and_test_curves(rewards: "pd.DataFrame", evals: "pd.DataFrame", ema_span: int = REWARD_EMA_SPAN,
                           window_start: float | None = None, substitution_every: int | None = None,
                           pr1s_arm: str | None = None, n_steps: int | None = None, title: str = "",
                           caption: str = "") -> "plt.Figure":
    """C1's figure. Left: the training reward, an EMA (span ``ema_span`` steps) of the sampled reward of each
    step, per arm (mean over seeds, band: min–max over seeds); the last-quarter window whose raw mean reward
    decides C1 shaded (steps > ``window_start``); PR1S's substitution steps (multiples of
    ``substitution_every``) ticked. Right: greedy accuracy at the evaluation steps only (markers, min–max
    over seeds as bars; nothing is drawn between evaluations). ``rewards``: arm, seed, step, reward (raw);
    ``evals``: arm, seed, step, test_acc[, train_acc]."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 3.9))
    arms = list(dict.fromkeys(rewards["arm"]))
    colours = dict(zip(arms, sns.color_palette(n_colors=len(arms))))
    n_steps = int(n_steps if n_steps is not None else rewards["step"].max())
    if window_start is not None:
        left.axvspan(window_start, n_steps, color="0.85", alpha=0.6, lw=0,
                     label=f"last quarter (steps {int(window_start) + 1}–{n_steps}): C1's Δreward = mean raw "
                           "reward here")
    if substitution_every:
        for j, s in enumerate(range(substitution_every, n_steps + 1, substitution_every)):
            left.axvline(s, color=colours.get(pr1s_arm, "grey"), lw=0.8, ls=":", alpha=0.9,
                         label=f"PR1S substitution (every {substitution_every} steps)" if j == 0 else None)
    for arm in arms:
        part = rewards[rewards["arm"] == arm].sort_values("step")
        smooth = pd.concat([d.assign(ema=_ema(d["reward"], ema_span)) for _, d in part.groupby("seed")])
        band = smooth.groupby("step")["ema"].agg(["mean", "min", "max"])
        left.plot(band.index, band["mean"], color=colours[arm], label=arm_label(arm))
        left.fill_between(band.index, band["min"], band["max"], color=colours[arm], alpha=0.2, lw=0)
    left.set_xlim(0, n_steps)
    left.set_ylim(-0.02, 1.02)
    left.set_xlabel("optimizer step")
    left.set_ylabel(f"training reward\n(EMA over {ema_span} steps of the sampled reward)")
    metrics = [m for m in EVAL_LABELS if m in evals]
    markers = dict(zip(metrics, ("o", "s")))
    steps = sorted(evals["step"].unique())
    dodge = (min(np.diff(steps)) if len(steps) > 1 else 1) * 0.05
    n_series = len(arms) * len(metrics)
    for i, arm in enumerate(arms):
        part = evals[evals["arm"] == arm]
        for j, metric in enumerate(metrics):
            agg = part.groupby("step")[metric].agg(["mean", "min", "max"])
            x = agg.index + (i * len(metrics) + j - (n_series - 1) / 2) * dodge
            right.errorbar(x, agg["mean"], yerr=error_bars(agg["mean"], agg["min"], agg["max"]),
                           fmt=markers[metric], ls="none", color=colours[arm], capsize=2, ms=5,
                           mfc=colours[arm] if metric == "test_acc" else "white")
    handles = [plt.Line2D([], [], color=colours[a], lw=6, label=arm_label(a)) for a in arms]
    handles += [plt.Line2D([], [], color="black", marker=markers[m], ls="none", mfc="black" if m == "test_acc"
                           else "white", label=EVAL_LABELS[m]) for m in metrics]
    right.set_xticks(steps)
    right.set_ylim(-0.02, 1.04)
    right.set_xlabel("optimizer step (greedy evaluations only)")
    right.set_ylabel("greedy accuracy")
    finish(fig, title, caption)
    left_handles = [h for h in left.get_legend_handles_labels()[0] if h.get_label() not in {arm_label(a) for a in arms}]
    spread = plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.3, label="band / bars: min–max over seeds")
    bottom_legend(fig, handles + left_handles + [spread], ncol=3)
    return fig


SWEEP_VARIANTS = {"normmatch": "norm-matched", "trunc": "truncated"}


def sweep_gaps(sweep: "pd.DataFrame", title: str = "", thresholds: Mapping[str, Sequence[float]] | None = None,
               deciding_arm: str | None = None, caption: str = "") -> "plt.Figure":
    """Two panels (Δ training reward, Δ test accuracy; Full − PR1S): one column per PR1S arm with its mean, the
    95% bootstrap CI (thick) and the 95% t-interval (thin) at the same place; the condition's side shaded.
    ``sweep``: arm, K, variant, metric (reward_gap | test_gap), mean, ci_lo, ci_hi[, t_lo, t_hi];
    ``thresholds``: metric -> the claim's lines on it (one: "at least"; two: the band "within")."""
    fig, axes = plt.subplots(1, 2, figsize=(max(8.5, 2.2 * sweep["arm"].nunique() + 5), 3.9))
    handles = []
    for ax, metric, ylabel in ((axes[0], "reward_gap", "Δ training reward\n(raw, last quarter)"),
                               (axes[1], "test_gap", "Δ final greedy\ntest accuracy")):
        part = sweep[sweep["metric"] == metric].reset_index(drop=True)
        x = np.arange(len(part))
        if "t_lo" in part:
            ax.errorbar(x, part["mean"], yerr=error_bars(part["mean"], part["t_lo"], part["t_hi"]),
                        fmt="none", capsize=6, lw=0.9, color="grey", label="95% t-interval (thin)", zorder=3)
        ax.errorbar(x, part["mean"], yerr=error_bars(part["mean"], part["ci_lo"], part["ci_hi"]),
                    fmt="o", capsize=3, lw=2.4, color="tab:blue", label="95% bootstrap CI (thick)", zorder=4)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlim(-0.7, len(part) - 0.3)
        lines = list((thresholds or {}).get(metric, ()))
        if len(lines) == 1:
            threshold(ax, lines[0], "above", label=f"threshold: holds at ≥ {lines[0]:g}")
        elif len(lines) == 2:
            pass_band(ax, min(lines), max(lines), label=f"threshold: holds within ±{max(lines):g}")
        ax.set_xticks(x, [f"K = {k}, {SWEEP_VARIANTS.get(v, v)}" + ("\n(decides C1)" if a == deciding_arm else "")
                          for a, v, k in zip(part["arm"], part["variant"], part["K"])], fontsize="small")
        ax.set_ylabel(ylabel + "\nFull − PR1S")
        ax.set_xlabel("PR1S arm")
        handles += ax.get_legend_handles_labels()[0] + ([pass_handle("condition holds (shaded)")] if lines else [])
    finish(fig, title, caption)
    bottom_legend(fig, handles, ncol=3)
    return fig
