"""C0, the premise from AlphaRL: the rank-1 part of the RL update carries the reasoning gain.

Measured in notebook 01: from each Full-RL run's final weights, substituted models base + update(ΔW)
on every target matrix (rank1.build_substituted_model), scored by greedy test accuracy; recovery of
the full-RL gain per seed.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..analysis import rank1
from . import fast_eval, parallel, suites
from .base import (
    Claim,
    ClaimResult,
    arm_label,
    base_reused,
    both_intervals,
    classified,
    inconclusive,
    interval,
    score_models,
    too_few_seeds,
    verdict_sentence,
)
from .stats import fmt_interval, recovery, summarize
from .verdict import AT_LEAST, AT_MOST, Verdict, all_of, judge_summary

CLAIM = Claim(
    "C0",
    "AlphaRL (arXiv 2510.00553): the rank-1 subspace of the RL update recovers >99% of the reasoning gain; "
    "2605.06523 abstract: 'enhanced reasoning capabilities ... are primarily concentrated within the rank-1 "
    "components'.",
    "recovery = (acc(variant) - acc(base)) / (acc(full) - acc(base)) on the held-out math test, per seed; "
    "holds if the norm-matched rank-1 model's mean recovery >= min_recovery with CI lower bound >= min_recovery_ci_lo, "
    "and the random-direction control's CI upper bound < max_random_recovery. Inconclusive when the full-RL gain "
    "is below min_gain (nothing to recover).",
    {"min_recovery": 0.9, "min_recovery_ci_lo": 0.75, "max_random_recovery": 0.25, "min_gain": 0.1},
    (("rank-1 norm-matched recovery", ("recovery", "normmatch")),
     ("random-direction recovery", ("recovery", "random"))),
    "whether the rank-1 part of the full-RL update alone recovers the math gain of full RL (premise from AlphaRL)",
    {"rank-1 norm-matched recovery": ("min_recovery", "min_recovery_ci_lo"),
     "random-direction recovery": ("max_random_recovery",)},
)
THRESHOLDS = CLAIM.thresholds

# (variant, k) of rank1.build_substituted_model; "rankk" is labelled "rank-<k>"
VARIANTS = [("base", 1), ("full", 1), ("normmatch", 1), ("trunc", 1), ("rankk", 2), ("rankk", 4), ("rankk", 8),
            ("residual", 1), ("random", 1)]
README_VARIANTS = ("normmatch", "trunc", "rank-2", "rank-4", "rank-8", "residual", "random")


def variant_label(variant: str, k: int) -> str:
    return f"rank-{k}" if variant == "rankk" else variant


def test_items(n_test: int, profile: str = "tiny"):
    """The held-out math problems C0 is scored on: ``n_test`` spread evenly over the profile's test split."""
    return suites.math_test(profile, n_test)


def variant_accuracy(run: Path, items, variant: str, k: int, seed: int = 0) -> dict:
    """Greedy test accuracy of one substituted model built from a finished run's final weights.

    Models follow AlphaRL's convention (rank1.build_substituted_model): non-target tensors (norms,
    embeddings) stay at base in every variant, including "full" = W0 + ΔW on the target matrices. So
    "full" can differ slightly from the trained model; it is the denominator of the recovery, which
    keeps every variant comparable (only the target-matrix update differs between them).
    """
    base, tok, trained = parallel.run_pair(run)
    m = rank1.build_substituted_model(base, trained, variant, k=k, seed=seed)
    return {"variant": variant_label(variant, k), "k": k, "test_acc": fast_eval.greedy_accuracy(m, tok, items).accuracy}


def measure(runs_by_seed: dict[int, Path], items, processes: int = 1) -> list[dict]:
    """One row per (seed, variant): {"seed", "variant", "k", "test_acc"} (the ``accuracy`` of c0.json).
    When every run has the same base model (runs.same_base) the base is scored once and its row repeated.
    ``processes``: how many processes score the models (parallel.map_tasks); the rows do not depend on it."""
    specs = [(s, {}, (run, items, v, k), v, base_reused(runs_by_seed, i, v))
             for i, (s, run) in enumerate(runs_by_seed.items()) for v, k in VARIANTS]
    return score_models(variant_accuracy, specs, processes)


def recoveries(rows: list[dict]) -> tuple[dict[str, list[float]], list[float]]:
    """(variant -> recovery per seed, full-RL gain per seed) from the accuracy rows."""
    wide = pd.DataFrame(rows).pivot(index="seed", columns="variant", values="test_acc")
    gains = (wide["full"] - wide["base"]).tolist()
    rec = {v: [recovery(wide.loc[s, v], wide.loc[s, "base"], wide.loc[s, "full"]) for s in wide.index]
           for v in wide.columns}
    return rec, gains


