"""Figures: one function per figure, each returns a matplotlib Figure; the theme is set once here.

Saving goes through :func:`save_figure`, which writes PNG and PDF with deterministic metadata
(no timestamps, no software version) so that re-running the pipeline does not churn files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

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
        yerr = [[ys[i] - errors[k][0] for i, k in enumerate(labels)], [errors[k][1] - ys[i] for i, k in enumerate(labels)]]
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
