"""The paper's claims made operational: metric, threshold, direction, CI rule, verdict.

The thresholds below were written before any training run of this project was looked at (git
history shows this file landing before the results); they are never moved to make a claim pass.
Each claim quotes the paper's wording (abstract of arXiv 2605.06523, or AlphaRL for C0).

Confidence intervals: percentile bootstrap of the mean over seeds (10,000 resamples, seeded), on
*paired* per-seed differences where two arms share a seed. With 3 seeds a bootstrap interval is
narrow-ish by construction (it spans roughly the observed range); the t-interval is reported next
to it, and a claim needs at least ``MIN_SEEDS`` seeds or it is "inconclusive".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MIN_SEEDS = 3
N_BOOTSTRAP = 10_000
CI_LEVEL = 0.95

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str  # the paper's statement (quoted or closely paraphrased, with its source)
    test: str  # our operational test
    thresholds: dict = field(default_factory=dict)


C0 = Claim(
    "C0",
    "AlphaRL (arXiv 2510.00553): the rank-1 subspace of the RL update recovers >99% of the reasoning gain; "
    "2605.06523 abstract: 'enhanced reasoning capabilities ... are primarily concentrated within the rank-1 components'.",
    "recovery = (acc(variant) - acc(base)) / (acc(full) - acc(base)) on the held-out math test, per seed; "
    "holds if the norm-matched rank-1 model's mean recovery >= min_recovery with CI lower bound >= min_recovery_ci_lo, "
    "and the random-direction control's CI upper bound < max_random_recovery. Inconclusive when the full-RL gain "
    "is below min_gain (nothing to recover).",
    {"min_recovery": 0.9, "min_recovery_ci_lo": 0.75, "max_random_recovery": 0.25, "min_gain": 0.1},
)

C1 = Claim(
    "C1",
    "2605.06523 abstract: with Periodic Rank-1 Substitution 'the model can achieve satisfactory performance on the "
    "test set even when its rewards remain relatively low during the training process' (implicit reward overfitting).",
    "paired per seed, PR1S (truncated, K=10) vs Full RL from the same base and seed: Δreward = mean training reward "
    "(Full - PR1S) over the last quarter of steps, CI lower bound > 0 and mean >= min_reward_gap; Δtest = final greedy "
    "test accuracy (Full - PR1S): |mean| <= max_test_gap and CI upper bound <= max_test_gap_ci_hi.",
    {"min_reward_gap": 0.02, "max_test_gap": 0.05, "max_test_gap_ci_hi": 0.10, "last_fraction": 0.25},
)

C2 = Claim(
    "C2",
    "2605.06523 abstract: 'The effective rank-1 component in RLVR don't maintain other model knowledge except "
    "mathematical reasoning capability.'",
    "reading 1 (knowledge the base had): the rank-1 (norm-matched) model keeps math (recovery >= min_math_recovery) "
    "while its knowledge-probe or second-skill accuracy falls below the full-RL model's by >= min_knowledge_drop with "
    "a CI excluding 0; reading 2 (multi-task RL): rank-1 recovery of the skill gain <= max_other_recovery while the "
    "math recovery >= min_math_recovery.",
    {"min_math_recovery": 0.8, "min_knowledge_drop": 0.05, "max_other_recovery": 0.5},
)

C3 = Claim(
    "C3",
    "2605.06523 abstract: 'The distribution of singular values of almost all linear layers in RLVR-trained model "
    "behaves like heavy-tailed distribution.'",
    "fraction of target matrices of the RL-trained model whose ESD is heavy-tailed (spectra.is_heavy_tailed: "
    "reliable power-law fit preferred over an exponential tail) >= min_fraction ('almost all'), CI over seeds; "
    "reported next to the base model and the entry-shuffled control.",
    {"min_fraction": 0.9},
)

C4 = Claim(
    "C4",
    "2605.06523 abstract: 'the left singular vectors associated with rank-1 components demonstrate a stronger "
    "alignment tendency during training'.",
    "per seed, mean over target matrices and recorded steps of |cos(u1(t), u1(T))| minus the same for v1, and minus "
    "the random-vector baseline: both CIs over seeds have lower bound > 0.",
    {"min_u_minus_v": 0.0, "min_u_minus_baseline": 0.0},
)

CLAIMS = {c.id: c for c in (C0, C1, C2, C3, C4)}


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------

def bootstrap_ci(values: Sequence[float], level: float = CI_LEVEL, n: int = N_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def t_interval(values: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float]:
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))


def summarize(values: Sequence[float]) -> dict:
    x = [float(v) for v in values]
    return {"mean": float(np.mean(x)) if x else float("nan"), "ci": bootstrap_ci(x), "t_ci": t_interval(x),
            "n": len(x), "values": x}


def recovery(acc_variant: float, acc_base: float, acc_full: float) -> float:
    """(acc(variant) - acc(base)) / (acc(full) - acc(base)); NaN when full RL gained nothing."""
    gain = acc_full - acc_base
    return float("nan") if abs(gain) < 1e-12 else (acc_variant - acc_base) / gain


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------

def verdict_c0(per_seed: dict[str, list[float]], gains: list[float]) -> dict:
    """``per_seed``: variant -> recovery per seed (must include 'normmatch' and 'random')."""
    t = C0.thresholds
    rm, rr = summarize(per_seed["normmatch"]), summarize(per_seed["random"])
    out = {"recovery_normmatch": rm, "recovery_random": rr, "gain": summarize(gains)}
    if len(gains) < MIN_SEEDS:
        return {**out, "verdict": INCONCLUSIVE, "why": f"{len(gains)} seed(s) < {MIN_SEEDS}"}
    if np.mean(gains) < t["min_gain"]:
        return {**out, "verdict": INCONCLUSIVE, "why": f"full-RL gain {np.mean(gains):.3f} < {t['min_gain']}"}
    ok = rm["mean"] >= t["min_recovery"] and rm["ci"][0] >= t["min_recovery_ci_lo"] and rr["ci"][1] < t["max_random_recovery"]
    return {**out, "verdict": HOLDS if ok else FAILS}


def verdict_c1(reward_gap: list[float], test_gap: list[float]) -> dict:
    """Paired per-seed gaps Full - PR1S: training reward (last quarter) and final greedy test accuracy."""
    t = C1.thresholds
    rg, tg = summarize(reward_gap), summarize(test_gap)
    out = {"reward_gap": rg, "test_gap": tg}
    if len(reward_gap) < MIN_SEEDS:
        return {**out, "verdict": INCONCLUSIVE, "why": f"{len(reward_gap)} seed(s) < {MIN_SEEDS}"}
    lower_reward = rg["ci"][0] > 0 and rg["mean"] >= t["min_reward_gap"]
    comparable_test = abs(tg["mean"]) <= t["max_test_gap"] and tg["ci"][1] <= t["max_test_gap_ci_hi"]
    out.update(lower_reward=bool(lower_reward), comparable_test=bool(comparable_test))
    return {**out, "verdict": HOLDS if (lower_reward and comparable_test) else FAILS}


# ----------------------------------------------------------------------------------------------
# C1 from run directories
# ----------------------------------------------------------------------------------------------

def run_curves(run) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(metrics, evals) of a finished run as DataFrames (refuses an unfinished run)."""
    import pandas as pd

    from . import io
    from .train import require_done

    run = require_done(run)
    return pd.DataFrame(io.read_jsonl(run / "metrics.jsonl")), pd.DataFrame(io.read_jsonl(run / "evals.jsonl"))


