"""C1, implicit reward overfitting: under PR1S the training reward stays lower, the test accuracy does not.

Measured in notebook 02: Full RL and PR1S runs from the same base and seed, paired per seed, from
the runs' own logs (metrics.jsonl: training reward per step; evals.jsonl: greedy accuracies).

Precondition: Full RL overfit. The claim is about reward *overfitting*, so it can be tested only where
Full RL opened a gap between its training and held-out accuracy. Measured under the training's own
decoding (evals.jsonl ``sampled_train_acc`` − ``sampled_test_acc`` at Full's last evaluation, per seed);
it holds when the mean is >= ``max_test_gap`` (a gap as large as the test difference C1 calls
negligible: derived from that threshold, not a new one) and the lower ends of both intervals are > 0.
Otherwise C1 is "untestable here: Full RL did not overfit", with the numbers. Runs without sampled
accuracies (recorded only since the sampled evaluation existed) fail it as "not recorded".
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..training import config, runs
from .base import (
    Claim,
    ClaimResult,
    arm_label,
    both_intervals,
    classified,
    inconclusive,
    interval,
    too_few_seeds,
    verdict_sentence,
)
from .stats import LAST_FRACTION, fmt_interval, last_fraction_mean, summarize
from .verdict import AT_LEAST, WITHIN, Precondition, Verdict, all_of, judge_summary

CLAIM = Claim(
    "C1",
    "2605.06523 abstract: with Periodic Rank-1 Substitution 'the model can achieve satisfactory performance on the "
    "test set even when its rewards remain relatively low during the training process' (implicit reward overfitting).",
    "paired per seed, PR1S (the profile's `arms: pr1s` experiment: its K and variant are in the report's design "
    "line) vs Full RL from the same base and seed: Δreward = mean training reward "
    "(Full - PR1S) over the last quarter of steps, CI lower bound > 0 and mean >= min_reward_gap; Δtest = final greedy "
    "test accuracy (Full - PR1S): |mean| <= max_test_gap and CI upper bound <= max_test_gap_ci_hi.",
    {"min_reward_gap": 0.02, "max_test_gap": 0.05, "max_test_gap_ci_hi": 0.10, "last_fraction": LAST_FRACTION},
    (("Δ training reward (Full − PR1S)", ("reward_gap",)), ("Δ test accuracy (Full − PR1S)", ("test_gap",))),
    "whether training with Periodic Rank-1 Substitution ends with a lower training reward than full RL but the "
    "same test accuracy",
    {"Δ training reward (Full − PR1S)": ("min_reward_gap",), "Δ test accuracy (Full − PR1S)": ("max_test_gap",)},
)
THRESHOLDS = CLAIM.thresholds


def per_seed(full_run: Path, pr1s_run: Path, last_fraction: float = THRESHOLDS["last_fraction"]) -> dict:
    """Paired numbers of one seed: training reward over the last part of training, final evals.

    Both reward windows start at the same step, the last ``last_fraction`` of the shorter run.
    """
    fm, fe = runs.run_curves(full_run)
    pm, pe = runs.run_curves(pr1s_run)
    n = int(min(fm["step"].max(), pm["step"].max()))
    rf = last_fraction_mean(fm, "reward", n, last_fraction)
    rp = last_fraction_mean(pm, "reward", n, last_fraction)
    lf, lp = fe.iloc[-1], pe.iloc[-1]
    return {"reward_full": rf, "reward_pr1s": rp, "reward_gap": rf - rp,
            "test_full": float(lf["test_acc"]), "test_pr1s": float(lp["test_acc"]),
            "test_gap": float(lf["test_acc"] - lp["test_acc"]),
            "train_full": float(lf["train_acc"]), "train_pr1s": float(lp["train_acc"]),
            "gap_train_test_full": float(lf["train_acc"] - lf["test_acc"]),
            "gap_train_test_pr1s": float(lp["train_acc"] - lp["test_acc"]),
            **({"overfit_gap_full": float(lf["sampled_train_acc"] - lf["sampled_test_acc"])}
               if {"sampled_train_acc", "sampled_test_acc"} <= set(lf.dropna().index) else {})}


def measure(full_runs: dict[int, Path], pr1s_runs: dict[int, Path]) -> list[dict]:
    """One row per seed: {"seed", **per_seed(...)} (the ``per_seed`` of c1.json)."""
    return [{"seed": s, **per_seed(full_runs[s], pr1s_runs[s])} for s in full_runs]


def curve_rows(arm_runs: dict[str, dict[int, Path]], arms: list[str],
               seeds: list[int]) -> tuple[list[dict], list[dict]]:
    """What fig02 plots, per arm and seed: the raw sampled reward of every step (metrics.jsonl) and the greedy
    evaluations (evals.jsonl: test and training-set accuracy), as records with ``arm``, ``seed``, ``step``."""
    rewards, evals = [], []
    for s in seeds:
        for arm in arms:
            m, e = runs.run_curves(arm_runs[arm][s])
            rewards += [{"arm": arm, "seed": s, "step": int(r.step), "reward": float(r.reward)} for r in m.itertuples()]
            evals += [{"arm": arm, "seed": s, "step": int(r.step), "test_acc": float(r.test_acc),
                       "train_acc": float(r.train_acc)} for r in e.itertuples()]
    return rewards, evals


def judge(s: dict) -> dict:
    """The verdict from the summaries ``reward_gap`` and ``test_gap`` (a c1.json or a sweep arm's):
    the rule is read with both intervals (base.both_intervals)."""
    t = THRESHOLDS
    rg, tg = s["reward_gap"], s["test_gap"]
    if too_few_seeds(rg["n"]):
        return inconclusive(too_few_seeds(rg["n"]))
    lower = lambda k: interval(rg, k)[0] > 0 and rg["mean"] >= t["min_reward_gap"]  # noqa: E731
    comparable = lambda k: abs(tg["mean"]) <= t["max_test_gap"] and interval(tg, k)[1] <= t["max_test_gap_ci_hi"]  # noqa: E731
    return {**both_intervals(lambda k: lower(k) and comparable(k)),
            "lower_reward": bool(lower("ci") and lower("t_ci")),
            "comparable_test": bool(comparable("ci") and comparable("t_ci"))}


def verdict(reward_gap: list[float], test_gap: list[float], overfit_gap: list[float] | None = None) -> dict:
    """Paired per-seed gaps Full - PR1S: training reward (last quarter) and final greedy test accuracy; and
    Full's own sampled train - test gap (the precondition), when every seed recorded it."""
    out = {"reward_gap": summarize(reward_gap), "test_gap": summarize(test_gap)}
    if overfit_gap is not None:
        out["overfit_gap"] = summarize(overfit_gap)
    return {**out, **judge(out)}


def verdict_of_rows(rows: list[dict]) -> dict:
    overfit = [r["overfit_gap_full"] for r in rows] if all("overfit_gap_full" in r for r in rows) else None
    return verdict([r["reward_gap"] for r in rows], [r["test_gap"] for r in rows], overfit)


def overfit_precondition(stored: dict) -> Precondition:
    """Full RL overfit (the module docstring): its sampled train - test gap has mean >= max_test_gap and both
    intervals' lower ends > 0."""
    name = "Full RL overfit (sampled train − test accuracy)"
    g = stored.get("overfit_gap")
    if not g:
        return Precondition(name, False, "not recorded: the runs have no sampled train/test accuracy")
    t = THRESHOLDS["max_test_gap"]
    ok = bool(g["mean"] >= t and all(interval(g, k)[0] > 0 for k in ("ci", "t_ci")))
    return Precondition(name, ok, f"mean {g['mean']:.3f} {'≥' if g['mean'] >= t else '<'} {t:g}, bootstrap "
                                  f"{fmt_interval(g)}, t {fmt_interval(g, 't_ci')}, n = {g['n']}")


def sweep_rows(arm: str, pr1s: "config.Pr1s", rows: list[dict]) -> list[dict]:
    """The sweep table of one PR1S arm (its run config's typed ``pr1s`` section, claims.run_config, and its
    measure() rows): one row per gap, with the arm's own verdict (only the main arm decides C1)."""
    v = verdict_of_rows(rows)
    return [{"arm": arm, "K": pr1s.every, "variant": pr1s.variant, "metric": metric,
             "mean": v[metric]["mean"], "ci_lo": v[metric]["ci"][0], "ci_hi": v[metric]["ci"][1],
             "t_lo": v[metric]["t_ci"][0], "t_hi": v[metric]["t_ci"][1], "n": v[metric]["n"],
             "verdict": v["verdict"], "verdict_bootstrap_only": v["verdict_bootstrap_only"]}
            for metric in ("reward_gap", "test_gap")]


def sweep_verdicts(sweep: list[dict], overfit_gap: dict | None = None) -> dict[str, str]:
    """arm -> its verdict class (``classify``) from stored sweep rows, recomputed from the rows' intervals (the
    rows store no per-seed values, so no MDE). Rows written before the t-interval was stored are read with the
    bootstrap CI alone, and their class is marked "(bootstrap only)"."""
    out = {}
    for arm in dict.fromkeys(r["arm"] for r in sweep):
        rows = {r["metric"]: r for r in sweep if r["arm"] == arm}
        has_t = all("t_lo" in r for r in rows.values())
        s = {m: {"mean": r["mean"], "ci": (r["ci_lo"], r["ci_hi"]), "n": r.get("n"),
                 "t_ci": (r["t_lo"], r["t_hi"]) if has_t else (r["ci_lo"], r["ci_hi"])} for m, r in rows.items()}
        s["overfit_gap"] = overfit_gap  # the precondition is Full RL's, shared by every PR1S arm
        out[arm] = classify(s).klass + ("" if has_t else " (bootstrap only)")
    return out


def sensitivity(res: dict) -> list[str]:
    """Documented alternative readings under which the verdict class differs: the other PR1S arms of the sweep."""
    main = classify(res).klass
    return [f"{arm_label(arm)} gives '{klass}'" for arm, klass in sweep_verdicts(res.get("sweep", []),
                                                                                       res.get("overfit_gap")).items()
            if arm != res["pr1s"] and klass.removesuffix(" (bootstrap only)") != main]


@dataclass
class C1Result(ClaimResult):
    """reports/<profile>/c1.json."""
    FILE = "c1.json"
    profile: str
    full: str  # experiment of the Full-RL arm
    pr1s: str  # experiment of the PR1S arm that decides the verdict
    seeds: list
    per_seed: list  # measure() rows
    reward_gap: dict
    test_gap: dict
    verdict: str
    sweep: list  # sweep_rows() of the main arm and the further PR1S arms
    overfit_gap: dict | None = None  # Full's sampled train − test gap per seed: the precondition
    why: str | None = None
    verdict_bootstrap_only: str | None = None
    verdict_two_valued: str | None = None  # the two-valued rule's verdict; ``verdict`` is the class
    lower_reward: bool | None = None
    comparable_test: bool | None = None
    # readings added after tiny's results were seen (claims.readings_c1: sampled train − test, prompts seen);
    # neither classify nor judge reads them
    readings: dict | None = None


RESULT = C1Result  # the schema of this claim's cN.json


def decide(profile: str, full: str, pr1s: str, seeds: list, rows: list[dict], sweep: list[dict]) -> C1Result:
    result = C1Result(profile=profile, full=full, pr1s=pr1s, seeds=list(seeds), per_seed=rows, sweep=sweep,
                      **verdict_of_rows(rows))
    return classified(sys.modules[__name__], result)


def readme_block(r: C1Result) -> str:
    t = THRESHOLDS
    rg, tg = r.reward_gap, r.test_gap
    mean = lambda k: sum(p[k] for p in r.per_seed) / len(r.per_seed)  # noqa: E731
    return "\n".join([
        "| C1 quantity (Full RL − PR1S, paired per seed) | mean | 95% bootstrap CI | 95% t-interval | seeds |",
        "|---|---|---|---|---|",
        f"| Δ training reward, last {t['last_fraction']:.0%} of steps | {rg['mean']:.3f} | "
        f"{fmt_interval(rg)} | {fmt_interval(rg, 't_ci')} | {rg['n']} |",
        f"| Δ final greedy test accuracy | {tg['mean']:.3f} | {fmt_interval(tg)} | {fmt_interval(tg, 't_ci')} | "
        f"{tg['n']} |",
        "",
        f"Final greedy accuracy on the RL training problems vs the test set: Full RL {mean('train_full'):.3f} vs "
        f"{mean('test_full'):.3f}; {arm_label(r.pr1s)} {mean('train_pr1s'):.3f} vs {mean('test_pr1s'):.3f}. "
        f"Training reward over the last {t['last_fraction']:.0%} of steps: Full {mean('reward_full'):.3f}, "
        f"PR1S {mean('reward_pr1s'):.3f}.",
        "",
        verdict_sentence(sys.modules[__name__], r.to_json())
        + f" Thresholds in `claims.c1`: Δreward lower bound > 0 and mean ≥ {t['min_reward_gap']:g}; |Δtest| ≤ "
        f"{t['max_test_gap']:g} with upper bound ≤ {t['max_test_gap_ci_hi']:g}; bounds of both the bootstrap CI and "
        "the t-interval.",
    ])


def classify(stored: dict, overfit_required: bool = True) -> Verdict:
    """The verdict in the vocabulary of claims.verdict (C1's table): untestable unless Full RL overfit
    (:func:`overfit_precondition`); else all of (Δ training reward: mean ≥ min_reward_gap with lower bounds
    > 0; Δ test accuracy: |mean| ≤ max_test_gap with upper bounds ≤ max_test_gap_ci_hi)."""
    t = THRESHOLDS
    reward = judge_summary(stored["reward_gap"], t["min_reward_gap"], AT_LEAST, bound=0.0, strict=True,
                           require_mean=True, quantity="Δ training reward (Full − PR1S)")
    test = judge_summary(stored["test_gap"], t["max_test_gap"], WITHIN, bound=t["max_test_gap_ci_hi"],
                         require_mean=True, quantity="Δ test accuracy (Full − PR1S)")
    pre = [overfit_precondition(stored)] if overfit_required else []
    return all_of([reward, test], preconditions=pre, quantity="C1")


def classify_before_precondition(stored: dict) -> Verdict:
    """The class under the rule before the overfitting precondition was added (the README's rule history
    shows it beside the class in force)."""
    return classify(stored, overfit_required=False)
