"""C4 on the increments: readings added after tiny's results were seen (claims.readings' rules: thresholds derived
from C4's pre-registered ones, ``readings.THRESHOLDS["C4"]``, reported beside C4's verdict and changing none;
c4.classify never reads them).

Why: C4's |cos(x1(t), x1(T))| is taken on the cumulative ΔW_t, whose x1 is x1(T) at t = T by construction and
mostly measures how much of the final update has accumulated. The trajectory recorder also stores the top-k
factors of each increment D_t = ΔW_t − ΔW_{t−Δ} (``incU``/``incS``/``incV``/``incF``, trajectory.snapshot), and
these readings use them. Per run, each quantity a mean over target matrices (equal weights) of a mean over the
matrix's non-zero increments; x1 = u1 (left, output side) or v1 (right, input side):

* ``inc_{x}_final``: |cos(x1(D_t), x1(ΔW_T))|. Not free of construction: ΔW_T = Σ D_t, so even independent
  random increments align with it above chance (about 1/√n for n equal ones); reported as asked, read the next two.
* ``inc_{x}_sofar``: |cos(x1(D_t), x1(ΔW_{t−Δ}))|, the increment against the update accumulated before it
  (increments after the first); chance for an increment independent of the past.
* ``inc_{x}_prev``: |cos(x1(D_t), x1(D_{t−Δ}))|, consecutive increments: does the direction persist.
* ``{x}_chance``: E|cos| of independent uniform unit vectors in the side's dimension d
  (alignment.random_baseline, ≈ sqrt(2/(π d))), averaged like the values; ``*_excess`` = value − chance.
* ``cross_layer_u_final`` / ``cross_layer_u_inc``: mean |cos| of u1 between the matrices that write to the
  residual stream (o_proj, down_proj) of different layers, for ΔW_T and for the increments of one step (mean
  over steps); chance random_baseline(d_model) (``cross_layer_chance``).
* ``base_{x}_proj``: ‖X_kᵀ x1(ΔW_T)‖², the squared norm of x1's projection on the base's top-``BASE_TOP_K``
  left (u) or right (v) singular vectors X_k of W_base; chance k/d (``base_{x}_chance``).

Tests over seeds (``TESTS``; each with both intervals of stats.summarize, claims.base's rule): *above* when both
lower bounds exceed the threshold, *below* when both upper bounds are under it, else *undecided*. u − v (raw,
as C4's headline) against ``min_u_minus_v`` = C4's min_u_minus_v (0); excess over chance against
``min_above_chance`` = C4's min_u_minus_baseline (0). ``BASE_TOP_K`` = 10 is a parameter fixed here with the
reading, not a threshold (its chance level k/d is the reference).

PR1S runs: the trajectory records the weights after a substitution, so an increment spanning one includes it.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np
import torch

from ..analysis import svd, targets
from ..analysis.alignment import random_baseline
from ..training import config, runs
from . import null_arm
from .base import BOOTSTRAP, T_INTERVAL, interval
from .readings import ADDED, THRESHOLDS
from .stats import summarize

BASE_TOP_K = 10
RESIDUAL_WRITERS = ("o_proj", "down_proj")
ABOVE, BELOW, UNDECIDED = "above", "below", "undecided"
# quantity -> (threshold key in THRESHOLDS["C4"], what it says)
TESTS = {
    "inc_prev_u_minus_v": ("min_u_minus_v", "consecutive increments, u − v"),
    "inc_sofar_u_minus_v": ("min_u_minus_v", "increment vs the update so far, u − v"),
    "inc_final_u_minus_v": ("min_u_minus_v", "increment vs the final direction, u − v"),
    "inc_u_prev_excess": ("min_above_chance", "consecutive increments, u − chance"),
    "inc_v_prev_excess": ("min_above_chance", "consecutive increments, v − chance"),
    "inc_u_sofar_excess": ("min_above_chance", "increment vs the update so far, u − chance"),
    "cross_layer_u_excess": ("min_above_chance", "cross-layer u1 of ΔW_T (o_proj, down_proj), − chance"),
    "cross_layer_u_inc_excess": ("min_above_chance", "cross-layer u1 of the increments, − chance"),
    "base_u_excess": ("min_above_chance", f"u1 in the base's top-{BASE_TOP_K} left subspace, − k/d"),
    "base_v_excess": ("min_above_chance", f"v1 in the base's top-{BASE_TOP_K} right subspace, − k/d"),
}


def _acos(a: np.ndarray, b: np.ndarray) -> float:
    """|cos| of two vectors (stored in float16: renormalised)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _mean(xs) -> float:
    xs = [x for x in xs if np.isfinite(x)]
    return float(np.mean(xs)) if xs else float("nan")


