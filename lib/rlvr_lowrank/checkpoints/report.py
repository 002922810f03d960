"""The report of ``pair_analysis.analyze``: DIR/analysis.md and its figures (DIR/figures/*.png).

Figures: e1 heatmap (layer x type, last checkpoint), α of W_base vs W_RL per matrix, the ΔW spectrum σ_i/σ1 of
the N_SPECTRUM matrices with the largest ‖ΔW‖_F, and (series only) the alignment of v1 with the last
checkpoint over the series, averaged per matrix type.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..analysis.targets import TARGET_SUFFIXES
from .rounding import NOISE_RATIO

N_SPECTRUM = 4         # matrices shown in the ΔW spectrum figure


def report_markdown(result: dict, figure_files: list[str]) -> str:
    s = result["summary"][-1]
    lines = [f"# Rank-1 diagnostics: {result['rl'][-1]} vs {result['base']}", "",
             f"{result['n_matrices']} target matrices (--targets {result['targets']}), k = {result['k']}, "
             f"SVD solver {result['svd']}, ESD precision {result['esd']}; {result['seconds']['total']:.1f} s.", "",
             "| quantity | value |", "|---|---|",
             f"| AlphaRL ratio Σσ1/Σ‖ΔW‖_F | {s['alpharl_ratio']:.4f} |",
             f"| rank-1 energy share, pooled Σσ1²/Σ‖ΔW‖² | {s['e1_pooled']:.4f} |",
             f"| rank-1 energy share, mean / min over matrices | {s['e1_mean']:.4f} / {s['e1_min']:.4f} |",
             f"| unchanged matrices (ΔW = 0) | {s['n_unchanged']} |",
             f"| matrices at storage noise (‖ΔW‖_F < {NOISE_RATIO:g}× rounding floor) | {s['n_at_noise']} |", "",
             "| type | n | mean e1 | mean ‖ΔW‖_F | median ‖ΔW‖_F / floor |", "|---|---|---|---|---|"]
    for ty, d in s["by_type"].items():
        lines.append(f"| {ty} | {d['n']} | {d['e1_mean']:.4f} | {d['fro_mean']:.4g} | {d['noise_ratio_median']:.3g} |")
    fits = [m["spectra"] for m in result["matrices"] if m.get("spectra")]
    if fits:
        def frac(key):
            v = [f[key]["heavy_tailed"] for f in fits if f.get(key)]
            return f"{np.mean(v):.2f}" if v else "n/a"

        def med(key):
            v = [f[key]["alpha"] for f in fits if f.get(key) and math.isfinite(f[key]["alpha"])]
            return f"{np.median(v):.2f}" if v else "n/a"

        lines += ["", "Heavy tails (claim C3, last checkpoint): heavy-tailed fraction and median α", "",
                  "| matrix | heavy-tailed | median α |", "|---|---|---|"]
        for key, label in (("base", "W_base"), ("rl", "W_RL"), ("rl_shuffled", "W_RL shuffled"),
                           ("delta", "ΔW"), ("delta_shuffled", "ΔW shuffled")):
            lines.append(f"| {label} | {frac(key)} | {med(key)} |")
    al = [m["alignment"] for m in result["matrices"] if m.get("alignment")]
    if al:
        cf = np.mean([a["v_cos_final"][0] for a in al])
        cp = np.nanmean([x for a in al for x in a["v_cos_prev"] if x is not None])
        lines += ["", f"Alignment over the series (claim C4, {len(result['rl'])} checkpoints): mean |cos(v1(first), "
                      f"v1(last))| = {cf:.3f}, mean |cos(v1(t), v1(t-1))| = {cp:.3f} (random unit vectors: "
                      f"{np.mean([a['random_baseline_v'] for a in al]):.3f})."]
    if figure_files:
        lines += [""] + [f"![{f}](figures/{f})" for f in figure_files]
    return "\n".join(lines) + "\n"


def make_figures(result: dict, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    rows, files = result["matrices"], []

    def save(fig, name):
        p = directory / f"{name}.png"
        fig.savefig(p, dpi=100, metadata={"Software": None}, bbox_inches="tight")
        plt.close(fig)
        files.append(p)

    layers = sorted({r["layer"] for r in rows})
    order = {t: i for i, t in enumerate(TARGET_SUFFIXES)}  # q k v o gate up down first, then any other type
    types = sorted(dict.fromkeys(r["type"] for r in rows), key=lambda t: (order.get(t, len(order)), t))
    H = np.full((len(types), len(layers)), np.nan)
    for r in rows:
        c = r["checkpoints"][-1]
        if not c["unchanged"]:
            H[types.index(r["type"]), layers.index(r["layer"])] = c["e1"]
    fig, ax = plt.subplots(figsize=(max(4, 0.25 * len(layers) + 2), 0.4 * len(types) + 1.5))
    im = ax.imshow(H, aspect="auto", vmin=0, vmax=1, cmap="viridis")
    ax.set_yticks(range(len(types)), types)
    ax.set_xticks(range(len(layers)), layers, fontsize=7)
    ax.set_xlabel("layer")
    ax.set_title("rank-1 energy share σ1²/‖ΔW‖²")
    fig.colorbar(im, ax=ax)
    save(fig, "e1_heatmap")

    fits = [(r, r["spectra"]) for r in rows if r.get("spectra")]
    if fits:
        fig, ax = plt.subplots(figsize=(4.5, 4))
        for ty in types:
            pts = [(f["base"]["alpha"], f["rl"]["alpha"]) for r, f in fits if r["type"] == ty]
            if pts:
                ax.scatter(*zip(*pts), s=12, label=ty)
        lim = [min(ax.get_xlim()[0], ax.get_ylim()[0]), max(ax.get_xlim()[1], ax.get_ylim()[1])]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel("α of W_base")
        ax.set_ylabel("α of W_RL")
        ax.set_title("power-law α per matrix")
        ax.legend(fontsize=7)
        save(fig, "alpha_base_vs_rl")

    top = sorted((r for r in rows if not r["checkpoints"][-1]["unchanged"]),
                 key=lambda r: -r["checkpoints"][-1]["fro"])[:N_SPECTRUM]
    if top:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        for r in top:
            s = np.array(r["checkpoints"][-1]["sigma"])
            ax.semilogy(range(1, len(s) + 1), s / s[0], "o-", ms=3, label=r["name"].replace("model.", ""))
        ax.set_xlabel("i")
        ax.set_ylabel("σ_i / σ_1 of ΔW")
        ax.set_title("ΔW spectrum (largest ‖ΔW‖_F)")
        ax.legend(fontsize=6)
        save(fig, "delta_spectrum")

    al = [(r, r["alignment"]) for r in rows if r.get("alignment")]
    if al:
        fig, ax = plt.subplots(figsize=(4.5, 3.5))
        T = len(al[0][1]["v_cos_final"])
        for ty in types:
            cs = [a["v_cos_final"] for r, a in al if r["type"] == ty]
            if cs:
                ax.plot(range(1, T + 1), np.mean(cs, axis=0), "o-", ms=3, label=ty)
        ax.axhline(np.mean([a["random_baseline_v"] for _, a in al]), color="k", ls=":", lw=0.8, label="random")
        ax.set_xlabel("checkpoint")
        ax.set_ylabel("|cos(v1(t), v1(last))|")
        ax.set_ylim(0, 1.05)
        ax.set_title("alignment over the series")
        ax.legend(fontsize=7)
        save(fig, "alignment")
    return files
