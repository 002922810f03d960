"""Data and drawing kept apart: the notebooks write what each figure plots to
``reports/<profile>/figure_data/<figure>.json`` (:func:`publish`), and :func:`redraw` (``python -m rlvr_lowrank
figures --profile P``, ``make figures PROFILE=P``) draws every figure of a profile again from those files, without
runs. Where a figure's data file is missing, the figures that the claims' results already determine are drawn from
``reports/<profile>/cN.json``, ``dynamics.json`` or ``claims.json`` instead; the others are named as missing.

A data file is JSON: ``figure`` and ``profile``, ``caption`` (profile, model, steps, seeds: style.caption) and
the figure's own keys (DRAW below reads them).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from .. import fileio, paths
from . import dynamics, overview, reward, spectra, substitution
from .style import caption as make_caption
from .style import plt, save_figure

DATA_DIR = "figure_data"


def data_path(report_dir: str | Path, name: str) -> Path:
    return Path(report_dir) / DATA_DIR / f"{name}.json"


def _df(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)


# figure -> drawing from its data (the JSON payload); titles live here, the caption comes with the data
DRAW: dict[str, Callable[[dict], "plt.Figure"]] = {
    "fig00_pass_at_k": lambda d: reward.pass_at_k_curve(
        d["curves"], title=f"pass@k of the base model, math test (n = {d.get('n', '?')} problems)",
        caption=d.get("caption", "")),
    "fig01_rank1_dominance": lambda d: substitution.recovery_bars(
        d["recovery"], d.get("thresholds"), title="C0: recovery of the full-RL gain by base + part of ΔW",
        caption=d.get("caption", "")),
    "fig02_reward_overfitting": lambda d: reward.reward_and_test_curves(
        _df(d["rewards"]), _df(d["evals"]), ema_span=d["ema_span"], window_start=d.get("window_start"),
        substitution_every=d.get("substitution_every"), pr1s_arm=d.get("pr1s_arm"), n_steps=d.get("n_steps"),
        title="C1: Full RL vs PR1S, training reward and greedy accuracy", caption=d.get("caption", "")),
    "fig02_sweep": lambda d: reward.sweep_gaps(
        _df(d["sweep"]), thresholds=d.get("thresholds"), deciding_arm=d.get("deciding_arm"),
        title="C1: Full − PR1S per PR1S arm (95% intervals over each arm's seeds)", caption=d.get("caption", "")),
    "fig03_knowledge_loss": lambda d: substitution.knowledge_panels(
        _df(d["scores"]), d["thresholds"], ceiling=d.get("ceiling"), math_recovery=d.get("math_recovery"),
        title="C2 reading 1: what the rank-1 model keeps besides math", caption=d.get("caption", "")),
    "fig03_multitask_rank_k": lambda d: substitution.recovery_vs_rank(
        substitution.rank_table(_df(d["multitask"])), thresholds=d.get("thresholds"),
        title="C2 reading 2: multi-task RL, recovery of each task's gain vs rank", caption=d.get("caption", "")),
    "fig04_heavy_tailed_fraction": lambda d: spectra.fraction_bars(
        _df(d["summary"]), threshold=d.get("threshold"), title="C3: heavy-tailed fraction of the target matrices",
        caption=d.get("caption", "")),
    "fig04_alpha_per_matrix": lambda d: spectra.alpha_by_matrix(
        _df(d["table"]), title="C3: power-law α of each target matrix, base vs RL", caption=d.get("caption", "")),
    "fig04_esd_tails": lambda d: spectra.esd_tails(
        [(p["title"], p["eigenvalues"], p, p.get("heavy_tailed")) for p in d["panels"]],
        title="C3: ESDs with their fitted power-law tails (verdict of the pre-registered test per matrix)",
        caption=d.get("caption", "")),
    "fig05_alignment": lambda d: dynamics.alignment_curves(
        _df(d["curves"]), title="C4: rank-1 singular vectors of ΔW_t vs the final ones", caption=d.get("caption", "")),
    "fig06_pls_r2": lambda d: dynamics.pls_r2_boxes(
        _df(d["pls"]), title="AlphaRL's linear dynamics: PLS R² of the sign-aligned u1(t) per matrix",
        caption=d.get("caption", "")),
    "fig06_extrapolation": lambda d: dynamics.extrapolation_curves(
        _df(d["rows"]), retention=d.get("retention"),
        title=f"Rank-1 extrapolation to the final step ({int(_df(d['rows'])['final_step'].max())})"
        if "final_step" in _df(d["rows"]) else "Rank-1 extrapolation to the final step", caption=d.get("caption", "")),
    "fig07_claims_overview": lambda d: overview.claims_overview(
        {"rows": d["rows"]}, title="Every measured quantity per claim", caption=d.get("caption", "")),
    "fig08_smollm2_alpha": lambda d: spectra.alpha_by_matrix(
        _df(d["table"]), title="Power-law α of each target matrix (pretrained weights, no RL)",
        caption=d.get("caption", "")),
}


def draw(name: str, payload: dict) -> "plt.Figure":
    if name not in DRAW:
        raise KeyError(f"no drawing for figure {name!r}; known: {', '.join(DRAW)}")
    return DRAW[name](payload)


def write(profile: str, name: str, payload: dict, report_dir: str | Path | None = None) -> Path:
    """Write ``payload`` as the data of figure ``name`` (atomically) under ``reports/<profile>/figure_data/`` (or
    ``report_dir``; paths.report_dir decides, as for every report: scratch outside the pipeline)."""
    path = data_path(report_dir if report_dir is not None else paths.report_dir(profile), name)
    fileio.write_json(path, {"figure": name, "profile": profile, **payload})
    return path


def publish(profile: str, name: str, payload: dict) -> "plt.Figure":
    """A notebook's last step for a figure: write its data, draw it from that data, save PNG and PDF."""
    write(profile, name, payload)
    stored = fileio.read_json(data_path(paths.report_dir(profile), name))  # drawn from what was written
    fig = draw(name, stored)
    save_figure(fig, paths.figure_dir(profile), name)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Drawing without figure data: what the claims' results already hold
