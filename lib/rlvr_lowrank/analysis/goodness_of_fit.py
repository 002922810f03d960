"""Goodness of fit of a power-law tail by the semi-parametric bootstrap of Clauset, Shalizi & Newman (2009, §4.1).

Why: C3's strict heavy-tail rule asks that a power law beat an exponential (likelihood ratio, p < 0.05). With
a few hundred eigenvalues that test often has too little power, so "not heavy-tailed" can mean "could not
tell". CSN's own criterion for a power law being *plausible* is different: refit synthetic data drawn from the
fitted model and see how often its KS distance is at least the observed one. The power law is plausible
when that fraction, p, is ≥ ``P_PLAUSIBLE`` = 0.1 (CSN's threshold). A large p does not prove a power law:
other heavy-tailed forms may fit as well.

The procedure, per bootstrap sample: n values (n = the eigenvalues the fit saw). Each is drawn from the fitted
power law above x_min with probability n_tail / n (inverse CDF, x = x_min (1 − u)^(−1/(α−1))), otherwise
uniformly from the observed values below x_min. The synthetic data get the same fit, x_min scan included
(power_law.fit_power_law, same mode). p = #{D_synthetic ≥ D_observed} / #{synthetic fits that succeeded}.
Its standard error is √(p(1−p)/n_boot): about 0.03 at p = 0.1 with the default 100 samples. CSN recommend
2,500 samples for two-decimal precision; C3's reading only needs to place p relative to 0.1.
"""
from __future__ import annotations

import math

import numpy as np

from . import power_law

P_PLAUSIBLE = 0.1   # CSN 2009 §4.1: rule out the power law when p <= 0.1
N_BOOT = 100        # default bootstrap samples (standard error of p about 0.03 at p = 0.1)


def bootstrap_gof(evals, n_boot: int = N_BOOT, seed: int = 0, mode: str = "ww") -> dict:
    """{"p", "n_boot" (synthetic fits that succeeded), "alpha", "xmin", "D", "plausible"} for the ESD ``evals``
    (λ = σ²). A fit that fails (alpha NaN) gives p NaN and plausible False, with its reason."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    fit = power_law.fit_power_law(evals, mode=mode)
    if not math.isfinite(fit.alpha) or fit.alpha <= 1:
        return {"p": math.nan, "n_boot": 0, "alpha": fit.alpha, "xmin": fit.xmin, "D": fit.D, "plausible": False,
                "reason": fit.reason or "no power-law fit"}
    x = power_law._clean_evals(evals, mode)
    below = x[x < fit.xmin]
    n = len(x)
    rng = np.random.default_rng(seed)
    exceed = valid = 0
    for _ in range(n_boot):
        k = int(rng.binomial(n, fit.n_tail / n)) if len(below) else n
        tail = fit.xmin * (1.0 - rng.random(k)) ** (-1.0 / (fit.alpha - 1.0))
        synth = np.concatenate([rng.choice(below, n - k, replace=True) if n - k else np.empty(0), tail])
        got = power_law.fit_power_law(synth, mode=mode)
        if math.isfinite(got.D):
            valid += 1
            exceed += got.D >= fit.D
    p = exceed / valid if valid else math.nan
    return {"p": p, "n_boot": valid, "alpha": fit.alpha, "xmin": fit.xmin, "D": fit.D,
            "plausible": bool(math.isfinite(p) and p >= P_PLAUSIBLE), "reason": fit.reason}
