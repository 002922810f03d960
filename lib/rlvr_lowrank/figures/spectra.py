"""Figures of singular-value spectra (C3): heavy-tailed fraction per model (fig04_heavy_tailed_fraction), fitted α per
target matrix (fig04_alpha_per_matrix, fig08_smollm2_alpha) and ESDs with their fitted tails (fig04_esd_tails)."""
from __future__ import annotations

import textwrap
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns

from ..analysis import power_law
from ..analysis.targets import TARGET_SUFFIXES
from ..claims.base import arm_label
from .style import ZERO_MARK, finish, legend_outside, pass_handle, plt, threshold

READING_LABELS = {"strict": "pre-registered test", "ww_band": "weaker reading (reliable fit, α ≤ 6)",
                  "shuffled": "entry-shuffled control"}
TYPE_ORDER = [t.replace("_proj", "") for t in TARGET_SUFFIXES]  # q k v o gate up down: the order in every α figure


def fraction_bars(summary: "pd.DataFrame", title: str = "", threshold: float | None = None,
                  caption: str = "") -> "plt.Figure":
    """Grouped bars: ``value`` per ``model`` (x) and ``reading`` (hue) with [ci_lo, ci_hi] error bars (95% CI over
    seeds), each bar's top marked (visible at 0); the claim's threshold with its passing side shaded."""
    line = threshold
    fig, ax = plt.subplots(figsize=(8.5, 3.9))
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
    ax.set_ylim(-0.03, 1.08)
    if line is not None:
        _draw_threshold(ax, line)
    ax.set_xticks(np.arange(len(models_)), [textwrap.fill(arm_label(m), 14) for m in models_])
    ax.set_ylabel("fraction of target matrices")
    handles, _ = ax.get_legend_handles_labels()
    legend_outside(ax, handles=handles + ([pass_handle("C3 holds (shaded), pre-registered test")] if line is not None
                                          else []), title="error bars: 95% CI over seeds", title_fontsize="x-small")
    return finish(fig, title, caption)


def _draw_threshold(ax, value):
    threshold(ax, value, "above", label=f"threshold ({value:g}): holds at or above")


def matrix_order(table: "pd.DataFrame") -> "pd.DataFrame":
    """The table with an ``index`` column in model order: layer, then q k v o gate up down (from ``layer`` and
    ``type`` columns; a table without them keeps its ``index``)."""
    if {"layer", "type"} <= set(table.columns):
        keys = table[["layer", "type"]].drop_duplicates()
        keys = keys.assign(_t=keys["type"].str.replace("_proj", "", regex=False).map(
            {t: i for i, t in enumerate(TYPE_ORDER)}).fillna(len(TYPE_ORDER)))
        keys = keys.sort_values(["layer", "_t"]).reset_index(drop=True)
        keys["index"] = range(len(keys))
        table = table.drop(columns=["index"], errors="ignore").merge(keys[["layer", "type", "index"]],
                                                                     on=["layer", "type"])
    return table


TYPE_LETTERS = {"q": "q", "k": "k", "v": "v", "o": "o", "gate": "g", "up": "u", "down": "d"}


def _layer_ticks(axes, table: "pd.DataFrame"):
    """Layer starts as labelled ticks (and faint lines on every panel); with few matrices also each matrix's type
    letter (q k v o g u d) as a minor tick."""
    ax = axes[-1]
    if "layer" not in table:
        ax.set_xlabel("target matrix (index)")
        return
    starts = table.groupby("layer")["index"].min().sort_index()
    step = max(1, int(np.ceil(len(starts) / 16)))
    for a in axes:
        for x in starts.to_numpy()[1:]:
            a.axvline(x - 0.5, color="0.6", lw=0.7, zorder=0)
    keys = table.drop_duplicates("index").sort_values("index")
    letter = dict(zip(keys["index"], [TYPE_LETTERS.get(t.replace("_proj", ""), "?") for t in keys["type"]]))
    few = len(keys) <= 64
    ax.set_xticks(starts.to_numpy()[::step], [f"{letter[i] if few else ''}\nL{int(la)}"
                                              for i, la in zip(starts.to_numpy()[::step], starts.index[::step])])
    if few:
        ax.set_xticks(keys["index"].to_numpy(), [TYPE_LETTERS.get(t.replace("_proj", ""), "?") for t in keys["type"]],
                      minor=True, fontsize="xx-small")
        ax.tick_params(axis="x", which="minor", length=2, pad=1)
    ax.set_xlabel("target matrix, in model order: layer (L0 …), then q k v o g(ate) u(p) d(own) within each layer")


