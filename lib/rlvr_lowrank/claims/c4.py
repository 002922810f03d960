"""C4: the left singular vectors of the rank-1 component align more strongly during training.

Measured in notebook 05 from each run's recorded trajectory (rank-k factors of ΔW_t every few steps):
|cos(x(t), x(T))| of the sign-aligned top singular vectors x = u1 (left) and v1 (right).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..analysis import alignment
from ..training import runs
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
from .stats import fmt_interval, summarize
from .verdict import AT_LEAST, Verdict, all_of, judge_summary

CLAIM = Claim(
    "C4",
    "2605.06523 abstract: 'the left singular vectors associated with rank-1 components demonstrate a stronger "
    "alignment tendency during training'.",
    "per seed, mean over target matrices and recorded steps of |cos(u1(t), u1(T))| minus the same for v1, and minus "
    "the random-vector baseline: both CIs over seeds have lower bound > 0.",
    {"min_u_minus_v": 0.0, "min_u_minus_baseline": 0.0},
    (("u-alignment − v-alignment", ("u_minus_v",)), ("u-alignment − random baseline", ("u_minus_baseline",))),
    "whether the left singular vector u1 of the update settles onto its final direction earlier than the right one v1",
    {"u-alignment − v-alignment": ("min_u_minus_v",), "u-alignment − random baseline": ("min_u_minus_baseline",)},
)
CONVENTION = ("u is the output side of PyTorch's [out, in] weight, the paper's convention: the reference code it "
              "builds on, AlphaRL's eval/svd.py, takes torch.linalg.svd of the Hugging Face [out, in] ΔW, so its U "
              "is the output side; under y = xW the sides swap, and both readings are reported")
THRESHOLDS = CLAIM.thresholds


def factors_by_step(traj: runs.Trajectory) -> dict[int, dict[str, tuple]]:
    """{step: {name: (U, S, V)}} of a trajectory, without the steps where ΔW_t = 0 (step 0, before any
    update): their singular vectors are arbitrary."""
    by_step = {}
    for t, step in enumerate(traj.steps):
        factors = {n: (traj.U[n][t], traj.S[n][t], traj.V[n][t]) for n in traj.names if traj.S[n][t][0] > 0}
        if factors:
            by_step[int(step)] = factors
    return by_step


def trajectory_alignment(run: Path) -> pd.DataFrame:
    """``alignment.alignment_table`` of a finished run's trajectory (component 0 = the rank-1 direction).

    The final step is kept in the table (cos_final = 1 there by definition) and excluded by
    :func:`per_seed`.
    """
    by_step = factors_by_step(runs.load_trajectory(run))
    if len(by_step) < 2:
        raise ValueError(f"{run}: fewer than two recorded steps with a non-zero update; nothing to align")
    return alignment.alignment_table(by_step)


def per_seed(table: pd.DataFrame) -> dict:
    """One seed's C4 numbers: mean |cos(x(t), x(T))| over matrices and recorded steps t < T, for
    x = u1 (left) and v1 (right), the random-vector baselines, and the pre-registered differences.
    ``*_excess`` subtracts each side's own chance level (u and v can have different dimensions)."""
    t = table[table["step"] < table.groupby("name")["step"].transform("max")]
    u, v = t[t["side"] == "u"], t[t["side"] == "v"]
    out = {"u_cos_final": float(u["cos_final"].mean()), "v_cos_final": float(v["cos_final"].mean()),
           "u_baseline": float(u["baseline"].mean()), "v_baseline": float(v["baseline"].mean()),
           "u_cos_prev": float(u["cos_prev"].mean()), "v_cos_prev": float(v["cos_prev"].mean())}
    out["u_minus_v"] = out["u_cos_final"] - out["v_cos_final"]
    out["u_minus_baseline"] = out["u_cos_final"] - out["u_baseline"]
    out["u_excess_minus_v_excess"] = (out["u_cos_final"] - out["u_baseline"]) - (out["v_cos_final"] - out["v_baseline"])
    return out


def measure(tables: dict[tuple[str, int], pd.DataFrame]) -> list[dict]:
    """One row per (arm, seed): {"arm", "seed", **per_seed(table)}."""
    return [{"arm": arm, "seed": s, **per_seed(t)} for (arm, s), t in tables.items()]


def judge(s: dict) -> dict:
    """The verdict from the summaries ``u_minus_v`` and ``u_minus_baseline`` (one arm of a c4.json):
    both lower bounds above the thresholds, read with both intervals (base.both_intervals)."""
    t = THRESHOLDS
    a, b = s["u_minus_v"], s["u_minus_baseline"]
    if too_few_seeds(a["n"]):
        return inconclusive(too_few_seeds(a["n"]))
    return both_intervals(lambda k: interval(a, k)[0] > t["min_u_minus_v"]
                          and interval(b, k)[0] > t["min_u_minus_baseline"])


def verdict(u_minus_v: list[float], u_minus_baseline: list[float]) -> dict:
    """Holds when the intervals over seeds of both differences have lower bounds above the thresholds (0)."""
    out = {"u_minus_v": summarize(u_minus_v), "u_minus_baseline": summarize(u_minus_baseline)}
    return {**out, **judge(out)}


def swapped(per_seed_rows: list[dict]) -> dict:
    """The verdict under the swapped side convention (y = xW: "u" is the input side), from the same
    per-seed numbers: v − u and v − v's random baseline."""
    return verdict([-r["u_minus_v"] for r in per_seed_rows],
                   [r["v_cos_final"] - r["v_baseline"] for r in per_seed_rows])


