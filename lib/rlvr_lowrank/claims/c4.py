"""C4: the left singular vectors of the rank-1 component align more strongly during training.

Measured in notebook 05 from each run's recorded trajectory (rank-k factors of ΔW_t every few steps):
|cos(x(t), x(T))| of the sign-aligned top singular vectors x = u1 (left) and v1 (right).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import runs, spectra
from .base import FAILS, HOLDS, INCONCLUSIVE, Claim, ClaimResult, too_few_seeds
from .stats import summarize

CLAIM = Claim(
    "C4",
    "2605.06523 abstract: 'the left singular vectors associated with rank-1 components demonstrate a stronger "
    "alignment tendency during training'.",
    "per seed, mean over target matrices and recorded steps of |cos(u1(t), u1(T))| minus the same for v1, and minus "
    "the random-vector baseline: both CIs over seeds have lower bound > 0.",
    {"min_u_minus_v": 0.0, "min_u_minus_baseline": 0.0},
    (("u-alignment − v-alignment", ("u_minus_v",)), ("u-alignment − random baseline", ("u_minus_baseline",))),
)
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
    """``spectra.alignment_table`` of a finished run's trajectory (component 0 = the rank-1 direction).

    The final step is kept in the table (cos_final = 1 there by definition) and excluded by
    :func:`per_seed`.
    """
    by_step = factors_by_step(runs.load_trajectory(run))
    if len(by_step) < 2:
        raise ValueError(f"{run}: fewer than two recorded steps with a non-zero update; nothing to align")
    return spectra.alignment_table(by_step)


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


def verdict(u_minus_v: list[float], u_minus_baseline: list[float]) -> dict:
    """Holds when the CIs over seeds of both differences have lower bounds above the thresholds (0)."""
    t = THRESHOLDS
    a, b = summarize(u_minus_v), summarize(u_minus_baseline)
    out = {"u_minus_v": a, "u_minus_baseline": b}
    if too_few_seeds(len(u_minus_v)):
        return {**out, "verdict": INCONCLUSIVE, "why": too_few_seeds(len(u_minus_v))}
    ok = a["ci"][0] > t["min_u_minus_v"] and b["ci"][0] > t["min_u_minus_baseline"]
    return {**out, "verdict": HOLDS if ok else FAILS}


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


RESULT = C4Result  # the schema of this claim's cN.json


def decide(profile: str, arms: list, seeds: list, rows: list[dict]) -> C4Result:
    by_arm = verdicts_by_arm(rows)
    first = by_arm[arms[0]]
    return C4Result(profile=profile, arms=list(arms), seeds=list(seeds), verdict=first["verdict"],
                    u_minus_v=first["u_minus_v"], u_minus_baseline=first["u_minus_baseline"], by_arm=by_arm)


def readme_block(r: C4Result) -> str:
    t = THRESHOLDS
    lines = ["| arm | mean \\|cos(u1(t), u1(T))\\| | mean \\|cos(v1(t), v1(T))\\| | u − v (95% CI) | "
             "u − random baseline (95% CI) | verdict |", "|---|---|---|---|---|---|"]
    for arm, a_r in r.by_arm.items():
        ps = a_r["per_seed"]
        mean = lambda k: sum(p[k] for p in ps) / len(ps)  # noqa: E731
        a, b = a_r["u_minus_v"], a_r["u_minus_baseline"]
        lines.append(f"| {arm} ({len(ps)} seeds) | {mean('u_cos_final'):.3f} | {mean('v_cos_final'):.3f} | "
                     f"{a['mean']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}] | {b['mean']:.3f} [{b['ci'][0]:.3f}, "
                     f"{b['ci'][1]:.3f}] | {a_r['verdict']} |")
    lines += ["", f"**Verdict (profile {r.profile}, arm {r.arms[0]}): C4 {r.verdict}** (thresholds in `claims.c4`: "
              f"CI lower bound of u − v > {t['min_u_minus_v']:g} and of u − baseline > {t['min_u_minus_baseline']:g})."]
    return "\n".join(lines)
