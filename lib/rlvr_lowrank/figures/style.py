"""The figures' shared look: theme, line styles, captions, legends outside the data, and saving.

Every figure names its profile, model, steps and seeds in a caption line under the title
(:func:`caption`); thresholds are drawn with the side on which their condition holds
(:func:`threshold`); saving writes PNG and PDF with deterministic metadata (:func:`save_figure`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np

if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "inline"):
    matplotlib.use("Agg")  # scripts and CI: no display; notebooks keep their inline backend
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .. import fileio  # noqa: E402

sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")
plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight",
                     "axes.titlesize": "medium", "pdf.fonttype": 42})
THRESHOLD_STYLE = {"color": "crimson", "lw": 1.2, "ls": "--"}  # every line a verdict is read against
PASS_SHADE = {"color": "tab:green", "alpha": 0.08, "lw": 0}  # the side of a threshold on which a condition holds
ZERO_MARK = {"marker": "_", "s": 260, "color": "black", "zorder": 4, "linewidths": 2}  # bar tops, visible at 0
MODEL_NAMES = {"smollm2-gguf": "SmolLM2-135M-Instruct"}  # config model ids -> readers' names


def model_name(model: str | None) -> str:
    """A reader's name for a profile's ``model`` entry ("data/models/tiny-base" -> "tiny-base")."""
    if not model:
        return "?"
    return MODEL_NAMES.get(model, str(model).rstrip("/").rsplit("/", 1)[-1])


def seeds_text(seeds: Sequence[int] | None) -> str:
    if seeds is None:
        return ""
    seeds = list(seeds)
    return f"{len(seeds)} seed{'s' if len(seeds) != 1 else ''} ({', '.join(map(str, seeds))})"


def caption(profile: str, model: str | None = None, steps: int | None = None, seeds: Sequence[int] | None = None,
            design: dict | None = None, extra: str = "") -> str:
    """One line naming what a figure was made from: profile, base model, GRPO steps and seeds.

    ``design`` is ``claims.report.design(profile)`` (also stored as ``design`` in claims.json); explicit
    ``model``/``steps``/``seeds`` override it (e.g. an arm trained on fewer seeds). Without either, the
    profile's design is read from its config (``configs/<profile>.yaml``) where there is one."""
    if design is None and (model is None or steps is None or seeds is None):
        try:
            from ..claims import report
            design = report.design(profile)
        except Exception:  # a profile without a config (a test's constructed data): say what is known
            design = {}
    design = design or {}
    model = model if model is not None else design.get("model")
    steps = steps if steps is not None else design.get("steps")
    seeds = seeds if seeds is not None else (design.get("full") or {}).get("seeds")
    parts = [f"profile {profile}", f"model {model_name(model)}"]
    if steps is not None:
        parts.append(f"{steps} GRPO steps")
    if seeds is not None:
        parts.append(seeds_text(seeds))
    return " · ".join(parts) + (f" · {extra}" if extra else "")


def error_bars(centre, low, high) -> list:
    """``yerr`` for errorbar/bar from a centre and its interval: [centre − low, high − centre], each clipped at 0.
    A mean of identical values can differ from their min or max in the last bit (a sum divided by n), and
    matplotlib refuses any negative length."""
    c, lo, hi = (np.asarray(v, dtype=float) for v in (centre, low, high))
    return [np.clip(c - lo, 0, None), np.clip(hi - c, 0, None)]


def finish(fig, title: str = "", caption_text: str = "", legend_axes=None) -> "plt.Figure":
    """Title (suptitle), the caption line under it, tight layout."""
    fig.tight_layout()
    if title or caption_text:
        fig.suptitle(title + (f"\n{caption_text}" if caption_text else ""), fontsize="medium")
        fig.tight_layout()
    return fig


def legend_outside(ax, **kwargs):
    """A legend to the right of the axes, off the data."""
    kwargs = {"frameon": False, "fontsize": "small", "loc": "upper left", "bbox_to_anchor": (1.01, 1), **kwargs}
    return ax.legend(**kwargs)


def threshold(ax, value: float, holds: str, label: str | None = None, vertical: bool = False, span=None):
    """Draw a threshold line and shade the side on which its condition holds.

    ``holds``: "above" (condition ≥ value), "below" (≤ value). ``vertical``: the quantity is on the x
    axis. ``span``: (lo, hi) in axes fraction along the line (a segment over one group of bars)."""
    lo, hi = span if span else (0, 1)
    line = (ax.axvline if vertical else ax.axhline)(value, lo, hi, **THRESHOLD_STYLE, label=label)
    lim = ax.get_xlim() if vertical else ax.get_ylim()
    far = lim[1] + (lim[1] - lim[0]) * 10 if holds == "above" else lim[0] - (lim[1] - lim[0]) * 10
    a, b = sorted((value, far))
    if vertical:
        ax.axvspan(a, b, lo, hi, **PASS_SHADE)
        ax.set_xlim(lim)
    else:
        ax.axhspan(a, b, lo, hi, **PASS_SHADE)
        ax.set_ylim(lim)
    return line


def pass_band(ax, lo: float, hi: float, label: str | None = None, vertical: bool = False):
    """Shade a band [lo, hi] in which a two-sided condition holds, with its two threshold lines."""
    for j, y in enumerate((lo, hi)):
        (ax.axvline if vertical else ax.axhline)(y, **THRESHOLD_STYLE, label=label if j == 0 else None)
    (ax.axvspan if vertical else ax.axhspan)(lo, hi, **PASS_SHADE)


def pass_handle(text: str = "condition holds in the shaded side"):
    return Patch(color=PASS_SHADE["color"], alpha=0.25, label=text)


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


def bottom_legend(fig, handles, ncol: int = 3, **kwargs):
    """One legend for the whole figure, under it (call after :func:`finish`; saving with bbox "tight" keeps it)."""
    seen, unique = set(), []
    for h in handles:
        if h.get_label() not in seen and not h.get_label().startswith("_"):
            seen.add(h.get_label())
            unique.append(h)
    return fig.legend(handles=unique, frameon=False, fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, 0.0),
                      ncol=ncol, **kwargs)