def alpha_by_matrix(table: "pd.DataFrame", title: str = "", caption: str = "") -> "plt.Figure":
    """Fitted α per target matrix in model order (:func:`matrix_order`). Top: α of each model (``model`` column;
    line: mean over seeds, band: min–max over seeds), the base model drawn last (black, on top of the RL lines), a
    filled marker where the matrix passes the pre-registered heavy-tail test (``heavy_tailed``, in at least half
    the seeds) and a hollow one where it fails; the test's α band (power_law.ALPHA_HT_LO ≤ α ≤ ALPHA_HT_HI) shaded.
    Bottom (with a "base" model and another): α(model) − α(base) per matrix, which the top panel hides."""
    table = matrix_order(table).assign(label=lambda d: d["model"].map(arm_label))
    base_label = arm_label("base")
    models = list(dict.fromkeys(table["label"]))
    rl = [m for m in models if m != base_label]
    has_base = base_label in models
    colours = dict(zip(rl, sns.color_palette(n_colors=len(rl) + 1)[1:] if has_base else sns.color_palette(
        n_colors=len(rl))))
    colours[base_label] = "black"
    if has_base and rl:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, height_ratios=(3, 2))
    else:
        fig, top = plt.subplots(figsize=(11, 3.9))
        bottom = None
    top.axhspan(power_law.ALPHA_HT_LO, power_law.ALPHA_HT_HI, color="tab:green", alpha=0.08, lw=0)
    for y in (power_law.ALPHA_HT_LO, power_law.ALPHA_HT_HI):
        top.axhline(y, color="crimson", lw=1.0, ls="--")
    for m in rl + ([base_label] if has_base else []):
        part = table[table["label"] == m]
        agg = part.groupby("index")["alpha"].agg(["mean", "min", "max"])
        is_base = m == base_label
        top.plot(agg.index, agg["mean"], color=colours[m], lw=2.2 if is_base else 1.2, ls="--" if is_base else "-",
                 zorder=6 if is_base else 3, label=m)
        if part["seed"].nunique() > 1:
            top.fill_between(agg.index, agg["min"], agg["max"], color=colours[m], alpha=0.2, lw=0)
        if "heavy_tailed" in part:
            passes = part.groupby("index")["heavy_tailed"].mean().reindex(agg.index) >= 0.5
            top.scatter(agg.index[passes], agg["mean"][passes], s=22, color=colours[m], zorder=7 if is_base else 4)
            top.scatter(agg.index[~passes], agg["mean"][~passes], s=22, facecolor="white", edgecolor=colours[m],
                        zorder=7 if is_base else 4)
    handles, _ = top.get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="crimson", lw=1, ls="--", label=f"test's α band {power_law.ALPHA_HT_LO:g} "
                                                                         f"≤ α ≤ {power_law.ALPHA_HT_HI:g}")]
    if "heavy_tailed" in table:
        handles += [plt.Line2D([], [], color="0.3", marker="o", ls="none", label="passes the pre-registered test"),
                    plt.Line2D([], [], color="0.3", marker="o", mfc="white", ls="none", label="fails it")]
    if table.groupby("label")["seed"].nunique().max() > 1:
        handles.append(plt.Rectangle((0, 0), 1, 1, color="0.5", alpha=0.3, label="band: min–max over seeds"))
    top.set_ylabel("fitted α (ESD tail)")
    legend_outside(top, handles=handles, fontsize="x-small")
    _layer_ticks([top] if bottom is None else [top, bottom], table)
    if bottom is not None:
        base = table[table["label"] == base_label].groupby("index")["alpha"].mean()
        diff = table[table["label"] != base_label].assign(d=lambda d: d["alpha"] - d["index"].map(base))
        for m in rl:
            agg = diff[diff["label"] == m].groupby("index")["d"].agg(["mean", "min", "max"])
            bottom.plot(agg.index, agg["mean"], color=colours[m], marker="o", ms=3, lw=1, label=m)
            bottom.fill_between(agg.index, agg["min"], agg["max"], color=colours[m], alpha=0.2, lw=0)
        bottom.axhline(0, color="black", lw=1, ls="--", label=f"{base_label} (0)")
        bottom.set_ylabel("α(RL model) − α(base)")
        legend_outside(bottom, fontsize="x-small")
    return finish(fig, title, caption)


def _fit_value(fit, key):
    return fit.get(key, np.nan) if isinstance(fit, Mapping) else getattr(fit, key, np.nan)


def esd_tails(panels: Sequence[tuple], ncols: int = 4, title: str = "", caption: str = "") -> "plt.Figure":
    """Empirical CCDF P(λ ≥ x) of each ESD on log-log axes with its fitted power-law tail, and in each panel
    whether the pre-registered test judged the matrix heavy-tailed.

    ``panels``: (title, eigenvalues, fit[, heavy_tailed]) where ``fit`` has ``alpha`` and ``xmin`` (a
    power_law.PowerLawFit or a dict); ``heavy_tailed``: the strict test's result (None: not judged). The tail is
    drawn as (n_tail / n) · (x / x_min)^(1 − α) from x_min to λ_max, the CCDF of the fitted Pareto tail."""
    n = len(panels)
    ncols = min(ncols, n) or 1
    rows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(rows, ncols, figsize=(3.3 * ncols, 3.0 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        name, lam, fit = panel[:3]
        heavy = panel[3] if len(panel) > 3 else None
        lam = np.sort(np.asarray(lam, dtype=float))
        lam = lam[lam > 0]
        ccdf = 1.0 - np.arange(len(lam)) / len(lam)
        ax.loglog(lam, ccdf, ".", ms=3, label="ESD")
        alpha, xmin = float(_fit_value(fit, "alpha")), float(_fit_value(fit, "xmin"))
        if np.isfinite(alpha) and np.isfinite(xmin):
            x = lam[lam >= xmin]
            ax.loglog(x, (len(x) / len(lam)) * (x / xmin) ** (1 - alpha), "-", lw=2, label=f"fit α = {alpha:.2f}")
            ax.axvline(xmin, color="grey", lw=0.8, ls=":")
        ax.set_title(name, fontsize="small")
        if heavy is not None:
            verdict_text = "pre-registered test: " + ("heavy-tailed" if heavy else "not heavy-tailed")
            ax.text(0.03, 0.04, verdict_text, transform=ax.transAxes, fontsize="x-small", color="white",
                    fontweight="bold",
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": "tab:green" if heavy else "tab:red", "lw": 0})
        ax.set_xlabel("λ = σ²")
        ax.set_ylabel("P(Λ ≥ λ)")
        ax.legend(frameon=False, fontsize="x-small", loc="upper right")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return finish(fig, title, caption)
