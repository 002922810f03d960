"""Power-law fits of an ESD's tail and the heavy-tail decision (claim C3; docs/methods.md §5-§7).

The fit is a vectorised numpy version of the Clauset-Shalizi-Newman (CSN 2009, §3) KS scan that reproduces,
on the same eigenvalues,

* ``mode="ww"``:       WeightWatcher 0.7.7 ``analyze()`` default fit (``pl_package='ww'``, WW_powerlaw.WWFit), and
* ``mode="powerlaw"``: ``powerlaw.Fit(evals, xmin=None, discrete=False, parameter_ranges={'alpha': [1, None]})``
                       of powerlaw 2.0.0,

to floating-point rounding (the tests check |delta alpha| <= 1e-9 against powerlaw and <= 1e-6 against WW).
Besides: the fixed-x_min Hill estimator for time series, the power law vs exponential likelihood-ratio
test, a cross-check against the powerlaw package's other alternatives, and the heavy-tail decision.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import erfc

# ----------------------------------------------------------------------------------------------------
# Constants. Reference-package constants first (must not change: they define "equivalent"),
# then our own decision thresholds (documented choices, docs/methods.md §5.4, §6).

# WeightWatcher 0.7.7 constants.EVALS_THRESH: eigenvalues <= 1e-5 (absolute!) are dropped before the
# fit (so a small-norm matrix can lose all its eigenvalues, docs/methods.md §6). Only used in mode="ww".
WW_EVALS_THRESH = 1e-5
# WW_powerlaw.SMALL_N_CUTOFF: with fewer than 20 eigenvalues WW 0.7.7 switches to fit_powerlaw_smallN
# (bias-corrected alpha, candidates with >= 8 tail points). We reproduce it and flag it unreliable.
WW_SMALL_N = 20
WW_SMALL_N_KMIN = 8
# powerlaw 2.0.0 Distribution.fit: a fit with alpha - 0.01 < lower bound (1) is "near the boundary"
# and the x_min candidate is invalid. Candidates with alpha0 in (1.5, 3] skip that check,
# but those are > 1.01 anyway, so the rule is simply alpha - 0.01 >= 1.
PL_BOUNDARY_EPS = 0.01
# Eigenvalues below NOISE_RTOL * lambda_max are numerically zero for a float64 SVD (sigma ratio 1e-5,
# far above the ~N*eps = 1e-13 SVD noise). analyze_model drops them before a mode="powerlaw" fit.
NOISE_RTOL = 1e-10

# Reliability of a fit (docs/methods.md §5.4). A fit failing any of these has reliable=False and a reason.
MIN_EVALS = WW_SMALL_N   # below this WW itself changes estimator; too few points for the CSN scan
MIN_TAIL = 10            # tail points; sigma_alpha = (alpha-1)/sqrt(n) is ~30% of alpha-1 at n=10.
#                          LLM-sized layers deserve ~50; the tiny model has only 128 evals per
#                          matrix, so 10 is the floor and n_tail is always reported for stricter filtering.
ALPHA_FIT_LO = 1.5       # alpha < 1.5 needs Cauchy-like entries (mu < 1, Martin & Mahoney 2021): in practice
#                          a fitting artefact (x_min at the start of the bulk)
ALPHA_FIT_HI = 8.0       # WW README: alpha > 8 is "spurious" and should be discarded
KS_CRIT = 1.36           # D must be <= 1.36/sqrt(n_tail), the 5% one-sample KS critical value. With fitted
#                          parameters the true critical value is smaller, so failing it rejects the PL.

# Heavy-tailed decision (docs/methods.md §6, claim C3): reliable fit AND power law beats exponential AND alpha in
# the heavy-tailed band.
P_MAX = 0.05             # significance of the Vuong PL-vs-exponential test (CSN 2009 use 0.1)
ALPHA_HT_LO = ALPHA_FIT_LO   # very heavy tails (1.5 < alpha < 2) are heavy-tailed too (WW: "over-trained")
ALPHA_HT_HI = 6.0        # WW bands: alpha > 6 is "under-trained / random-like", MP bulk (WW issue #235)

# Size of one block of the vectorised KS scan, (candidates x points) float64 temporaries. 64k elements =
# 512 KB per temporary, which stays in the L2 cache: measured 4x faster at n = 1,000 than 2M-element
# blocks (which also computed the lower triangle of one big square), same results to the last bit of α.
_BLOCK_ELEMS = 1 << 16


# ----------------------------------------------------------------------------------------------------
# Power-law fit (docs/methods.md §5.2-§5.4)

class PowerLawFit(NamedTuple):
    alpha: float      # PL exponent of the density tail rho(lambda) ~ lambda^-alpha
    xmin: float       # start of the tail
    D: float          # KS distance of the tail fit
    sigma: float      # CSN standard error (alpha-1)/sqrt(n_tail)
    n_tail: int       # #{lambda >= xmin} (WW's num_pl_spikes)
    n_evals: int      # eigenvalues the fit saw (after the mode's filter)
    reliable: bool
    reason: str       # "" when reliable, else ";"-separated reasons


def _clean_evals(evals, mode: str) -> np.ndarray:
    """Sorted float64 eigenvalues after the mode's filter; ValueError on NaN/Inf/negative input."""
    x = np.asarray(evals.detach().cpu().double().numpy() if isinstance(evals, torch.Tensor) else evals,
                   dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError("eigenvalues contain NaN or Inf")
    if np.any(x < 0):
        raise ValueError(f"negative eigenvalues (min {x.min():.3g}); pass sigma^2, not a Gram spectrum with noise")
    if mode == "ww":
        x = x[x > WW_EVALS_THRESH]          # absolute threshold, as WW
    elif mode == "powerlaw":
        x = x[x > 0]                         # powerlaw.Fit drops values <= 0
    else:
        raise ValueError(f"mode must be 'ww' or 'powerlaw', got {mode!r}")
    return np.sort(x)


def ks_scan(evals, mode: str = "ww"):
    """The CSN x_min scan: (xmins, alphas, Ds, valid) for every candidate, vectorised.

    For candidate index i (ascending data x, tail = x[i:], n = N - i, x_min counted in n, docs/methods.md §5.2):
        alpha_i = 1 + n / sum_j ln(x_j / x_i)            (continuous MLE)
        D_i     = max_j | 1 - (x_j/x_i)^(1-alpha_i) - e_j/n |
    mode="ww":       candidates = every value except the largest; e_j = j - i; D = 1 if alpha <= 1.
    mode="powerlaw": candidates = unique values below the maximum, minus the largest of those (so the two
                     largest unique values are never candidates: powerlaw 2.0.0 find_xmin); e_j = number of
                     tail points strictly below x_j (its ECDF at unique values, searchsorted 'left');
                     valid = alpha - 0.01 >= 1 (near-boundary rule, see PL_BOUNDARY_EPS). powerlaw runs
                     Nelder-Mead when alpha0 is outside (1.5, 3]; it starts at the exact MLE alpha0 and
                     returns it unchanged, so the closed form is exact here.
    """
    x = _clean_evals(evals, mode)
    N = len(x)
    if mode == "ww":
        cand = np.arange(max(N - 1, 0))
        emp = np.arange(N)
    else:
        below_max = x[x < x.max()] if N else x
        _, first = np.unique(below_max, return_index=True)
        cand = first[:-1]
        emp = np.searchsorted(x, x, side="left")
    lx = np.log(x)
    alphas = np.empty(len(cand))
    Ds = np.ones(len(cand))
    block = max(1, _BLOCK_ELEMS // max(N, 1))
    for b in range(0, len(cand), block):
        c = cand[b:b + block]
        j0 = c[0]                                   # candidates are increasing: columns j >= j0 suffice
        # Masks are implicit, to save passes over the block: x is sorted, so ln(x_j / x_i) <= 0 for j < i
        # and clipping it at 0 zeroes exactly the non-tail entries (ties give 0 either way); likewise the
        # ECDF term e_j - i is < 0 only off the tail (candidates are first indices of their value, so
        # e_i = i), so clipping it at 0 makes |F - E| = 0 there (F = 0 where z = 0).
        z = lx[None, j0:] - lx[c, None]
        np.maximum(z, 0.0, out=z)                   # ln(x_j / x_i) on the tail, 0 elsewhere
        n = (N - c).astype(np.float64)
        with np.errstate(divide="ignore"):
            a = 1.0 + n / z.sum(axis=1)             # sum == 0 (all ties) -> inf, as WW
        with np.errstate(invalid="ignore", over="ignore"):
            F = np.multiply(z, (1.0 - a)[:, None], out=z)
            np.expm1(F, out=F)                      # -(1 - (x_j/x_i)^(1-alpha)); rows with alpha = inf: NaN
        if not np.isfinite(a).all():
            F[~np.isfinite(a)] = 0.0                # all ties: F = 0, as the masked formula gives
        E = np.subtract(emp[None, j0:], c[:, None], dtype=np.float64)
        np.maximum(E, 0.0, out=E)
        E /= n[:, None]
        np.add(F, E, out=F)                         # |F - E| = |-F' - E| with F' = expm1 term
        d = np.abs(F, out=F).max(axis=1)
        alphas[b:b + block] = a
        Ds[b:b + block] = np.where(a > 1, d, 1.0)
    if mode == "ww":
        valid = np.ones(len(cand), dtype=bool)
    else:
        valid = np.isfinite(alphas) & ~(alphas - PL_BOUNDARY_EPS < 1.0)
    return x[cand], alphas, Ds, valid


def _ww_small_n(x: np.ndarray):
    """WW 0.7.7 WWFit.fit_powerlaw_smallN followed by WWFit.__init__'s argmin(Ds), line by line.

    Bias-corrected alpha = 1 + (n-1)/sum ln(x/x_min) on candidates with >= 8 tail points; the J objective
    only matters in WW's fallback branch, because __init__ re-picks argmin D afterwards.
    Returns (xmin, alpha, D, n_tail). One deliberate difference: in the fallback (no candidate with >= 8
    tail points, i.e. N < 9) WW computes sigma before setting alpha and reports sigma = -1/sqrt(N); the
    caller reports (alpha-1)/sqrt(n) instead.
    """
    N = len(x)
    lx = np.log(x)
    alphas, Ds, finite_J = np.zeros(N - 1), np.ones(N - 1), False
    for i in range(N - 1):
        n = N - i
        if n < WW_SMALL_N_KMIN:
            continue
        s = np.sum(lx[i:]) - n * lx[i]
        if s <= 1e-12:
            continue
        alphas[i] = 1.0 + (n - 1.0) / s
        if alphas[i] <= 1.0:
            continue
        Ds[i] = np.max(np.abs(np.arange(n) / n - (1.0 - (x[i:] / x[i]) ** (1.0 - alphas[i]))))
        finite_J = True
    if not finite_J:                                 # WW fallback: whole data as the tail (i = 0)
        s = np.sum(lx) - N * lx[0]
        if s > 1e-12:
            alphas[0] = 1.0 + (N - 1.0) / s
            Ds[0] = np.max(np.abs(np.arange(N) / N - (1.0 - (x / x[0]) ** (1.0 - alphas[0]))))
    i = int(np.argmin(Ds))
    return x[i], alphas[i], Ds[i], N - i


def _judge(alpha, xmin, D, n_tail, n_evals, lam_max, min_tail, extra=()) -> tuple[bool, str]:
    """Reliability flags (constants at the top of the module, docs/methods.md §5.4)."""
    reasons = list(extra)
    if n_evals < MIN_EVALS:
        reasons.append(f"n_evals={n_evals}<{MIN_EVALS}")
    if not np.isfinite(alpha):
        reasons.append("alpha not finite")
    else:
        if n_tail < min_tail:
            reasons.append(f"n_tail={n_tail}<{min_tail}")
        if not (ALPHA_FIT_LO <= alpha <= ALPHA_FIT_HI):
            reasons.append(f"alpha={alpha:.3g} outside [{ALPHA_FIT_LO}, {ALPHA_FIT_HI}]")
        if n_tail > 0 and not D <= KS_CRIT / math.sqrt(n_tail):
            reasons.append(f"D={D:.3g}>{KS_CRIT}/sqrt(n_tail)")
        if xmin <= NOISE_RTOL * lam_max:
            reasons.append("x_min at the numerical-zero floor (rank-deficient matrix)")
    return (not reasons), ";".join(reasons)


def _failed(n_evals: int, reason: str) -> PowerLawFit:
    return PowerLawFit(math.nan, math.nan, math.nan, math.nan, 0, n_evals, False, reason)


def fit_power_law(evals, mode: str = "ww", xmin: float | None = None, min_tail: int = MIN_TAIL) -> PowerLawFit:
    """CSN power-law fit of an ESD; equal to WW 0.7.7 (mode="ww") or powerlaw 2.0.0 (mode="powerlaw").

    * ``xmin=None``: KS scan (:func:`ks_scan`), x_min = argmin D (first minimum, as numpy argmin in both
      packages); mode="powerlaw" takes the argmin over valid candidates only, or over all with a
      "no valid x_min" reason when none is valid (powerlaw's noise_flag). mode="ww" with fewer than 20
      evals runs WW's small-N estimator (reproduced, always flagged unreliable).
    * ``xmin=value``: Hill-style fit with that fixed x_min (tail = evals >= value, same closed-form alpha
      and D). Note WW's own ``xmin=`` is *not* fixed (it snaps to a data point and scans above it).
    Never returns a silent alpha: degenerate inputs give alpha=nan, reliable=False and a reason.
    """
    x = _clean_evals(evals, mode)
    N = len(x)
    lam_max = float(x[-1]) if N else 0.0
    if xmin is not None:
        tail = x[x >= xmin]
        n = len(tail)
        if n < 2 or tail[-1] == tail[0]:
            return _failed(N, f"fixed x_min leaves {n} distinct tail points")
        lt = np.log(tail / xmin)
        alpha = 1.0 + n / lt.sum()
        emp = (np.arange(n) if mode == "ww" else np.searchsorted(tail, tail, side="left")) / n
        D = float(np.max(np.abs(-np.expm1((1.0 - alpha) * lt) - emp)))
        ok, why = _judge(alpha, xmin, D, n, N, lam_max, min_tail)
        return PowerLawFit(alpha, float(xmin), D, (alpha - 1) / math.sqrt(n), n, N, ok, why)

    if mode == "ww" and N < WW_SMALL_N:
        if N < 2:
            return _failed(N, f"{N} eigenvalues above WW's 1e-5 threshold (WW status 'failed')")
        xm, alpha, D, n = _ww_small_n(x)
        ok, why = _judge(alpha, xm, D, n, N, lam_max, min_tail, extra=["WW small-N estimator"])
        return PowerLawFit(float(alpha), float(xm), float(D), (alpha - 1) / math.sqrt(n), int(n), N, ok, why)

    xmins, alphas, Ds, valid = ks_scan(x, mode)
    if len(xmins) < (2 if mode == "powerlaw" else 1):
        return _failed(N, f"only {len(xmins)} x_min candidates")   # powerlaw returns nan below 2
    extra = []
    if valid.any():
        i = int(np.argmin(np.where(valid, Ds, np.inf)))
    else:
        i = int(np.argmin(Ds))
        extra.append("no valid x_min candidate (powerlaw noise_flag)")
    alpha, xm, D = float(alphas[i]), float(xmins[i]), float(Ds[i])
    n = int(np.count_nonzero(x >= xm))
    # WW's sigma uses the candidate's own n = N - i, which differs from n_tail only for tied eigenvalues
    n_sigma = N - i if mode == "ww" else n
    ok, why = _judge(alpha, xm, D, n, N, lam_max, min_tail, extra)
    return PowerLawFit(alpha, xm, D, (alpha - 1) / math.sqrt(n_sigma), n, N, ok, why)


def hill_alpha(evals, k: int | None = None) -> float:
    """Fixed-x_min Hill alpha for time series (Hill 1975; TempBalance/AlphaPruning "xmin_mid"; docs/methods.md §6).

    Non-zero eigenvalues (> NOISE_RTOL * lambda_max) sorted ascending; x_min = lambda[M - k] with
    k = M - floor(M/2) by default (the median), alpha = 1 + k / sum_{top k} ln(lambda / x_min) (x_min
    counted in k). No x_min search, so it moves smoothly between checkpoints (no "fingers", docs/methods.md §7).
    """
    x = _clean_evals(evals, "powerlaw")
    x = x[x > NOISE_RTOL * x[-1]] if len(x) else x
    M = len(x)
    k = M - M // 2 if k is None else int(k)
    if M < 2 or not 2 <= k <= M:
        return math.nan
    tail = x[M - k:]
    s = np.sum(np.log(tail / tail[0]))
    return 1.0 + k / s if s > 0 else math.nan


# ----------------------------------------------------------------------------------------------------
# Likelihood-ratio tests and the heavy-tail decision (CSN 2009, §5; docs/methods.md §6)

def compare_exponential(evals, fit: PowerLawFit) -> tuple[float, float]:
    """(R, p): power law vs exponential on the tail x >= fit.xmin, Vuong non-nested test.

    Closed-form MLEs: l_PL = ln(alpha-1) - ln x_min - alpha ln(x/x_min) with the fit's alpha,
    l_EXP = ln(lam) - lam (x - x_min), lam = 1/(mean(x) - x_min). R = sum(l_PL - l_EXP) > 0 favours the PL;
    p = erfc(|R| / sqrt(2 n s^2)), s^2 = population variance of the differences (powerlaw's
    loglikelihood_ratio). powerlaw fits the exponential by Nelder-Mead (tol 1e-4), so its exponential
    likelihood is slightly below the maximum and its R slightly higher than ours (the exact MLE).
    """
    if not (np.isfinite(fit.alpha) and np.isfinite(fit.xmin)) or fit.alpha <= 1:
        return math.nan, math.nan
    x = _clean_evals(evals, "powerlaw")
    x = x[x >= fit.xmin]
    n = len(x)
    if n < 2 or x.mean() <= fit.xmin:
        return math.nan, math.nan
    a, xm = fit.alpha, fit.xmin
    l_pl = np.log(a - 1.0) - np.log(xm) - a * np.log(x / xm)
    lam = 1.0 / (x.mean() - xm)
    l_exp = np.log(lam) - lam * (x - xm)
    d = l_pl - l_exp
    R = float(d.sum())
    var = float(np.mean((d - d.mean()) ** 2))
    p = float(erfc(abs(R) / math.sqrt(2 * n * var))) if var > 0 else math.nan
    return R, p


def compare_with_powerlaw_package(evals, xmin: float, alternatives=("lognormal", "truncated_power_law")) -> dict:
    """{alt: {"R", "p", "nested"}} from powerlaw 2.0.0 ``Fit(xmin=fixed).distribution_compare('power_law', alt)``.

    For information only (PL vs lognormal/TPL is usually inconclusive on ESD tails). parameter_ranges
    {'alpha': [1, None]} avoids powerlaw 2.0.0's default alpha cap at 3 (docs/methods.md §7). Quirk: powerlaw
    forces nested=True whenever 'power_law' is a substring of the alternative (TPL), by operator
    precedence, whatever ``nested`` is passed; the returned "nested" records what was used.
    """
    import warnings

    import powerlaw  # function-level: the reference package is needed only by this cross-check (slow import)

    x = _clean_evals(evals, "powerlaw")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(x, xmin=float(xmin), parameter_ranges={"alpha": [1, None]}, verbose=0)
        for alt in alternatives:
            R, p = fit.distribution_compare("power_law", alt)
            out[alt] = {"R": float(R), "p": float(p), "nested": ("power_law" in alt) or (alt in "power_law")}
    return out


def is_heavy_tailed(fit: PowerLawFit, R: float, p: float) -> bool:
    """Heavy-tailed = reliable fit AND PL beats exponential (R > 0, p < P_MAX) AND ALPHA_HT_LO <= alpha <= ALPHA_HT_HI.

    "Heavy-tailed" rests on PL vs exponential (a heavy tail is by definition not exponentially
    bounded), plus the band where WW/HTSR call a layer heavy-tailed (docs/methods.md §6).
    """
    return bool(fit.reliable and np.isfinite(R) and np.isfinite(p) and R > 0 and p < P_MAX
                and ALPHA_HT_LO <= fit.alpha <= ALPHA_HT_HI)