# ---------------------------------------------------------------------------------------------------------------

def _read(report_dir: Path, name: str) -> dict | None:
    p = report_dir / name
    return fileio.read_json(p) if p.exists() else None


def _caption(report_dir: Path, profile: str, seeds=None) -> str:
    design = (_read(report_dir, "claims.json") or {}).get("design")
    return make_caption(profile, seeds=seeds, design=design) if design else make_caption(profile, seeds=seeds)


def _from_c0(report_dir, profile):
    from ..claims import c0
    d = _read(report_dir, "c0.json")
    return d and {"recovery": d["recovery"], "thresholds": c0.THRESHOLDS,
                  "caption": _caption(report_dir, profile, d.get("seeds"))}


def _from_c1(report_dir, profile):
    from ..claims import c1
    d = _read(report_dir, "c1.json")
    t = c1.THRESHOLDS
    return d and d.get("sweep") and {
        "sweep": d["sweep"], "deciding_arm": d.get("pr1s"), "caption": _caption(report_dir, profile, d.get("seeds")),
        "thresholds": {"reward_gap": [t["min_reward_gap"]], "test_gap": [-t["max_test_gap"], t["max_test_gap"]]}}


def _from_c2(report_dir, profile):
    from ..claims import c2
    d = _read(report_dir, "c2.json")
    return d and d.get("scores") and {"scores": d["scores"], "thresholds": c2.THRESHOLDS, "ceiling": c2.CEILING,
                                      "math_recovery": d.get("math_recovery"),
                                      "caption": _caption(report_dir, profile, d.get("seeds"))}


def multitask_lines(t: dict) -> dict:
    """fig03_multitask_rank_k's threshold lines from C2's thresholds."""
    return {f"math recovery ≥ {t['min_math_recovery']:g}": t["min_math_recovery"],
            f"skill recovery ≤ {t['max_other_recovery']:g}": t["max_other_recovery"]}


def _from_c2_mix(report_dir, profile):
    from ..claims import c2
    d = _read(report_dir, "c2.json")
    if not d or not d.get("multitask"):
        return None
    seeds = list(dict.fromkeys(r["seed"] for r in d["multitask"]))
    return {"multitask": d["multitask"], "thresholds": multitask_lines(c2.THRESHOLDS),
            "caption": _caption(report_dir, profile, seeds)}