def judge(s: dict) -> dict:
    """The verdict from the summaries ``recovery_normmatch``, ``recovery_random`` and ``gain`` (a
    c0.json), read with both intervals (base.both_intervals)."""
    t = THRESHOLDS
    rm, rr, gain = s["recovery_normmatch"], s["recovery_random"], s["gain"]
    if too_few_seeds(gain["n"]):
        return inconclusive(too_few_seeds(gain["n"]))
    if gain["mean"] < t["min_gain"]:
        return inconclusive(f"full-RL gain {gain['mean']:.3f} < {t['min_gain']}")
    return both_intervals(lambda k: rm["mean"] >= t["min_recovery"] and interval(rm, k)[0] >= t["min_recovery_ci_lo"]
                          and interval(rr, k)[1] < t["max_random_recovery"])


def verdict(per_seed: dict[str, list[float]], gains: list[float]) -> dict:
    """``per_seed``: variant -> recovery per seed (must include 'normmatch' and 'random')."""
    out = {"recovery_normmatch": summarize(per_seed["normmatch"]), "recovery_random": summarize(per_seed["random"]),
           "gain": summarize(gains)}
    return {**out, **judge(out)}


def notes(res: dict) -> list[str]:
    """Sentences the claims table needs to be read right (recoveries above 1)."""
    above = [arm_label(v) for v, x in res.get("recovery", {}).items() if v not in ("base", "full") and x["mean"] > 1]
    return [RECOVERY_ABOVE_ONE.format(models="; ".join(above))] if above else []


RECOVERY_ABOVE_ONE = ("Recovery above 1 ({models}): that model scored above the full model, so recovery exceeds 1; "
                      "it is a ratio of gains, not capped.")


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
    verdict_bootstrap_only: str | None = None
    verdict_two_valued: str | None = None  # the two-valued rule's verdict; ``verdict`` is the class


RESULT = C0Result  # the schema of this claim's cN.json


def decide(profile: str, seeds: list, rows: list[dict]) -> C0Result:
    """The C0 result of a profile from its accuracy rows."""
    rec, gains = recoveries(rows)
    v = verdict(rec, gains)
    result = C0Result(profile=profile, seeds=list(seeds), accuracy=rows,
                      recovery={k: summarize(x) for k, x in rec.items()}, **v)
    return classified(sys.modules[__name__], result)


def readme_block(r: C0Result) -> str:
    t = THRESHOLDS
    lines = ["| substituted model (base + update of ΔW) | recovery of the full-RL gain | 95% bootstrap CI | "
             "95% t-interval | seeds |", "|---|---|---|---|---|"]
    for name in README_VARIANTS:
        x = r.recovery.get(name)
        if x:
            lines.append(f"| {arm_label(name)} | {x['mean']:.3f} | {fmt_interval(x)} | {fmt_interval(x, 't_ci')} | "
                         f"{x['n']} |")
    lines += ["", f"Full-RL gain in greedy test accuracy over the base: {r.gain['mean']:.3f}, bootstrap "
              f"{fmt_interval(r.gain)}, t {fmt_interval(r.gain, 't_ci')}.", ""]
    lines += [" ".join(notes(r.to_json()))] + [""] if notes(r.to_json()) else []
    lines += [verdict_sentence(sys.modules[__name__], r.to_json())
              + f" Thresholds in `claims.c0`: norm-matched rank-1 recovery ≥ {t['min_recovery']:g} with lower bound "
              f"≥ {t['min_recovery_ci_lo']:g}; random-direction control upper bound < {t['max_random_recovery']:g}, "
              f"bounds of both the bootstrap CI and the t-interval; untestable below a full-RL gain of "
              f"{t['min_gain']:g}."]
    return "\n".join(lines)


def classify(stored: dict) -> Verdict:
    """The verdict in the vocabulary of claims.verdict (docs/claims.md, C0's table): precondition a full-RL
    gain ≥ min_gain; all of (norm-matched recovery: mean ≥ min_recovery and lower bounds ≥ min_recovery_ci_lo;
    random-direction recovery: upper bounds < max_random_recovery)."""
    t, gain = THRESHOLDS, stored["gain"]
    recovery = judge_summary(stored["recovery_normmatch"], t["min_recovery"], AT_LEAST, bound=t["min_recovery_ci_lo"],
                             require_mean=True, quantity="rank-1 norm-matched recovery")
    control = judge_summary(stored["recovery_random"], t["max_random_recovery"], AT_MOST, strict=True,
                            quantity="random-direction recovery")
    gained = ("a full-RL gain to recover", gain["mean"] >= t["min_gain"],
              f"gain {gain['mean']:.3f} < {t['min_gain']}")
    return all_of([recovery, control], [gained], quantity="C0")
