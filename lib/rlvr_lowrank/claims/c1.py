"""C1, implicit reward overfitting: under PR1S the training reward stays lower, the test accuracy does not.

Measured in notebook 02: Full RL and PR1S runs from the same base and seed, paired per seed, from
the runs' own logs (metrics.jsonl: training reward per step; evals.jsonl: greedy accuracies).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import runs
from .base import FAILS, HOLDS, INCONCLUSIVE, Claim, ClaimResult, too_few_seeds
from .stats import LAST_FRACTION, last_fraction_mean, summarize

CLAIM = Claim(
    "C1",
    "2605.06523 abstract: with Periodic Rank-1 Substitution 'the model can achieve satisfactory performance on the "
    "test set even when its rewards remain relatively low during the training process' (implicit reward overfitting).",
    "paired per seed, PR1S (truncated, K=10) vs Full RL from the same base and seed: Δreward = mean training reward "
    "(Full - PR1S) over the last quarter of steps, CI lower bound > 0 and mean >= min_reward_gap; Δtest = final greedy "
    "test accuracy (Full - PR1S): |mean| <= max_test_gap and CI upper bound <= max_test_gap_ci_hi.",
    {"min_reward_gap": 0.02, "max_test_gap": 0.05, "max_test_gap_ci_hi": 0.10, "last_fraction": LAST_FRACTION},
    (("Δ training reward (Full − PR1S)", ("reward_gap",)), ("Δ test accuracy (Full − PR1S)", ("test_gap",))),
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
            "gap_train_test_pr1s": float(lp["train_acc"] - lp["test_acc"])}


def measure(full_runs: dict[int, Path], pr1s_runs: dict[int, Path]) -> list[dict]:
    """One row per seed: {"seed", **per_seed(...)} (the ``per_seed`` of c1.json)."""
    return [{"seed": s, **per_seed(full_runs[s], pr1s_runs[s])} for s in full_runs]


def verdict(reward_gap: list[float], test_gap: list[float]) -> dict:
    """Paired per-seed gaps Full - PR1S: training reward (last quarter) and final greedy test accuracy."""
    t = THRESHOLDS
    rg, tg = summarize(reward_gap), summarize(test_gap)
    out = {"reward_gap": rg, "test_gap": tg}
    if too_few_seeds(len(reward_gap)):
        return {**out, "verdict": INCONCLUSIVE, "why": too_few_seeds(len(reward_gap))}
    lower_reward = rg["ci"][0] > 0 and rg["mean"] >= t["min_reward_gap"]
    comparable_test = abs(tg["mean"]) <= t["max_test_gap"] and tg["ci"][1] <= t["max_test_gap_ci_hi"]
    out.update(lower_reward=bool(lower_reward), comparable_test=bool(comparable_test))
    return {**out, "verdict": HOLDS if (lower_reward and comparable_test) else FAILS}


def verdict_of_rows(rows: list[dict]) -> dict:
    return verdict([r["reward_gap"] for r in rows], [r["test_gap"] for r in rows])


def sweep_rows(arm: str, pr1s_config: dict, rows: list[dict]) -> list[dict]:
    """The sweep table of one PR1S arm (its config.yaml ``pr1s:`` section and its measure() rows):
    one row per gap, with the arm's own verdict (only the main arm decides C1)."""
    v = verdict_of_rows(rows)
    return [{"arm": arm, "K": pr1s_config["every"], "variant": pr1s_config["variant"], "metric": metric,
             "mean": v[metric]["mean"], "ci_lo": v[metric]["ci"][0], "ci_hi": v[metric]["ci"][1],
             "verdict": v["verdict"]} for metric in ("reward_gap", "test_gap")]


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
    why: str | None = None
    lower_reward: bool | None = None
    comparable_test: bool | None = None


RESULT = C1Result  # the schema of this claim's cN.json


def decide(profile: str, full: str, pr1s: str, seeds: list, rows: list[dict], sweep: list[dict]) -> C1Result:
    return C1Result(profile=profile, full=full, pr1s=pr1s, seeds=list(seeds), per_seed=rows, sweep=sweep,
                    **verdict_of_rows(rows))


def readme_block(r: C1Result) -> str:
    t = THRESHOLDS
    rg, tg = r.reward_gap, r.test_gap
    mean = lambda k: sum(p[k] for p in r.per_seed) / len(r.per_seed)  # noqa: E731
    return "\n".join([
        "| C1 quantity (Full RL − PR1S, paired per seed) | mean | 95% bootstrap CI | seeds |",
        "|---|---|---|---|",
        f"| Δ training reward, last {t['last_fraction']:.0%} of steps | {rg['mean']:.3f} | "
        f"[{rg['ci'][0]:.3f}, {rg['ci'][1]:.3f}] | {rg['n']} |",
        f"| Δ final greedy test accuracy | {tg['mean']:.3f} | [{tg['ci'][0]:.3f}, {tg['ci'][1]:.3f}] | {tg['n']} |",
        "",
        f"Final greedy accuracy on the RL training problems vs the test set: Full RL {mean('train_full'):.3f} vs "
        f"{mean('test_full'):.3f}; PR1S ({r.pr1s}) {mean('train_pr1s'):.3f} vs {mean('test_pr1s'):.3f}. "
        f"Training reward over the last {t['last_fraction']:.0%} of steps: Full {mean('reward_full'):.3f}, "
        f"PR1S {mean('reward_pr1s'):.3f}.",
        "",
        f"**Verdict (profile {r.profile}): C1 {r.verdict}** (thresholds in `claims.c1`: Δreward CI lower bound > 0 "
        f"and mean ≥ {t['min_reward_gap']:g}; |Δtest| ≤ {t['max_test_gap']:g} with CI upper bound ≤ "
        f"{t['max_test_gap_ci_hi']:g})." + (f" {r.why}." if r.why else ""),
    ])