def rejudge(res: dict) -> dict:
    """Verdicts of the deciding arm recomputed from a stored c4.json's summaries under the rule in force."""
    return judge(res["by_arm"][res["arms"][0]])


def sensitivity(res: dict) -> list[str]:
    """The swapped side convention, where it flips the verdict of the deciding arm."""
    arm = res["arms"][0]
    sw = swapped(res["by_arm"][arm]["per_seed"])
    klass = _classify_arm(arm, sw).klass
    if klass == classify(res).klass:
        return []
    return [f"under y = xW (sides swapped) v − u = {sw['u_minus_v']['mean']:.3f} and the verdict is '{klass}'"]


def verdicts_by_arm(rows: list[dict]) -> dict[str, dict]:
    """arm -> {**verdict, "per_seed": that arm's rows}, arms in order of first appearance."""
    out = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        part = [r for r in rows if r["arm"] == arm]
        out[arm] = {**verdict([r["u_minus_v"] for r in part], [r["u_minus_baseline"] for r in part]), "per_seed": part}
    return out


@dataclass
class C4Result(ClaimResult):
    """reports/<profile>/c4.json; the top-level verdict and differences are those of ``arms[0]``."""
    FILE = "c4.json"
    profile: str
    arms: list
    seeds: list
    verdict: str
    u_minus_v: dict
    u_minus_baseline: dict
    by_arm: dict  # verdicts_by_arm()
    verdict_bootstrap_only: str | None = None
    verdict_two_valued: str | None = None  # the two-valued rule's verdict; ``verdict`` is the class
    why: str | None = None
    # claims.readings_c4 (C4 on the increments), added after tiny's results were seen; classify never reads it
    readings: dict | None = None


RESULT = C4Result  # the schema of this claim's cN.json


def decide(profile: str, arms: list, seeds: list, rows: list[dict]) -> C4Result:
    by_arm = verdicts_by_arm(rows)
    first = by_arm[arms[0]]
    result = C4Result(profile=profile, arms=list(arms), seeds=list(seeds), verdict=first["verdict"],
                      verdict_bootstrap_only=first["verdict_bootstrap_only"], why=first.get("why"),
                      u_minus_v=first["u_minus_v"], u_minus_baseline=first["u_minus_baseline"], by_arm=by_arm)
    return classified(sys.modules[__name__], result)


def readme_block(r: C4Result) -> str:
    t = THRESHOLDS
    lines = ["| arm | mean \\|cos(u1(t), u1(T))\\| | mean \\|cos(v1(t), v1(T))\\| | u − v (95% CI) | "
             "u − random baseline (95% CI) | verdict | swapped sides (y = xW): v − u, verdict |",
             "|---|---|---|---|---|---|---|"]
    for arm, a_r in r.by_arm.items():
        ps = a_r["per_seed"]
        mean = lambda k: sum(p[k] for p in ps) / len(ps)  # noqa: E731
        a, b = a_r["u_minus_v"], a_r["u_minus_baseline"]
        sw = swapped(ps)
        lines.append(f"| {arm_label(arm)} ({len(ps)} seeds) | {mean('u_cos_final'):.3f} | {mean('v_cos_final'):.3f} | "
                     f"{a['mean']:.3f}, bootstrap {fmt_interval(a)}, t {fmt_interval(a, 't_ci')} | "
                     f"{b['mean']:.3f}, bootstrap {fmt_interval(b)}, t {fmt_interval(b, 't_ci')} | "
                     f"{_classify_arm(arm, a_r).klass} | {sw['u_minus_v']['mean']:.3f}, bootstrap "
                     f"{fmt_interval(sw['u_minus_v'])}, t {fmt_interval(sw['u_minus_v'], 't_ci')}: "
                     f"{_classify_arm(arm, sw).klass} |")
    fl = sensitivity(r.to_json())
    lines += ["", verdict_sentence(sys.modules[__name__], r.to_json())
              + f" Deciding arm: {arm_label(r.arms[0])}. Thresholds in `claims.c4`: lower bound of u − v > "
              f"{t['min_u_minus_v']:g} and of u − baseline > {t['min_u_minus_baseline']:g}, with both the bootstrap "
              "CI and the t-interval." + (f" **Fragile**: {'; '.join(fl)}." if fl else ""), "",
              f"Side convention: {CONVENTION}."]
    return "\n".join(lines)


def classify(stored: dict) -> Verdict:
    """The deciding arm's verdict in the vocabulary of claims.verdict (C4's table): all of (u − v > 0,
    u − random baseline > 0), both lower bounds; θ = 0, so an upper bound < 0 is an opposite effect (refuted)."""
    return _classify_arm(stored["arms"][0], stored["by_arm"][stored["arms"][0]])


def _classify_arm(arm: str, part: dict) -> Verdict:
    """``classify`` of one arm's summaries ``u_minus_v`` and ``u_minus_baseline`` (a by_arm entry, or swapped())."""
    t = THRESHOLDS
    return all_of([judge_summary(part["u_minus_v"], t["min_u_minus_v"], AT_LEAST, strict=True,
                                 quantity="u-alignment − v-alignment"),
                   judge_summary(part["u_minus_baseline"], t["min_u_minus_baseline"], AT_LEAST, strict=True,
                                 quantity="u-alignment − random baseline")], quantity="C4")
