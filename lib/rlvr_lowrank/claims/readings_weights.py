"""The C0 and C3 readings (claims.readings) measured on a profile's runs, with the null arm beside them:
what notebooks 01 and 04 call, and the files they write.

Both are *added after tiny's results were seen* (claims.readings.ADDED) and change no verdict. Each notebook
writes its readings to ``reports/<profile>/readings_c0.json`` / ``readings_c3.json`` (one file per notebook:
the pipeline runs notebooks side by side, so they never write one file together).

* C0 (:func:`c0_readings`): the specificity reading from the accuracy rows C0 already scored plus one more
  model per seed, the second direction ‖ΔW‖_F u2 v2ᵀ (analysis.rank1.SECOND); σ1/‖ΔW‖_F and e1 per matrix of
  the full-RL update; and the null arm against Full RL on the quantities the runs record
  (claims.null_arm.readings), or "no null arm".
* C3 (:func:`c3_readings`): per arm and seed, α of W_base and W_RL at the base's x_min, Δα, ‖ΔW‖/‖W‖ and the
  Weyl ratio (claims.readings.c3_reading); over seeds the mean Δα and the fraction heavy-tailed at that x_min;
  and, when the profile has a null arm, RL − null of the mean Δα per seed with its Welch interval and MDE.
  The base's ESDs and fits are computed once (readings.base_fit) and shared by every arm and seed.
  Beside them, a goodness-of-fit reading (:func:`gof_reading`): CSN's bootstrap p (analysis.goodness_of_fit,
  ``N_BOOT`` samples per matrix, at most ``GOF_MAX_MATRICES`` matrices spread over the model) for W_base and
  for W_RL of the deciding arm's first seed; a matrix is heavy-tailed by this reading when the power law is
  plausible (p ≥ 0.1) and α is in the heavy-tailed band, the fraction read against C3's min_fraction, next
  to the strict rule (c3.json) and the WeightWatcher bands.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import fileio, paths
from ..analysis import goodness_of_fit, power_law, rank1, targets
from ..training import config, runs
from . import c0, null_arm, readings
from .stats import summarize

GOF_MAX_MATRICES = 256  # matrices bootstrapped per model (all of SmolLM2-135M's 210): about 1 min per model
N_BOOT = goodness_of_fit.N_BOOT


def second_direction_rows(full_runs: dict[int, object], items) -> list[dict]:
    """C0's accuracy rows for the second-direction control, one per seed (same items and scoring as C0)."""
    return [{"seed": s, **c0.variant_accuracy(run, items, rank1.SECOND, 1)} for s, run in full_runs.items()]


def rank1_share(run) -> dict:
    """σ1/‖ΔW‖_F and e1 per target matrix of one run's final update (readings.sigma1_share), from the float64
    difference (rank1.update_diagnostics works on the float32 one, whose rounding shows at 1e-8 in e1)."""
    base, _ = runs.load_base(run)
    base_state, final = base.state_dict(), runs.final_weights(run)
    rows = []
    for name in targets.target_names(base_state):
        s = np.linalg.svd((final[name].double() - base_state[name].double()).numpy(), compute_uv=False)
        fro = float(np.sqrt((s ** 2).sum()))
        e1 = float(s[0] ** 2 / fro ** 2) if fro else 0.0
        rows.append({"name": name, "sigma1": float(s[0]), "fro": fro, "e1": e1})
    return readings.sigma1_share(rows)


def c0_readings(profile: str, full: str, seeds: Sequence[int], rows: list[dict], second_rows: list[dict]) -> dict:
    full_runs = {s: runs.require_run(profile, full, s) for s in seeds}
    shares = {s: rank1_share(run) for s, run in full_runs.items()}
    out = {"added": readings.ADDED, "specificity": readings.c0_reading(rows + second_rows),
           "sigma1_over_fro": summarize([sh["sigma1_over_fro"]["mean"] for sh in shares.values()]),
           "e1": summarize([sh["e1"]["mean"] for sh in shares.values()]),
           "null_arm": null_arm.readings(profile, full, seeds)}
    fileio.write_json(paths.report_dir(profile) / "readings_c0.json", out)
    return out


def _target_arrays(state) -> dict[str, np.ndarray]:
    return {n: state[n].double().numpy() for n in targets.target_names(state)}


def c3_arm(profile: str, arm: str, seeds: Sequence[int], base: dict, fits: dict) -> dict:
    per_seed = {}
    for s in seeds:
        final = runs.final_weights(runs.require_run(profile, arm, s))
        per_seed[s] = readings.c3_reading(base, {n: final[n].double().numpy() for n in base}, fits)
    return {"per_seed": {s: {k: v for k, v in r.items() if k != "per_matrix"} for s, r in per_seed.items()},
            "mean_delta_alpha": summarize([r["delta_alpha"]["mean"] for r in per_seed.values()]),
            "fraction_heavy_rl": summarize([r["fraction_heavy_fixed_xmin"]["rl"] for r in per_seed.values()]),
            "fraction_heavy_base": per_seed[seeds[0]]["fraction_heavy_fixed_xmin"]["base"] if seeds else None,
            "rel_update_median": summarize([r["rel_update_median"] for r in per_seed.values()]),
            "weyl_ratio_median": summarize([r["weyl_ratio_median"] for r in per_seed.values()])}


