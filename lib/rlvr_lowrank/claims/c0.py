"""C0, the premise from AlphaRL: the rank-1 part of the RL update carries the reasoning gain.

Measured in notebook 01: from each Full-RL run's final weights, substituted models base + update(ΔW)
on every target matrix (rank1.build_substituted_model), scored by greedy test accuracy; recovery of
the full-RL gain per seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import evaluate, rank1, runs, tasks
from .base import FAILS, HOLDS, INCONCLUSIVE, Claim, ClaimResult, too_few_seeds
from .stats import recovery, summarize

CLAIM = Claim(
    "C0",
    "AlphaRL (arXiv 2510.00553): the rank-1 subspace of the RL update recovers >99% of the reasoning gain; "
    "2605.06523 abstract: 'enhanced reasoning capabilities ... are primarily concentrated within the rank-1 components'.",
    "recovery = (acc(variant) - acc(base)) / (acc(full) - acc(base)) on the held-out math test, per seed; "
    "holds if the norm-matched rank-1 model's mean recovery >= min_recovery with CI lower bound >= min_recovery_ci_lo, "
    "and the random-direction control's CI upper bound < max_random_recovery. Inconclusive when the full-RL gain "
    "is below min_gain (nothing to recover).",
    {"min_recovery": 0.9, "min_recovery_ci_lo": 0.75, "max_random_recovery": 0.25, "min_gain": 0.1},
    (("rank-1 norm-matched recovery", ("recovery", "normmatch")), ("random-direction recovery", ("recovery", "random"))),
)
THRESHOLDS = CLAIM.thresholds

# (variant, k) of rank1.build_substituted_model; "rankk" is labelled "rank-<k>"
VARIANTS = [("base", 1), ("full", 1), ("normmatch", 1), ("trunc", 1), ("rankk", 2), ("rankk", 4), ("rankk", 8),
            ("residual", 1), ("random", 1)]
README_VARIANTS = ("normmatch", "trunc", "rank-2", "rank-4", "rank-8", "residual", "random")


def variant_label(variant: str, k: int) -> str:
    return f"rank-{k}" if variant == "rankk" else variant


def test_items(n_test: int):
    """The held-out math problems C0 is scored on: ``n_test`` spread evenly over difficulties."""
    return tasks.spread_subset(tasks.load_items("math", "test"), n_test)


def accuracies(run: Path, items, variants=VARIANTS, seed: int = 0) -> list[dict]:
    """Greedy test accuracy of each substituted model built from a finished run's final weights.

    Models follow AlphaRL's convention (rank1.build_substituted_model): non-target tensors (norms,
    embeddings) stay at base in every variant, including "full" = W0 + ΔW on the target matrices. So
    "full" can differ slightly from the trained model; it is the denominator of the recovery, which
    keeps every variant comparable (only the target-matrix update differs between them).
    """
    base, tok, trained = runs.load_run_pair(run)
    rows = []
    for variant, k in variants:
        m = rank1.build_substituted_model(base, trained, variant, k=k, seed=seed)
        rows.append({"variant": variant_label(variant, k), "k": k,
                     "test_acc": evaluate.greedy_accuracy(m, tok, items).accuracy})
    return rows


def measure(runs_by_seed: dict[int, Path], items) -> list[dict]:
    """One row per (seed, variant): {"seed", "variant", "k", "test_acc"} (the ``accuracy`` of c0.json)."""
    return [{"seed": s, **r} for s, run in runs_by_seed.items() for r in accuracies(run, items)]


def recoveries(rows: list[dict]) -> tuple[dict[str, list[float]], list[float]]:
    """(variant -> recovery per seed, full-RL gain per seed) from the accuracy rows."""
    wide = pd.DataFrame(rows).pivot(index="seed", columns="variant", values="test_acc")
    gains = (wide["full"] - wide["base"]).tolist()
    rec = {v: [recovery(wide.loc[s, v], wide.loc[s, "base"], wide.loc[s, "full"]) for s in wide.index]
           for v in wide.columns}
    return rec, gains


def verdict(per_seed: dict[str, list[float]], gains: list[float]) -> dict:
    """``per_seed``: variant -> recovery per seed (must include 'normmatch' and 'random')."""
    t = THRESHOLDS
    rm, rr = summarize(per_seed["normmatch"]), summarize(per_seed["random"])
    out = {"recovery_normmatch": rm, "recovery_random": rr, "gain": summarize(gains)}
    if too_few_seeds(len(gains)):
        return {**out, "verdict": INCONCLUSIVE, "why": too_few_seeds(len(gains))}
    if np.mean(gains) < t["min_gain"]:
        return {**out, "verdict": INCONCLUSIVE, "why": f"full-RL gain {np.mean(gains):.3f} < {t['min_gain']}"}
    ok = rm["mean"] >= t["min_recovery"] and rm["ci"][0] >= t["min_recovery_ci_lo"] and rr["ci"][1] < t["max_random_recovery"]
    return {**out, "verdict": HOLDS if ok else FAILS}


@dataclass
class C0Result(ClaimResult):
    """reports/<profile>/c0.json."""
    FILE = "c0.json"
    profile: str
    seeds: list
    accuracy: list  # measure() rows
    recovery: dict  # variant -> summarize(recovery per seed)
    recovery_normmatch: dict
    recovery_random: dict
    gain: dict  # summarize(full-RL gain per seed)
    verdict: str
    why: str | None = None


RESULT = C0Result  # the schema of this claim's cN.json


def decide(profile: str, seeds: list, rows: list[dict]) -> C0Result:
    """The C0 result of a profile from its accuracy rows."""
    rec, gains = recoveries(rows)
    v = verdict(rec, gains)
    return C0Result(profile=profile, seeds=list(seeds), accuracy=rows,
                    recovery={k: summarize(x) for k, x in rec.items()}, **v)


def readme_block(r: C0Result) -> str:
    t = THRESHOLDS
    lines = ["| substituted model (base + update of ΔW) | recovery of the full-RL gain | 95% bootstrap CI | seeds |",
             "|---|---|---|---|"]
    for name in README_VARIANTS:
        x = r.recovery.get(name)
        if x:
            lines.append(f"| {name} | {x['mean']:.3f} | [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}] | {x['n']} |")
    lines += ["", f"Full-RL gain in greedy test accuracy over the base: {r.gain['mean']:.3f} "
              f"[{r.gain['ci'][0]:.3f}, {r.gain['ci'][1]:.3f}].", "",
              f"**Verdict (profile {r.profile}): C0 {r.verdict}** (thresholds in `claims.c0`: norm-matched rank-1 "
              f"recovery ≥ {t['min_recovery']:g} with CI lower bound ≥ {t['min_recovery_ci_lo']:g}; random-direction "
              f"control CI upper bound < {t['max_random_recovery']:g}; inconclusive below a full-RL gain of "
              f"{t['min_gain']:g})." + (f" {r.why}." if r.why else "")]
    return "\n".join(lines)