def c1_per_seed(full_run, pr1s_run, last_fraction: float = C1.thresholds["last_fraction"]) -> dict:
    """Paired numbers of one seed: training reward over the last part of training, final evals."""
    fm, fe = run_curves(full_run)
    pm, pe = run_curves(pr1s_run)
    n = int(min(fm["step"].max(), pm["step"].max()))
    start = n - max(1, int(round(last_fraction * n)))
    rf = float(fm.loc[fm["step"] > start, "reward"].mean())
    rp = float(pm.loc[pm["step"] > start, "reward"].mean())
    lf, lp = fe.iloc[-1], pe.iloc[-1]
    return {"reward_full": rf, "reward_pr1s": rp, "reward_gap": rf - rp,
            "test_full": float(lf["test_acc"]), "test_pr1s": float(lp["test_acc"]),
            "test_gap": float(lf["test_acc"] - lp["test_acc"]),
            "train_full": float(lf["train_acc"]), "train_pr1s": float(lp["train_acc"]),
            "gap_train_test_full": float(lf["train_acc"] - lf["test_acc"]),
            "gap_train_test_pr1s": float(lp["train_acc"] - lp["test_acc"])}


# ----------------------------------------------------------------------------------------------
# C0 from run directories
# ----------------------------------------------------------------------------------------------

C0_VARIANTS = [("base", 1), ("full", 1), ("normmatch", 1), ("trunc", 1), ("rankk", 2), ("rankk", 4), ("rankk", 8),
               ("residual", 1), ("random", 1)]


def c0_accuracies(run, items, variants=C0_VARIANTS, seed: int = 0) -> list[dict]:
    """Greedy test accuracy of each substituted model built from a finished run's final weights.

    Models follow AlphaRL's convention (rank1.build_substituted_model): non-target tensors (norms,
    embeddings) stay at base in every variant, including "full" = W0 + ΔW on the target matrices. So
    "full" can differ slightly from the trained model; it is the denominator of the recovery, which
    keeps every variant comparable (only the target-matrix update differs between them).
    """
    import copy

    from . import evaluate, io, models, paths, rank1
    from .train import model_dir, require_done

    run = require_done(run)
    base, tok = models.load_model(model_dir(io.read_yaml(run / "config.yaml")))
    trained = copy.deepcopy(base)
    missing, unexpected = trained.load_state_dict(io.load_tensors(run / "final" / "model.safetensors"), strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise ValueError(f"{run}/final/model.safetensors does not match the base architecture "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    rows = []
    for variant, k in variants:
        m = rank1.build_substituted_model(base, trained, variant, k=k, seed=seed)
        label = f"rank-{k}" if variant == "rankk" else variant
        rows.append({"variant": label, "k": k, "test_acc": evaluate.greedy_accuracy(m, tok, items).accuracy})
    return rows
