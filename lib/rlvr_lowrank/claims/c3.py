"""C3: the singular-value distributions of almost all linear layers of the RL-trained model are heavy-tailed.

Measured in notebook 04: spectra.analyze_model of each run's final weights (with the entry-shuffled
control and the fit of ΔW), next to the base model; a matrix counts as heavy-tailed by
power_law.is_heavy_tailed.
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import gguf
import pandas as pd

from .. import models
from ..analysis import spectra
from ..analysis.targets import TARGET_SUFFIXES
from ..training import config, runs
from . import power
from .base import (
    Claim,
    ClaimResult,
    arm_label,
    both_intervals,
    classified,
    inconclusive,
    too_few_seeds,
    verdict_sentence,
)
from .stats import fmt_both, summarize
from .verdict import AT_LEAST, Verdict, judge_threshold

CLAIM = Claim(
    "C3",
    "2605.06523 abstract: 'The distribution of singular values of almost all linear layers in RLVR-trained model "
    "behaves like heavy-tailed distribution.'",
    "fraction of target matrices of the RL-trained model whose ESD is heavy-tailed (power_law.is_heavy_tailed: "
    "reliable power-law fit preferred over an exponential tail) >= min_fraction ('almost all'), CI over seeds; "
    "reported next to the base model and the entry-shuffled control.",
    {"min_fraction": 0.9},
    (("heavy-tailed fraction, Full-RL model", ("fraction_rl",)),),
    "whether almost all weight matrices of the RL-trained model have heavy-tailed singular-value spectra",
    {"heavy-tailed fraction, Full-RL model": ("min_fraction",)},
)
THRESHOLDS = CLAIM.thresholds
READINGS = ("strict", "ww_band", "shuffled", "median_alpha")  # summarized per model in c3.json
# the update's own spectrum and size (delta_readings), summarized under "delta" of each trained model in c3.json
DELTA_READINGS = ("ΔW", "delta_ww_band", "delta_median_alpha", "rel_update_median")


def run_spectra(run: Path, base_state: dict) -> pd.DataFrame:
    """``spectra.analyze_model`` of a finished run's final weights with the entry-shuffled control and
    the fit of ΔW = W − W_base (``*_shuffled`` and ``*_delta`` columns)."""
    trained = runs.final_weights(run)
    unknown = sorted(set(trained) - set(base_state))
    if unknown:
        raise ValueError(f"{run}/final/model.safetensors has tensors the base model lacks: {unknown[:3]}; "
                         "was it trained from another base?")
    state = {**base_state, **trained}
    return spectra.analyze_model(state, shuffled_control=True, include_delta_from=base_state)


def heavy_tail_fractions(table: pd.DataFrame, suffix: str = "") -> dict:
    """Fractions of matrices called heavy-tailed in an ``spectra.analyze_model`` table.

    ``strict`` is the pre-registered C3 test (power_law.is_heavy_tailed: reliable fit, power law beats an
    exponential tail with p < 0.05, 1.5 <= alpha <= 6). ``ww_band`` is the weaker reading common in
    the WeightWatcher literature (a reliable fit with alpha <= 6, no likelihood-ratio test); it is
    reported for information and never decides the verdict. ``suffix`` selects e.g. "_shuffled" or
    "_delta" columns.
    """
    ht, rel, alpha = table[f"heavy_tailed{suffix}"], table[f"reliable{suffix}"], table[f"alpha{suffix}"]
    return {"strict": float(ht.mean()), "ww_band": float((rel & (alpha <= 6.0)).mean()),
            "reliable": float(rel.mean()), "median_alpha": float(alpha.median()), "n": int(len(table))}


def delta_readings(table: pd.DataFrame) -> dict:
    """The spectrum of the update itself, ΔW = W − W_base, per model: the strict and WeightWatcher-band
    heavy-tailed fractions and the median α of ΔW's fits, and the median ‖ΔW‖_F / ‖W_base‖_F over matrices.

    Why: when ‖ΔW‖ is small, W_RL's spectrum is the base's (Weyl: |σᵢ(W + ΔW) − σᵢ(W)| ≤ ‖ΔW‖₂), so C3 on W_RL
    cannot see what RL did; these say what the update's own spectrum looks like and how large it is."""
    d = heavy_tail_fractions(table, "_delta")
    return {"ΔW": d["strict"], "delta_ww_band": d["ww_band"], "delta_median_alpha": d["median_alpha"],
            "rel_update_median": float(table["rel_update"].median())}