def base_factors(base_state: Mapping[str, torch.Tensor], k: int = BASE_TOP_K) -> dict[str, tuple]:
    """{name: (U_k [m, k], V_k [n, k])}: the top-k singular vectors of every target matrix of W_base
    (svd.svd_topk, canonical sign), as float64 arrays."""
    out = {}
    for name in targets.target_names(base_state):
        w = base_state[name]
        u, _, v = svd.svd_topk(w.detach().float(), min(k, *w.shape))
        out[name] = (u.double().numpy(), v.double().numpy())
    return out


def run_reading(traj: runs.Trajectory, base: Mapping[str, tuple] | None = None) -> dict:
    """One run's values (see the module doc) from its trajectory; ``base`` = base_factors(W_base) or None
    (then no base_* values)."""
    if traj.incU is None:
        raise ValueError("the trajectory records no increments (recorded before the recorder kept them); "
                         "retrain the run with the current recorder")
    T = len(traj.steps) - 1
    per = {f"inc_{x}_{w}": [] for x in "uv" for w in ("final", "sofar", "prev")}
    per.update(u_chance=[], v_chance=[], base_u_proj=[], base_v_proj=[], base_u_chance=[], base_v_chance=[])
    writers, n_inc = {}, []
    for n in traj.names:
        if not traj.S[n][T, 0] > 0:
            continue
        ok = traj.incS[n][:, 0] > 0
        n_inc.append(int(ok.sum()))
        for x, inc, cum in (("u", traj.incU[n], traj.U[n]), ("v", traj.incV[n], traj.V[n])):
            d = inc.shape[1]
            per[f"{x}_chance"].append(random_baseline(d))
            per[f"inc_{x}_final"].append(_mean(_acos(inc[t, :, 0], cum[T, :, 0]) for t in range(T + 1) if ok[t]))
            per[f"inc_{x}_sofar"].append(_mean(_acos(inc[t, :, 0], cum[t - 1, :, 0]) for t in range(1, T + 1)
                                               if ok[t] and traj.S[n][t - 1, 0] > 0))
            per[f"inc_{x}_prev"].append(_mean(_acos(inc[t, :, 0], inc[t - 1, :, 0]) for t in range(1, T + 1)
                                              if ok[t] and ok[t - 1]))
            if base is not None and n in base:
                B = base[n][0 if x == "u" else 1]
                c = np.asarray(cum[T, :, 0], dtype=np.float64)
                per[f"base_{x}_proj"].append(float(np.sum((B.T @ c) ** 2) / (c @ c)))
                per[f"base_{x}_chance"].append(B.shape[1] / d)
        mtype, layer = targets.type_and_layer(n)
        if mtype in RESIDUAL_WRITERS:
            writers[n] = layer
    out = {k: _mean(v) for k, v in per.items()}
    pairs = [(a, b) for a, b in itertools.combinations(writers, 2) if writers[a] != writers[b]]
    out["cross_layer_u_final"] = _mean(_acos(traj.U[a][T, :, 0], traj.U[b][T, :, 0]) for a, b in pairs)
    out["cross_layer_u_inc"] = _mean(
        _mean(_acos(traj.incU[a][t, :, 0], traj.incU[b][t, :, 0]) for a, b in pairs
              if traj.incS[a][t, 0] > 0 and traj.incS[b][t, 0] > 0) for t in range(T + 1))
    out["cross_layer_chance"] = random_baseline(traj.U[next(iter(writers))].shape[1]) if pairs else float("nan")
    out["n_matrices"], out["n_pairs"] = len(n_inc), len(pairs)
    out["increments_per_matrix"] = _mean(n_inc)
    for w in ("final", "sofar", "prev"):
        out[f"inc_{w}_u_minus_v"] = out[f"inc_u_{w}"] - out[f"inc_v_{w}"]
        for x in "uv":
            out[f"inc_{x}_{w}_excess"] = out[f"inc_{x}_{w}"] - out[f"{x}_chance"]
    out["cross_layer_u_excess"] = out["cross_layer_u_final"] - out["cross_layer_chance"]
    out["cross_layer_u_inc_excess"] = out["cross_layer_u_inc"] - out["cross_layer_chance"]
    for x in "uv":
        out[f"base_{x}_excess"] = out[f"base_{x}_proj"] - out[f"base_{x}_chance"]
    return out


