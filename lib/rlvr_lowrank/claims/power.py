"""Power of the claims' tests, defined once: the minimum detectable effect (MDE) and the seeds needed.

Definition (docs/claims.md, "Verdict vocabulary"): two-sided α = 0.05, matching the 95% intervals of
``stats``; power 0.80; a one-sample t-test on the n per-seed values. Where two arms share a seed the
values are the *paired* per-seed differences (C1's gaps, C2's drops, C4's differences) and ``sd`` is
the sd of those differences. The power at a true mean δ is

    P(|T| > t_{1-α/2, n-1}),   T ~ noncentral t(df = n - 1, nc = δ·√n / sd)   (scipy.stats.nct)

and the MDE is the δ where it reaches 0.80. ``seeds_needed(effect, sd)`` is the smallest n whose
power for ``effect`` reaches 0.80.

**Computed from the observed sd.** The sd that goes in is the sd of the seeds we have. With 3 seeds
that sd is itself uncertain by a factor of several (its 95% interval is about [0.52, 6.3] times the
observed value), so an MDE or a seed count is an order of magnitude, not an exact size.

A quantity with sd 0 over seeds (every seed gives the same number) has no MDE: the functions return
``NO_VARIATION`` ("no variation over seeds"), never 0; ``seeds_needed`` returns None there. C3's
fraction of matrices does not vary over seeds; its uncertainty is over matrices, given by
``fraction_interval`` (Wilson), which is *descriptive*: the matrices of one model are not
independent samples.

API (pure functions on numbers)::

    power_one_sample(effect, sd, n, alpha=0.05) -> float
    min_detectable_effect(sd, n, alpha=0.05, power=0.8, paired=True) -> float | NO_VARIATION
    power_two_sample(effect, sd1, n1, sd2, n2, alpha=0.05) -> float
    min_detectable_effect_two_sample(sd1, n1, sd2, n2, alpha=0.05, power=0.8) -> float | NO_VARIATION
    seeds_needed(effect, sd, alpha=0.05, power=0.8, paired=True) -> int | None
    sd_over_seeds(values) -> float            # ddof=1; exactly 0.0 when the values agree to rounding
    is_no_variation(x) -> bool
    wilson_interval(k, n, level=0.95) -> (lo, hi)
    fraction_interval(fraction, n) -> (lo, hi)   # Wilson with k = round(fraction * n)

``paired=False`` is two independent arms of n seeds each with the same sd, under Welch's test
(``power_two_sample``). No claim uses it today: every claim's arms share seeds.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import optimize, stats

ALPHA = 0.05  # two-sided, the 95% intervals of claims.stats
POWER = 0.80
NO_VARIATION = "no variation over seeds"  # the MDE of a quantity with sd 0 over seeds (a str: JSON-ready)
MAX_SEEDS = 1_000_000  # seeds_needed gives None above this
_TINY = 1e-12  # relative: values that agree to this are "the same number" (float rounding of one fraction)


def is_no_variation(x) -> bool:
    """Whether an MDE is the "no variation over seeds" marker."""
    return isinstance(x, str) and x == NO_VARIATION


def sd_over_seeds(values: Sequence[float]) -> float:
    """Sample sd (ddof=1) of the finite values; exactly 0.0 when they agree to float rounding
    (C3's fractions 0.6785714285714286 and 0.6785714285714285 are one number); NaN with fewer than two."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return float("nan")
    if np.ptp(x) <= _TINY * max(1.0, float(np.max(np.abs(x)))):
        return 0.0
    return float(x.std(ddof=1))


def _no_variation(sd: float) -> bool:
    return bool(np.isfinite(sd)) and sd <= _TINY


def _power_t(nc: float, df: float, alpha: float) -> float:
    """P(|T| > t_crit) for T ~ nct(df, nc): both tails of the two-sided test."""
    crit = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def power_one_sample(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided one-sample (paired) t-test on ``n`` values with sd ``sd`` when the true
    mean differs from the tested value by ``effect``. NaN for n < 2; 1.0 for sd 0 and effect ≠ 0."""
    if n < 2 or not np.isfinite(sd):
        return float("nan")
    if _no_variation(sd):
        return 1.0 if effect != 0 else alpha
    return _power_t(abs(effect) * math.sqrt(n) / sd, n - 1, alpha)


def _solve_mde(power_of, scale: float, power: float) -> float:
    """The δ > 0 where the increasing function power_of(δ) reaches ``power`` (δ in units of ``scale``)."""
    hi = scale
    while power_of(hi) < power:
        hi *= 2
    return float(optimize.brentq(lambda d: power_of(d) - power, 0.0, hi, xtol=1e-12 * scale, rtol=1e-10))


def min_detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER, paired: bool = True):
    """Smallest true mean (distance from the tested value) the two-sided t-test detects with ``power``.

    ``paired=True``: one-sample t on the n per-seed values (paired differences where two arms share a
    seed), ``sd`` their sd. ``paired=False``: two independent arms of n each with sd ``sd``
    (``min_detectable_effect_two_sample``). Computed from the *observed* sd (see the module doc).
    Returns ``NO_VARIATION`` when sd is 0, ``inf`` for n < 2 (no test), NaN for a NaN sd.
    """
    if not paired:
        return min_detectable_effect_two_sample(sd, n, sd, n, alpha, power)
    if n < 2:
        return math.inf
    if not np.isfinite(sd):
        return float("nan")
    if _no_variation(sd):
        return NO_VARIATION
    return _solve_mde(lambda d: power_one_sample(d, sd, n, alpha), sd, power)


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(96)  # Gauss–Legendre on (0, 1) for the Welch integral
_U, _W = (_NODES + 1) / 2, _WEIGHTS / 2


def power_two_sample(effect: float, sd1: float, n1: int, sd2: float, n2: int, alpha: float = ALPHA) -> float:
    """Power of Welch's two-sided t-test (scipy.stats.ttest_ind(equal_var=False)) for two independent
    arms with true sds ``sd1``, ``sd2`` and ``n1``, ``n2`` values, at a true difference ``effect``.

    Exact up to quadrature: given the two sample variances s_i² = sd_i² χ²_{n_i−1}/(n_i−1), the mean
    difference is normal and independent of them, so the power is the expectation over (s1², s2²) of
    P(|δ + Z·se| > t_{1−α/2, df̂}·ŝe), df̂ the Welch–Satterthwaite df of the sample variances; the
    expectation is a 96 × 96 Gauss–Legendre sum over the variances' quantiles. (A noncentral t with the
    population df overstates the power with 3 to 5 seeds: 0.80 becomes 0.70 at n = 3.) For arms that
    share seeds use the paired ``power_one_sample`` on the differences instead."""
    if min(n1, n2) < 2 or not (np.isfinite(sd1) and np.isfinite(sd2)):
        return float("nan")
    if _no_variation(sd1) and _no_variation(sd2):
        return 1.0 if effect != 0 else alpha
    q1 = sd1 ** 2 * stats.chi2.ppf(_U, n1 - 1) / (n1 - 1) / n1  # s1²/n1 at each node
    q2 = sd2 ** 2 * stats.chi2.ppf(_U, n2 - 1) / (n2 - 1) / n2
    v1, v2 = q1[:, None], q2[None, :]
    se_hat = np.sqrt(v1 + v2)
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    crit = stats.t.ppf(1 - alpha / 2, df)
    se = math.sqrt(sd1 ** 2 / n1 + sd2 ** 2 / n2)
    d = abs(effect)
    p = stats.norm.cdf((d - crit * se_hat) / se) + stats.norm.cdf((-d - crit * se_hat) / se)
    return float(np.sum(_W[:, None] * _W[None, :] * p))


def min_detectable_effect_two_sample(sd1: float, n1: int, sd2: float, n2: int, alpha: float = ALPHA,
                                     power: float = POWER):
    """MDE of the difference of means of two independent arms under Welch's test (``power_two_sample``).
    ``NO_VARIATION`` when both sds are 0; ``inf`` when an arm has fewer than 2 values."""
    if min(n1, n2) < 2:
        return math.inf
    if not (np.isfinite(sd1) and np.isfinite(sd2)):
        return float("nan")
    if _no_variation(sd1) and _no_variation(sd2):
        return NO_VARIATION
    se = math.sqrt(sd1 ** 2 / n1 + sd2 ** 2 / n2)
    return _solve_mde(lambda d: power_two_sample(d, sd1, n1, sd2, n2, alpha), se, power)


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, paired: bool = True,
                 max_n: int = MAX_SEEDS) -> int | None:
    """Smallest number of seeds n ≥ 2 whose t-test detects a true mean ``effect`` with ``power``
    (per arm when ``paired=False``). None when the effect is 0 (nothing to detect), when sd is 0
    (no variation over seeds: no count follows from it) or NaN, or when more than ``max_n`` are needed.
    Computed from the observed sd (see the module doc)."""
    if not (np.isfinite(effect) and np.isfinite(sd)) or effect == 0 or _no_variation(sd):
        return None
    pw = (lambda n: power_one_sample(effect, sd, n, alpha)) if paired else \
        (lambda n: power_two_sample(effect, sd, n, sd, n, alpha))
    lo, hi = 1, 2  # pw(lo) < power (n = 1: no test) <= pw(hi) once found
    while pw(hi) < power:
        lo, hi = hi, hi * 2
        if lo > max_n:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if pw(mid) >= power else (mid, hi)
    return hi if hi <= max_n else None


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (no continuity correction; equals
    scipy.stats.binomtest(k, n).proportion_ci(level, method="wilson")). NaNs for n = 0.

    For C3 it is *descriptive*: the matrices of one model are not independent draws, so its coverage
    is not the nominal one."""
    if n <= 0:
        return (float("nan"), float("nan"))
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} is not a count out of n = {n}")
    z = stats.norm.ppf(0.5 + level / 2)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (0.0 if k == 0 else float(center - half), 1.0 if k == n else float(center + half))  # exact at the ends


def fraction_interval(fraction: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson interval (descriptive, see ``wilson_interval``) of a fraction of ``n`` matrices, e.g. C3's
    heavy-tailed fraction of a model's M target matrices: k = round(fraction · n)."""
    return wilson_interval(int(round(fraction * n)), n, level)