def fraction_rows(models: dict) -> list[dict]:
    """fig04_heavy_tailed_fraction's rows from c3.json's ``models`` (summaries, or plain numbers for SmolLM2)."""
    rows = []
    for model, readings in models.items():
        for reading in ("strict", "ww_band", "shuffled"):
            s = readings.get(reading)
            if s is None:
                continue
            s = s if isinstance(s, dict) else {"mean": s, "ci": [s, s]}
            rows.append({"model": model, "reading": reading, "value": s["mean"], "ci_lo": s["ci"][0],
                         "ci_hi": s["ci"][1]})
    return rows


def _from_c3(report_dir, profile):
    from ..claims import c3
    d = _read(report_dir, "c3.json")
    return d and d.get("models") and {"summary": fraction_rows(d["models"]), "threshold": c3.THRESHOLDS["min_fraction"],
                                      "caption": _caption(report_dir, profile, d.get("seeds"))}


def _from_dynamics(report_dir, profile):
    d = _read(report_dir, "dynamics.json")
    return d and d.get("per_run") and {"rows": d["per_run"], "caption": _caption(report_dir, profile, d.get("seeds"))}


def _from_claims(report_dir, profile):
    d = _read(report_dir, "claims.json")
    return d and d.get("claims") and {"rows": overview.overview_rows(d),
                                      "caption": make_caption(profile, design=d.get("design") or {})}


FALLBACK: dict[str, tuple[str, Callable]] = {
    "fig01_rank1_dominance": ("c0.json", _from_c0),
    "fig02_sweep": ("c1.json", _from_c1),
    "fig03_knowledge_loss": ("c2.json", _from_c2),
    "fig03_multitask_rank_k": ("c2.json", _from_c2_mix),
    "fig04_heavy_tailed_fraction": ("c3.json", _from_c3),
    "fig06_extrapolation": ("dynamics.json", _from_dynamics),
    "fig07_claims_overview": ("claims.json", _from_claims),
}


def _rel(p: Path) -> str:
    try:
        return str(Path(p).resolve().relative_to(paths.ROOT))
    except ValueError:
        return str(p)


def writer_of(name: str) -> str:
    from ..claims import notebooks
    for nb in notebooks.NOTEBOOKS:
        if name in nb.figures:
            return f"notebooks/{nb.stem}.ipynb"
    return "no notebook"


def redraw(profile: str, report_dir: str | Path | None = None, figure_dir: str | Path | None = None,
           names: list[str] | None = None) -> dict:
    """Draw every figure of ``profile`` again from ``<report_dir>/figure_data/`` (default reports/<profile>/), or
    from its claim's result where FALLBACK allows, into ``figure_dir`` (default figures/<profile>/). The figures
    are ``names``, else those already in ``figure_dir`` or with data. Returns {"drawn": [(name, source)],
    "missing": [(name, why)]}."""
    report_dir = Path(report_dir) if report_dir is not None else paths.REPORTS / profile
    figure_dir = Path(figure_dir) if figure_dir is not None else paths.FIGURES / profile
    if names is None:
        have = {p.stem for d in (figure_dir, paths.FIGURES / profile) for p in d.glob("*.png")}
        have |= {p.stem for p in (report_dir / DATA_DIR).glob("*.json")}
        names = [n for n in DRAW if n in have] or list(DRAW)
    out = {"drawn": [], "missing": []}
    for name in names:
        path = data_path(report_dir, name)
        if path.exists():
            payload, source = fileio.read_json(path), path
        elif name in FALLBACK and (payload := FALLBACK[name][1](report_dir, profile)):
            source = report_dir / FALLBACK[name][0]
        else:
            out["missing"].append((name, f"no {_rel(path)} (written by {writer_of(name)}: make reproduce "
                                         f"PROFILE={profile})"))
            continue
        fig = draw(name, payload)
        save_figure(fig, figure_dir, name)
        plt.close(fig)
        out["drawn"].append((name, _rel(source)))
    return out