def gof_reading(evals: dict[str, np.ndarray], max_matrices: int = GOF_MAX_MATRICES, n_boot: int = N_BOOT) -> dict:
    """CSN bootstrap goodness of fit (seed = the matrix's index) of at most ``max_matrices`` ESDs, evenly spread
    over the sorted names: per matrix p, α and whether it is heavy-tailed by this reading; the fractions."""
    names = sorted(evals)
    if len(names) > max_matrices:
        names = [names[i] for i in np.linspace(0, len(names) - 1, max_matrices).round().astype(int)]
    per = {}
    for i, n in enumerate(names):
        g = goodness_of_fit.bootstrap_gof(evals[n], n_boot=n_boot, seed=i)
        heavy = g["plausible"] and power_law.ALPHA_HT_LO <= g["alpha"] <= power_law.ALPHA_HT_HI
        per[n] = {"p": g["p"], "alpha": g["alpha"], "heavy": bool(heavy)}
    return {"n_matrices": len(per), "n_boot": n_boot, "p_plausible": goodness_of_fit.P_PLAUSIBLE,
            "fraction_plausible": float(np.mean([np.isfinite(r["p"]) and r["p"] >= goodness_of_fit.P_PLAUSIBLE
                                                 for r in per.values()])) if per else float("nan"),
            "fraction_heavy": float(np.mean([r["heavy"] for r in per.values()])) if per else float("nan"),
            "per_matrix": per}


def c3_readings(profile: str, arms: Sequence[str], seeds: Sequence[int], base_state) -> dict:
    """The C3 reading per arm (the first arm decides C3) and, with a null arm, RL − null of the mean Δα; the
    goodness-of-fit reading of the base and of the first arm's first seed."""
    base = _target_arrays(base_state)
    fits = {n: readings.base_fit(w) for n, w in base.items()}
    out = {"added": readings.ADDED, "min_fraction": readings.THRESHOLDS["C3"]["min_fraction"],
           "by_arm": {arm: c3_arm(profile, arm, seeds, base, fits) for arm in arms}}
    name = null_arm.null_experiment(profile)
    if name is None:
        out["null_arm"] = null_arm.compare([], None, "mean Δα at the base's x_min")
    else:
        null = c3_arm(profile, name, config.seeds_of(profile, name), base, fits)
        out["by_arm"][name] = null
        out["null_arm"] = null_arm.compare(out["by_arm"][arms[0]]["mean_delta_alpha"]["values"],
                                           null["mean_delta_alpha"]["values"], "mean Δα at the base's x_min")
    if seeds:
        final = runs.final_weights(runs.require_run(profile, arms[0], seeds[0]))
        rl = {n: np.sort(np.linalg.svd(final[n].double().numpy(), compute_uv=False) ** 2) for n in base}
        out["goodness_of_fit"] = {"base": gof_reading({n: f["evals"] for n, f in fits.items()}),
                                  "rl": {"arm": arms[0], "seed": seeds[0], **gof_reading(rl)}}
    fileio.write_json(paths.report_dir(profile) / "readings_c3.json", out)
    return out


def lines(result: dict) -> list[str]:
    """The reading sentences a notebook prints."""
    out = []
    if "specificity" in result:
        out.append(result["specificity"]["reading"])
        out.append(f"σ1/‖ΔW‖_F (mean over matrices, over seeds): {result['sigma1_over_fro']['mean']:.3f}; "
                   f"e1 {result['e1']['mean']:.3f}")
    for arm, r in result.get("by_arm", {}).items():
        out.append(f"C3 at fixed x_min, {arm}: mean Δα {r['mean_delta_alpha']['mean']:.3g}, heavy-tailed fraction "
                   f"{r['fraction_heavy_rl']['mean']:.3g} (base {r['fraction_heavy_base']:.3g}; threshold "
                   f"{result['min_fraction']:g}), median ‖ΔW‖/‖W‖ {r['rel_update_median']['mean']:.3g}, "
                   f"median Weyl ratio {r['weyl_ratio_median']['mean']:.3g}")
    gof = result.get("goodness_of_fit")
    if gof:
        b, r = gof["base"], gof["rl"]
        out.append(f"C3 by CSN goodness of fit (bootstrap p ≥ {b['p_plausible']:g}, {b['n_boot']} samples, "
                   f"{b['n_matrices']} matrices) and α in the heavy-tailed band: fraction heavy-tailed base "
                   f"{b['fraction_heavy']:.3g}, {r['arm']} seed {r['seed']} {r['fraction_heavy']:.3g} (threshold "
                   f"{result['min_fraction']:g}); power law plausible: base {b['fraction_plausible']:.3g}, RL "
                   f"{r['fraction_plausible']:.3g}")
    null = result.get("null_arm")
    for entry in (null if isinstance(null, list) else [null] if null else []):
        out.append(entry["reading"])
    return out
