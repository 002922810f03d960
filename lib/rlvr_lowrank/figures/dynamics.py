"""Figures of training dynamics: alignment of the rank-1 singular vectors (fig05, C4), rank-1 extrapolation
(fig06_extrapolation) and AlphaRL's linear dynamics (fig06_pls_r2)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns

from ..claims.base import arm_label
from .style import error_bars, finish, legend_outside, plt

SIDE_LABELS = {"u": "u1 (output side)", "v": "v1 (input side)"}
PLS_FLOOR = -1.0  # fig06_pls_r2's y axis starts here; R² below it (a fit worse than the mean) is counted, not drawn
MIN_LOO_POINTS = 8  # leave-one-out R² is drawn only for signals with at least this many time points


def alignment_curves(table: "pd.DataFrame", title: str = "", caption: str = "") -> "plt.Figure":
    """|cos(x(t), x(T))| vs step for x = u1 and v1 (hue: side), one panel per arm (mean over seeds, band: min–max
    over seeds, points at the recorded steps); the random-vector baseline of each side dotted, with its legend
    entry. ``table``: arm, seed, step, side, cos_final, baseline (already averaged over matrices per seed)."""
    arms = list(dict.fromkeys(table["arm"]))
    fig, axes = plt.subplots(1, len(arms), figsize=(5 * len(arms) + 1.5, 3.6), squeeze=False, sharey=True)
    colours = dict(zip(SIDE_LABELS, sns.color_palette()))
    for ax, arm in zip(axes.flat, arms):
        part = table[table["arm"] == arm]
        for side, label in SIDE_LABELS.items():
            agg = part[part["side"] == side].groupby("step")["cos_final"].agg(["mean", "min", "max"])
            ax.plot(agg.index, agg["mean"], marker="o", ms=3, color=colours[side], label=label)
            ax.fill_between(agg.index, agg["min"], agg["max"], color=colours[side], alpha=0.2, lw=0)
            ax.axhline(part.loc[part["side"] == side, "baseline"].mean(), color=colours[side], lw=1, ls=":",
                       label=f"random baseline, {side}1")
        ax.set_title(arm_label(arm))
        ax.set_xlabel("optimizer step")
        ax.set_ylim(0, 1.02)
    # the panels share y: one label, on two lines (a one-line label on every panel ran into its neighbour)
    axes.flat[0].set_ylabel("|cos(x(t), x(T))|\nmean over matrices")
    legend_outside(axes.flat[-1], title="rank-1 vector (band: min–max over seeds)", title_fontsize="x-small",
                   fontsize="x-small")
    return finish(fig, title, caption)


def extrapolation_curves(extra: "pd.DataFrame", title: str = "", retention: float | None = None,
                         caption: str = "") -> "plt.Figure":
    """Test accuracy of the extrapolated (or window-end) model / the trained model's, at each early window's last
    step: one marker per method and window (mean over seeds, bars min–max), nothing drawn between windows (no
    model exists there). ``extra``: window, method, seed, ratio (or test_acc and trained_acc)."""
    if "ratio" not in extra:
        extra = extra.assign(ratio=extra["test_acc"] / extra["trained_acc"])
    fig, ax = plt.subplots(figsize=(7, 3.7))
    methods = list(dict.fromkeys(extra["method"]))
    windows = sorted(extra["window"].unique())
    dodge = (min(np.diff(windows)) if len(windows) > 1 else 1) * 0.12
    for i, (method, colour) in enumerate(zip(methods, sns.color_palette(n_colors=len(methods)))):
        agg = extra[extra["method"] == method].groupby("window")["ratio"].agg(["mean", "min", "max"]).dropna()
        x = agg.index + (i - (len(methods) - 1) / 2) * dodge
        ax.errorbar(x, agg["mean"], yerr=error_bars(agg["mean"], agg["min"], agg["max"]), fmt="o", ls="none",
                    color=colour, capsize=3, label=method)
    ax.axhline(1, color="grey", lw=0.8, ls=":", label="trained model")
    if retention is not None:
        ax.axhline(retention, color="crimson", lw=1.2, ls="--", label=f"retention {retention:g}: steps count as saved "
                                                                      "at or above")
    ax.set_xticks(windows)
    ax.set_xlabel("last step of the early window")
    ax.set_ylabel("test accuracy / trained model's")
    legend_outside(ax, title="bars: min–max over seeds", title_fontsize="x-small")
    return finish(fig, title, caption)


def pls_r2_boxes(pls: "pd.DataFrame", title: str = "", caption: str = "", floor: float = PLS_FLOOR,
                 min_loo_points: int = MIN_LOO_POINTS) -> "plt.Figure":
    """PLS R² per matrix type, in-sample and leave-one-out, one panel per signal. The y axis starts at ``floor``:
    values below it are counted in the panel (with their minimum) and drawn as triangles on the floor. The
    leave-one-out R² of a signal with fewer than ``min_loo_points`` time points (column ``T``) is not drawn,
    and a signal with no finite R² at all (too few time points to fit) draws none; the panel says so.
    ``pls``: signal, type, seed, r2, r2_loo[, T]."""
    long = pls.melt(id_vars=[c for c in ("signal", "type", "seed", "T") if c in pls], value_vars=["r2", "r2_loo"],
                    var_name="fit", value_name="R²")
    long["fit"] = long["fit"].map({"r2": "in-sample R²", "r2_loo": "leave-one-out R²"})
    long["type"] = long["type"].str.replace("_proj", "", regex=False)
    signals = list(dict.fromkeys(long["signal"]))
    fits = list(dict.fromkeys(long["fit"]))
    colours = dict(zip(fits, sns.color_palette(n_colors=len(fits))))
    fig, axes = plt.subplots(1, len(signals), figsize=(5.5 * len(signals) + 1.5, 3.9), squeeze=False, sharey=True)
    types = list(dict.fromkeys(long["type"]))
    for ax, signal in zip(axes.flat, signals):
        rows = long[long["signal"] == signal]
        part = rows[np.isfinite(rows["R²"])]
        n_points = int(rows["T"].median()) if "T" in rows and len(rows) else None
        notes = [] if len(part) else [
            "no R² to draw: " + (f"{n_points} time points are too few to fit" if n_points is not None
                                 else "no finite value")]
        for j, fit in enumerate(fits if len(part) else []):
            if fit == "leave-one-out R²" and n_points is not None and n_points < min_loo_points:
                notes.append(f"leave-one-out R² not drawn: {n_points} time points")
                continue
            for i, typ in enumerate(types):
                vals = part.loc[(part["type"] == typ) & (part["fit"] == fit), "R²"].to_numpy()
                if not len(vals):
                    continue
                pos = i + (j - (len(fits) - 1) / 2) * 0.38
                ax.boxplot(np.clip(vals, floor, None), positions=[pos], widths=0.34, patch_artist=True,
                           boxprops={"facecolor": colours[fit]}, medianprops={"color": "black"}, showfliers=True)
                low = vals[vals < floor]
                if len(low):
                    ax.scatter([pos], [floor], marker="v", color="black", zorder=5, s=25)
                    notes.append(f"{fit} {typ}: {len(low)} below {floor:g} (min {low.min():.1f})")
        for fit in fits:
            ax.plot([], [], "s", color=colours[fit], label=fit)
        ax.set_xticks(range(len(types)), types)
        ax.set_title(f"signal: {signal}" + (f" ({n_points} time points)" if n_points else ""), fontsize="small")
        ax.set_xlabel("matrix type")
        ax.axhline(0, color="grey", lw=0.8)
        if notes:
            ax.text(0.02, 0.03, "\n".join(notes[:6] + ([f"… {len(notes) - 6} more"] if len(notes) > 6 else [])),
                    transform=ax.transAxes, fontsize="xx-small", va="bottom", color="0.25")
    axes.flat[0].set_ylabel("R² (clipped at the bottom, see notes)")
    axes.flat[0].set_ylim(floor - 0.08, 1.05)
    legend_outside(axes.flat[-1], fontsize="x-small", title="▼: values below the axis", title_fontsize="x-small")
    return finish(fig, title, caption)