def direction(summary: dict, threshold: float) -> str:
    """ABOVE when both intervals' lower bounds exceed ``threshold``, BELOW when both upper bounds are under
    it, else UNDECIDED (one seed: no t-interval, undecided)."""
    if all(interval(summary, k)[0] > threshold for k in (BOOTSTRAP, T_INTERVAL)):
        return ABOVE
    if all(interval(summary, k)[1] < threshold for k in (BOOTSTRAP, T_INTERVAL)):
        return BELOW
    return UNDECIDED


def arm_reading(rows: Sequence[dict]) -> dict:
    """Over one arm's seeds (rows of run_reading with "seed"): summarize() of every value, and TESTS' classes."""
    keys = [k for k in rows[0] if k != "seed"] if rows else []
    s = {k: summarize([r[k] for r in rows]) for k in keys}
    t = THRESHOLDS["C4"]
    tests = {q: {"threshold": t[key], "class": direction(s[q], t[key]), "what": what}
             for q, (key, what) in TESTS.items() if q in s}
    return {"per_seed": list(rows), "summaries": s, "tests": tests}


def c4_reading(profile: str, arms: Sequence[str], seeds: Sequence[int], base_state=None) -> dict:
    """The notebook's entry point: per arm (experiment) its runs' ``run_reading`` on its own seeds (those of
    ``seeds`` it was trained with, config.seeds_of), ``arm_reading``, and the first arm against the profile's
    null arm (null_arm.compare: Welch interval, MDE) for each tested quantity."""
    base = base_factors(base_state) if base_state is not None else None
    by_arm = {}
    for arm in arms:
        own = [s for s in config.seeds_of(profile, arm) if s in seeds] or list(seeds)
        by_arm[arm] = arm_reading([{"seed": s, **run_reading(runs.load_trajectory(runs.require_run(profile, arm, s)),
                                                              base)} for s in own])
    null = null_arm.null_experiment(profile)
    rl = by_arm[arms[0]]["per_seed"]
    nl = by_arm[null]["per_seed"] if null in by_arm else None
    vs_null = [null_arm.compare([r[q] for r in rl], None if nl is None else [r[q] for r in nl], q,
                                "the whole run (same steps)") for q in TESTS]
    return {"added": ADDED, "thresholds": dict(THRESHOLDS["C4"]), "base_top_k": BASE_TOP_K, "null_arm": null,
            "by_arm": by_arm, "vs_null": vs_null, "lines": lines(by_arm, vs_null)}


def lines(by_arm: Mapping[str, dict], vs_null: Sequence[dict] = ()) -> list[str]:
    """The readings as printable sentences, per arm then RL − null."""
    out = [f"C4 on the increments ({ADDED}):"]
    for arm, a in by_arm.items():
        s = a["summaries"]
        n = len(a["per_seed"])
        m = lambda k: s[k]["mean"]  # noqa: E731
        out.append(f"  {arm} ({n} seed(s)): |cos| u/v (chance {m('u_chance'):.3f}/{m('v_chance'):.3f}): "
                   f"increment-final {m('inc_u_final'):.3f}/{m('inc_v_final'):.3f}, increment-so-far "
                   f"{m('inc_u_sofar'):.3f}/{m('inc_v_sofar'):.3f}, consecutive {m('inc_u_prev'):.3f}/"
                   f"{m('inc_v_prev'):.3f}; cross-layer u1 (o, down) ΔW_T {m('cross_layer_u_final'):.3f}, increments "
                   f"{m('cross_layer_u_inc'):.3f} (chance {m('cross_layer_chance'):.3f}); base top-{BASE_TOP_K} "
                   f"‖P u1‖² {m('base_u_proj'):.3f} (k/d {m('base_u_chance'):.3f}), ‖P v1‖² {m('base_v_proj'):.3f} "
                   f"(k/d {m('base_v_chance'):.3f})")
        out.append("    tests: " + "; ".join(
            f"{t['what']} {s[q]['mean']:+.3f} vs {t['threshold']:g}: {t['class']}" for q, t in a["tests"].items()))
    out += [f"  RL − null: {c['reading']}" for c in vs_null if c.get("null") != null_arm.NO_NULL_ARM]
    if vs_null and all(c.get("null") == null_arm.NO_NULL_ARM for c in vs_null):
        out.append(f"  RL − null: {null_arm.NO_NULL_ARM} in this profile; not compared")
    return out
