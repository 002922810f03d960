"""fig07: every measured quantity of the claims report, one small panel each on its own scale, with its threshold
and the side on which its condition holds."""
from __future__ import annotations

import numpy as np
import seaborn as sns

from ..claims import verdict
from .style import PASS_SHADE, THRESHOLD_STYLE, finish, plt

# one colour per verdict class of claims.verdict, in its order (colour-blind-safe palette)
VERDICT_COLOURS = dict(zip(verdict.CLASSES, sns.color_palette("colorblind", n_colors=len(verdict.CLASSES))))
DIRECTION_WORDS = {"at least": "holds at ≥ θ", "at most": "holds at ≤ θ", "within": "holds within ±θ"}


def condition(claim: dict, quantity: str) -> dict | None:
    """The leaf condition of ``claim`` (a claims.json entry) that reads ``quantity`` (its ``decided_by`` tree),
    or None."""
    stack = list((claim.get("decided_by") or {}).get("conditions") or [])
    if not stack and (claim.get("decided_by") or {}).get("quantity") == quantity:
        return claim["decided_by"]
    while stack:
        c = stack.pop(0)
        if c.get("quantity") == quantity and not c.get("conditions"):
            return c
        stack += c.get("conditions") or []
    return None


def condition_class(claim: dict, quantity: str) -> str:
    """The verdict class of the condition of ``claim`` that reads ``quantity``; the claim's own class where no
    condition names that quantity."""
    c = condition(claim, quantity)
    return c["class"] if c and c.get("class") else claim["verdict"]


def overview_rows(report: dict) -> list[dict]:
    """fig07's data from a claims report: one row per measured quantity (claim id, quantity, mean, ci, t_ci, the
    class of its condition, thresholds, and the condition's direction and θ where the report has them)."""
    rows = []
    for c in report["claims"]:
        for m in c.get("measured") or []:
            cond = condition(c, m["quantity"]) or {}
            rows.append({"claim": c["id"], "quantity": m["quantity"], "mean": m["mean"], "ci": m.get("ci"),
                         "t_ci": m.get("t_ci"), "class": condition_class(c, m["quantity"]),
                         "thresholds": m.get("thresholds") or [], "direction": cond.get("direction"),
                         "theta": cond.get("theta"), "bound": cond.get("bound")})
    return rows


def _finite(xs):
    return [float(x) for x in xs if x is not None and np.isfinite(x)]


def claims_overview(report: dict, title: str = "", caption: str = "") -> "plt.Figure":
    """Small multiples, one row per measured quantity (``overview_rows``; ``report`` is a claims report or
    {"rows": rows}): mean with its 95% bootstrap CI (thick) and t-interval (thin) on the quantity's own x scale,
    coloured by the verdict class of the condition that reads it (a quantity that meets its condition is not
    coloured by its claim's failing verdict); the threshold θ as a dashed line and the side on which the condition
    holds shaded (direction "at least", "at most", "within"); zero as a grey line."""
    rows = report["rows"] if "rows" in report else overview_rows(report)
    n = max(1, len(rows))
    fig, axes = plt.subplots(n, 1, figsize=(9, 0.62 * n + 1.6), squeeze=False)
    for ax, r in zip(axes.flat, rows):
        colour = VERDICT_COLOURS.get(r["class"], "grey")
        ci, t_ci = r.get("ci") or [r["mean"]] * 2, r.get("t_ci") or [np.nan, np.nan]
        lines = _finite(r.get("thresholds") or []) or _finite([r.get("theta")])
        span = _finite([r["mean"], *ci, *t_ci, *lines, 0.0])
        lo, hi = min(span), max(span)
        pad = 0.12 * (hi - lo or 1.0)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(-1, 1)
        direction, theta = r.get("direction"), r.get("theta")
        if theta is None and lines:
            theta = lines[0]
        if direction == "within" and theta is not None:
            ax.axvspan(-abs(theta), abs(theta), **PASS_SHADE)
            for x in (-abs(theta), abs(theta)):
                ax.axvline(x, **THRESHOLD_STYLE)
        elif direction in ("at least", "at most") and theta is not None:
            ax.axvspan(theta, hi + 10 * pad if direction == "at least" else lo - 10 * pad, **PASS_SHADE)
            ax.axvline(theta, **THRESHOLD_STYLE)
        else:
            for x in lines:
                ax.axvline(x, **THRESHOLD_STYLE)
        ax.set_xlim(lo - pad, hi + pad)
        ax.axvline(0, color="grey", lw=0.8)
        if all(np.isfinite(t_ci)):
            ax.errorbar(r["mean"], 0, xerr=[[max(0, r["mean"] - t_ci[0])], [max(0, t_ci[1] - r["mean"])]], fmt="none",
                        capsize=3, lw=0.9, color=colour)
        ax.errorbar(r["mean"], 0, xerr=[[max(0, r["mean"] - ci[0])], [max(0, ci[1] - r["mean"])]], fmt="o",
                    capsize=3, lw=2.6, color=colour)
        ax.set_yticks([])
        ax.set_ylabel(f"{r['claim']}: {r['quantity']}", rotation=0, ha="right", va="center", fontsize="x-small")
        rule = DIRECTION_WORDS.get(direction, "")
        if theta is not None:
            rule = (rule.replace("θ", f"{theta:g}") if rule else f"threshold {theta:g}")
        ax.text(1.01, 0.5, f"{rule}\n{r['class']}", transform=ax.transAxes, fontsize="xx-small", va="center",
                color=colour)
        ax.tick_params(axis="x", labelsize="x-small", pad=1)
        ax.grid(axis="y", visible=False)
    handles = [plt.Line2D([], [], color=c, marker="o", lw=2, label=v) for v, c in VERDICT_COLOURS.items()]
    handles += [plt.Line2D([], [], **THRESHOLD_STYLE, label="threshold"),
                plt.Rectangle((0, 0), 1, 1, color=PASS_SHADE["color"], alpha=0.25, label="condition holds (shaded)"),
                plt.Line2D([], [], color="grey", lw=0.8, label="thin: t-interval; thick: bootstrap CI (95%)")]
    fig.legend(handles=handles, frameon=False, fontsize="x-small", loc="upper center", ncol=3,
               bbox_to_anchor=(0.5, 0.0), title="colour: class of the quantity's condition", title_fontsize="x-small")
    axes.flat[-1].set_xlabel("measured value (mean over seeds; each row on its own scale)", fontsize="small")
    return finish(fig, title, caption)
