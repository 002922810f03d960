"""Readings added after tiny's results were seen: quantities that can decide where a pre-registered one cannot
by construction, each with a threshold *derived from* a pre-registered one (``THRESHOLDS``, pinned in
tests/test_claims_report.py next to the pre-registered values). They are reported beside the verdicts and
change none of them (no cN.classify reads them).

* **C0, specificity** (``c0_reading``): recovery ratios divide by a noisy full-RL gain and wander above 1; a
  paired accuracy difference against Full RL does not. Per seed d = acc(variant) − acc(Full) for the rank-1
  models, the residual ΔW − σ1 u1 v1ᵀ and the second direction ‖ΔW‖_F u2 v2ᵀ (analysis.rank1.SECOND);
  a variant is *non-inferior* when the lower bound of d's interval is above −margin and *inferior* when the
  upper bound is below −margin, under both intervals (claims.base's rule), margin = ``ni_margin_fraction`` ×
  the mean full-RL gain. ``ni_margin_fraction`` = 1 − C0's min_recovery (= 0.1): the 10% of the gain C0 already
  lets the rank-1 model lose. The rank-1 part is *specific* when it is non-inferior and the residual and the
  second direction are both inferior; *sufficient, not specific* when a control is non-inferior too.
  ``sigma1_share``: σ1/‖ΔW‖_F and e1 = σ1²/‖ΔW‖_F² per matrix (rank1 diagnostics).
* **C3, the update rather than the base** (``c3_reading``): per matrix, α of W_base and of W_RL at one fixed
  x_min (the base's KS-scan x_min; power_law.fit_power_law(xmin=...) is the closed-form Hill estimate), the
  paired Δα over matrices; the fraction heavy-tailed at that x_min (α in [ALPHA_HT_LO, ALPHA_HT_HI]) against
  C3's min_fraction; ‖ΔW‖_F/‖W‖_F and the Weyl ratio ‖ΔW‖₂/σ_min,tail (|σᵢ(W+ΔW) − σᵢ(W)| ≤ ‖ΔW‖₂: a tail
  singular value cannot move by more than this fraction, so α(W_RL) is α(W_base) when it is small).
* **C1, train − test with the same decoding** (``c1_reading``): the paired difference-in-differences
  (train − test)_Full − (train − test)_PR1S of sampled accuracies, threshold ``min_did`` = C1's
  min_reward_gap (mean ≥ it and lower bound > 0 under both intervals, C1's own rule for the reward gap); and
  TOST for |Δtest| ≤ ``tost_margin`` = C1's max_test_gap: equivalent when the 90% t-interval of Δtest lies
  inside (−margin, margin) (two one-sided tests at α = 0.05).
* **C2, a random direction and the forward KL** (claims.readings_c2, beside this module for its size): the
  rank-1 model's probe loss against a random rank-1 direction of the same norm, threshold C2's
  min_knowledge_drop; D_KL(π_base ‖ π_model) on the training prompts beside each model's forgetting.
* **C4, on the increments ΔW_t − ΔW_{t−Δ}** (claims.readings_c4, beside this module for its size): u − v of
  the increments' alignments against ``min_u_minus_v`` = C4's min_u_minus_v, and every alignment's excess over
  its chance level (consecutive increments, cross-layer u1 of o_proj/down_proj, u1 in the base's top-k
  subspace) against ``min_above_chance`` = C4's min_u_minus_baseline.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..analysis import power_law
from . import c0, c1, c2, c3, c4
from .base import BOOTSTRAP, T_INTERVAL, interval
from .stats import summarize, t_interval

ADDED = "added after tiny's results were seen; reported beside the pre-registered verdict, which it does not change"
TOST_LEVEL = 0.90  # two one-sided tests at α = 0.05 each = the 90% interval inside the margin

THRESHOLDS = {
    "C0": {"ni_margin_fraction": round(1.0 - c0.THRESHOLDS["min_recovery"], 12)},  # 0.1
    "C1": {"min_did": c1.THRESHOLDS["min_reward_gap"], "tost_margin": c1.THRESHOLDS["max_test_gap"]},
    "C2": {"min_knowledge_drop": c2.THRESHOLDS["min_knowledge_drop"]},  # claims.readings_c2's random control
    "C3": {"min_fraction": c3.THRESHOLDS["min_fraction"]},
    "C4": {"min_u_minus_v": c4.THRESHOLDS["min_u_minus_v"], "min_above_chance": c4.THRESHOLDS["min_u_minus_baseline"]},
}
DERIVED_FROM = {"C0.ni_margin_fraction": "1 − C0.min_recovery", "C1.min_did": "C1.min_reward_gap",
                "C1.tost_margin": "C1.max_test_gap", "C2.min_knowledge_drop": "C2.min_knowledge_drop",
                "C3.min_fraction": "C3.min_fraction",
                "C4.min_u_minus_v": "C4.min_u_minus_v", "C4.min_above_chance": "C4.min_u_minus_baseline"}

NON_INFERIOR, INFERIOR, UNDECIDED = "non-inferior", "inferior", "undecided"


def under_both(rule) -> bool:
    """Whether ``rule(interval key)`` holds for the bootstrap CI and for the t-interval (claims.base's rule)."""
    return bool(rule(BOOTSTRAP)) and bool(rule(T_INTERVAL))


# ----------------------------------------------------------------------------------------------
# C0
# ----------------------------------------------------------------------------------------------

def _wide(rows: Sequence[dict]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for r in rows:
        out.setdefault(r["variant"], {})[r["seed"]] = float(r["test_acc"])
    return out


def non_inferiority(diffs: Sequence[float], margin: float) -> dict:
    """A variant's paired d = acc(variant) − acc(Full): non-inferior when both intervals' lower bounds are
    above −margin, inferior when both upper bounds are below −margin, else undecided."""
    s = summarize(diffs)
    if under_both(lambda k: interval(s, k)[0] > -margin):
        cls = NON_INFERIOR
    elif under_both(lambda k: interval(s, k)[1] < -margin):
        cls = INFERIOR
    else:
        cls = UNDECIDED
    return {"difference_vs_full": s, "margin": margin, "class": cls}


def c0_reading(rows: Sequence[dict], rank1: str = "normmatch",
               controls: Sequence[str] = ("residual", "second")) -> dict:
    """From c0.measure-style rows {"seed", "variant", "test_acc"} (with "base", "full", ``rank1`` and the
    controls): each variant's non-inferiority to Full RL, rank-1 − control paired differences, and the class
    specific / sufficient, not specific / not sufficient / undecided."""
    wide = _wide(rows)
    missing = [v for v in ("base", "full", rank1, *controls) if v not in wide]
    if missing:
        return {"added": ADDED, "reading": f"C0 specificity not measured: no accuracy rows for {missing}"}
    seeds = sorted(set.intersection(*(set(wide[v]) for v in ("base", "full", rank1, *controls))))
    gain = float(np.mean([wide["full"][s] - wide["base"][s] for s in seeds]))
    margin = THRESHOLDS["C0"]["ni_margin_fraction"] * gain
    per = {v: non_inferiority([wide[v][s] - wide["full"][s] for s in seeds], margin) for v in (rank1, *controls)}
    vs = {c: summarize([wide[rank1][s] - wide[c][s] for s in seeds]) for c in controls}
    r1, ctl = per[rank1]["class"], [per[c]["class"] for c in controls]
    if gain <= 0:
        verdict = "undecided: full RL gained nothing"
    elif r1 == NON_INFERIOR and all(c == INFERIOR for c in ctl):
        verdict = "specific"
    elif r1 == NON_INFERIOR and NON_INFERIOR in ctl:
        verdict = "sufficient, not specific"
    elif r1 == INFERIOR:
        verdict = "not sufficient"
    else:
        verdict = "undecided"
    return {"added": ADDED, "seeds": seeds, "gain": gain, "margin": margin, "by_variant": per,
            "rank1_minus_control": vs, "class": verdict,
            "reading": f"C0 specificity ({rank1} vs {', '.join(controls)}; margin {margin:.3g} = "
                       f"{THRESHOLDS['C0']['ni_margin_fraction']:g} × gain {gain:.3g}): {verdict}"}


def sigma1_share(diagnostics: Sequence[dict]) -> dict:
    """σ1/‖ΔW‖_F and e1 per matrix from rank1 diagnostics (model.rank1_diagnostics), and their summaries."""
    per = [{"name": d["name"], "sigma1_over_fro": d["sigma1"] / d["fro"] if d["fro"] > 0 else float("nan"),
            "e1": d["e1"]} for d in diagnostics]
    return {"per_matrix": per, "sigma1_over_fro": summarize([p["sigma1_over_fro"] for p in per]),
            "e1": summarize([p["e1"] for p in per])}


# ----------------------------------------------------------------------------------------------
# C3
# ----------------------------------------------------------------------------------------------

def _heavy(alpha: float) -> bool:
    return bool(np.isfinite(alpha)) and power_law.ALPHA_HT_LO <= alpha <= power_law.ALPHA_HT_HI


def base_fit(w_base) -> dict:
    """What c3_matrix needs of W_base, computed once per base matrix (the same for every arm and seed): its ESD
    (λ = σ², sorted), the KS-scan x_min and α at that x_min."""
    eb = np.sort(np.linalg.svd(np.asarray(w_base, dtype=np.float64), compute_uv=False) ** 2)
    xmin = power_law.fit_power_law(eb).xmin
    alpha = power_law.fit_power_law(eb, xmin=xmin).alpha if np.isfinite(xmin) else float("nan")
    return {"evals": eb, "xmin": float(xmin), "alpha": float(alpha)}


def c3_matrix(w_base, w_rl, fit: dict | None = None) -> dict:
    """One matrix: α of W_base and W_RL at the base's x_min (ESD λ = σ²), ‖ΔW‖_F/‖W_base‖_F and the Weyl ratio
    ‖ΔW‖₂ / σ at x_min (the largest relative move any tail singular value can make). ``fit``: base_fit(w_base),
    when already computed."""
    wb, wr = np.asarray(w_base, dtype=np.float64), np.asarray(w_rl, dtype=np.float64)
    fit = fit or base_fit(wb)
    er = np.sort(np.linalg.svd(wr, compute_uv=False) ** 2)
    xmin, a_b = fit["xmin"], fit["alpha"]
    a_r = power_law.fit_power_law(er, xmin=xmin).alpha if np.isfinite(xmin) else float("nan")
    dw = wr - wb
    return {"xmin": float(xmin), "alpha_base": float(a_b), "alpha_rl": float(a_r), "delta_alpha": float(a_r - a_b),
            "rel_update": float(np.linalg.norm(dw) / np.linalg.norm(wb)),
            "weyl_ratio": float(np.linalg.norm(dw, 2) / np.sqrt(xmin)) if xmin > 0 else float("nan")}


def c3_reading(base: Mapping[str, np.ndarray], rl: Mapping[str, np.ndarray],
               fits: Mapping[str, dict] | None = None) -> dict:
    """Per matrix ``c3_matrix``; over matrices: Δα summary (descriptive: the matrices of one model are not
    independent draws), the fraction heavy-tailed at the fixed x_min for base and RL against C3's
    min_fraction, and the median ‖ΔW‖/‖W‖ and Weyl ratio. ``fits``: base_fit per matrix, when computed once
    for several readings."""
    per = {n: c3_matrix(base[n], rl[n], (fits or {}).get(n)) for n in base}
    rows = list(per.values())
    frac = {k: float(np.mean([_heavy(r[f"alpha_{k}"]) for r in rows])) if rows else float("nan")
            for k in ("base", "rl")}
    t = THRESHOLDS["C3"]["min_fraction"]
    return {"added": ADDED, "per_matrix": per, "delta_alpha": summarize([r["delta_alpha"] for r in rows]),
            "fraction_heavy_fixed_xmin": frac, "min_fraction": t,
            "rel_update_median": float(np.median([r["rel_update"] for r in rows])) if rows else float("nan"),
            "weyl_ratio_median": float(np.median([r["weyl_ratio"] for r in rows])) if rows else float("nan"),
            "reading": f"C3 at fixed x_min: heavy-tailed fraction base {frac['base']:.3g}, RL {frac['rl']:.3g} "
                       f"(threshold {t:g}); mean Δα over {len(rows)} matrices "
                       f"{np.mean([r['delta_alpha'] for r in rows]) if rows else float('nan'):.3g}"}


# ----------------------------------------------------------------------------------------------
# C1
# ----------------------------------------------------------------------------------------------

def tost(values: Sequence[float], margin: float, level: float = TOST_LEVEL) -> dict:
    """Equivalence |mean| ≤ margin by two one-sided t-tests: the ``level`` (90%) t-interval inside (−margin, margin)."""
    lo, hi = t_interval(values, level)
    ok = bool(np.isfinite(lo) and np.isfinite(hi) and -margin < lo and hi < margin)
    return {"interval_90": (lo, hi), "margin": margin, "equivalent": ok}


def c1_reading(full_train: Sequence[float], full_test: Sequence[float], pr1s_train: Sequence[float],
               pr1s_test: Sequence[float]) -> dict:
    """Per-seed sampled accuracies (same decoding for train and test) of the paired Full and PR1S runs:
    the difference-in-differences (Full − PR1S) of (train − test) against ``min_did``, and TOST for Δtest."""
    ft, fs, pt, ps = (np.asarray(x, dtype=float) for x in (full_train, full_test, pr1s_train, pr1s_test))
    did = summarize((ft - fs) - (pt - ps))
    t = THRESHOLDS["C1"]
    holds = did["n"] >= 2 and did["mean"] >= t["min_did"] and under_both(lambda k: interval(did, k)[0] > 0)
    eq = tost(fs - ps, t["tost_margin"])
    return {"added": ADDED, "did": did, "min_did": t["min_did"], "overfits_more_than_pr1s": bool(holds),
            "test_gap": summarize(fs - ps), "tost": eq,
            "reading": f"C1 train − test DiD (Full − PR1S) {did['mean']:.3g} (threshold {t['min_did']:g}): "
                       f"{'above' if holds else 'not shown'}; Δtest 90% t {eq['interval_90'][0]:.3g} .. "
                       f"{eq['interval_90'][1]:.3g} vs ±{t['tost_margin']:g}: "
                       f"{'equivalent' if eq['equivalent'] else 'equivalence not shown'}"}