def measure(base_table: pd.DataFrame, tables: dict[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """One row per model: the base (seed None), then each (arm, seed) run; heavy_tail_fractions plus
    the strict fraction of the shuffled control and :func:`delta_readings` (NaN for the base, which has no
    update)."""
    none = {k: float("nan") for k in DELTA_READINGS}
    rows = [{"model": "base", "seed": None, **heavy_tail_fractions(base_table),
             "shuffled": heavy_tail_fractions(base_table, "_shuffled")["strict"], **none}]
    for (arm, s), t in tables.items():
        rows.append({"model": arm, "seed": s, **heavy_tail_fractions(t),
                     "shuffled": heavy_tail_fractions(t, "_shuffled")["strict"], **delta_readings(t)})
    return pd.DataFrame(rows)


def judge(s: dict) -> dict:
    """The verdict from the summary ``fraction_rl`` (a c3.json): a threshold on the mean alone, so the
    bootstrap and t readings agree (base.both_intervals reads no bound here)."""
    f = s["fraction_rl"]
    if too_few_seeds(f["n"]):
        return inconclusive(too_few_seeds(f["n"]))
    return both_intervals(lambda k: f["mean"] >= THRESHOLDS["min_fraction"])


def verdict(fraction_rl: list[float]) -> dict:
    """Per-seed strict heavy-tailed fraction of the RL-trained model's target matrices.

    Holds when the mean over seeds is >= min_fraction ("almost all"); both intervals are reported.
    """
    out = {"fraction_rl": summarize(fraction_rl)}
    return {**out, **judge(out)}


def sensitivity(res: dict) -> list[str]:
    """The weaker WeightWatcher reading (``ww_band``) of the deciding arm, where it flips the verdict."""
    arm = (res.get("arms") or [None])[0]
    ww = (res.get("models", {}).get(arm) or {}).get("ww_band")
    if not ww:
        return []
    klass = classify({**res, "fraction_rl": ww}).klass
    return [f"the weaker reading (reliable fit, α ≤ 6, fraction {ww['mean']:.3f}) gives '{klass}'"] \
        if klass != classify(res).klass else []


def notes(res: dict) -> list[str]:
    """Where every seed of the deciding arm gives the base model's fraction exactly: the RL update changed no
    matrix's reading, so the quantity measures the pretrained weights (by Weyl's inequality a singular value
    moves by at most ‖ΔW‖₂), and its spread over seeds is nil; its uncertainty is over matrices."""
    arm, models = (res.get("arms") or [None])[0], res.get("models") or {}
    base, rl = (models.get("base") or {}).get("strict"), (models.get(arm) or {}).get("strict")
    if not base or not rl or not rl.get("values"):
        return []
    if all(v == base["mean"] for v in rl["values"]):
        return [f"The heavy-tailed fraction of {arm_label(arm)} equals the base model's ({base['mean']:.4f}) on every "
                "seed: the update changed no matrix's reading, so this measures the pretrained weights."]
    return []


def smollm2_summary(table: pd.DataFrame) -> dict:
    """The ``models.smollm2`` entry of c3.json: one model, no seeds, so fractions rather than summaries."""
    return {**heavy_tail_fractions(table), "shuffled": heavy_tail_fractions(table, "_shuffled")["strict"]}


@dataclass
class C3Result(ClaimResult):
    """reports/<profile>/c3.json."""
    FILE = "c3.json"
    profile: str
    arms: list  # the first decides C3
    seeds: list
    fraction_rl: dict
    verdict: str
    models: dict  # model -> reading -> summarize over seeds ("delta": ΔW's own spectrum; "smollm2" -> smollm2_summary)
    why: str | None = None
    verdict_bootstrap_only: str | None = None
    verdict_two_valued: str | None = None  # the two-valued rule's verdict; ``verdict`` is the class
    n_matrices: int | None = None  # target matrices per model (the deciding arm's table); older files lack it


RESULT = C3Result  # the schema of this claim's cN.json


def decide(profile: str, arms: list, seeds: list, fractions: pd.DataFrame,
           smollm2: pd.DataFrame | None = None) -> C3Result:
    """``fractions``: the measure() table; the verdict is taken on ``arms[0]``."""
    v = verdict(fractions.loc[fractions["model"] == arms[0], "strict"].tolist())
    summary = {}
    for model, part in fractions.groupby("model", sort=False):
        summary[model] = {k: summarize(part[k]) for k in READINGS}
        if model != "base":  # the base has no update
            summary[model]["delta"] = {k: summarize(part[k]) for k in DELTA_READINGS}
    if smollm2 is not None:
        summary["smollm2"] = smollm2_summary(smollm2)
    n_matrices = int(fractions.loc[fractions["model"] == arms[0], "n"].iloc[0])
    result = C3Result(profile=profile, arms=list(arms), seeds=list(seeds), models=summary, n_matrices=n_matrices, **v)
    return classified(sys.modules[__name__], result)


def _ci(x: dict) -> str:
    return fmt_both(x)


def readme_block(r: C3Result) -> str:
    lines = ["| model | heavy-tailed fraction (pre-registered test) | weaker WW reading (reliable, α ≤ 6) | "
             "entry-shuffled control | median α |", "|---|---|---|---|---|"]
    for model, s in r.models.items():
        if model == "smollm2":
            lines.append(f"| SmolLM2-135M-Instruct (Q4_1, dequantized) | {s['strict']:.3f} | {s['ww_band']:.3f} | "
                         f"{s['shuffled']:.3f} | {s['median_alpha']:.2f} |")
        else:
            lines.append(f"| {arm_label(model)} ({s['strict']['n']} seed(s)) | {_ci(s['strict'])} | "
                         f"{_ci(s['ww_band'])} | {_ci(s['shuffled'])} | {s['median_alpha']['mean']:.2f} |")
    f = r.fraction_rl
    fl = sensitivity(r.to_json())
    lines += ["", f"Heavy-tailed fraction of the Full-RL model {_ci(f)} over {f['n']} seeds. "
              + verdict_sentence(sys.modules[__name__], r.to_json())
              + f" Threshold in `claims.c3`: mean ≥ {THRESHOLDS['min_fraction']:g}."
              + (f" Fragile: {'; '.join(fl)}." if fl else "")]
    return "\n".join(lines)


@functools.lru_cache(maxsize=None)  # classify and the sensitivity hook ask again for the same stored file
def n_target_matrices(profile: str, arm: str) -> int:
    """How many target matrices the fractions of ``profile`` are over: decoder layers × the target matrix
    types (analysis.targets.TARGET_SUFFIXES), read from the base model's config (SmolLM2: the GGUF header),
    without loading weights."""
    cfg = config.resolve(profile, arm, config.seeds_of(profile, arm)[0])
    if cfg.model == config.SMOLLM2_MODEL:
        field = gguf.GGUFReader(str(models.smollm2_gguf_path())).fields["llama.block_count"]
        layers = int(field.parts[field.data[0]][0])
    else:
        layers = json.loads((runs.model_dir(cfg) / "config.json").read_text())["num_hidden_layers"]
    return layers * len(TARGET_SUFFIXES)


def classify(stored: dict) -> Verdict:
    """The verdict in the vocabulary of claims.verdict (C3's table): the heavy-tailed fraction of the
    deciding arm's matrices, mean ≥ min_fraction; the fraction is decided over matrices, so its interval is
    the Wilson interval over the M target matrices (descriptive: matrices are not independent), and "an
    effect is detected" means above the entry-shuffled control's fraction. Its spread over seeds is
    reported (power.NO_VARIATION where every seed gives the same fraction)."""
    arm, f = stored["arms"][0], stored["fraction_rl"]
    m = stored.get("n_matrices") or n_target_matrices(stored["profile"], arm)
    shuffled = ((stored.get("models") or {}).get(arm) or {}).get("shuffled") or {}
    return judge_threshold({"wilson": power.fraction_interval(f["mean"], m)}, THRESHOLDS["min_fraction"], AT_LEAST,
                           bound=None, require_mean=True, mean=f["mean"], reference=shuffled.get("mean", 0.0),
                           values=f["values"], quantity=f"heavy-tailed fraction ({arm_label(arm)}, {m} matrices)")
