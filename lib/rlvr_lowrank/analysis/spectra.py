"""Spectra of weight matrices: ESDs, power-law fits, heavy-tail decision, MP spikes, alignment (claims C3, C4).

The methodology (definitions, equivalence with the reference packages, thresholds and their reasons)
is written up in docs/methods.md §5-§8. The power-law fit is a vectorised numpy version of the
Clauset-Shalizi-Newman (CSN 2009, §3) KS scan that reproduces, on the same eigenvalues,

* ``mode="ww"``:       WeightWatcher 0.7.7 ``analyze()`` default fit (``pl_package='ww'``, WW_powerlaw.WWFit), and
* ``mode="powerlaw"``: ``powerlaw.Fit(evals, xmin=None, discrete=False, parameter_ranges={'alpha': [1, None]})``
                       of powerlaw 2.0.0,

to floating-point rounding (the tests check |delta alpha| <= 1e-9 against powerlaw and <= 1e-6 against WW).

Conventions (WW's, docs/methods.md §5.1): lambda_i = sigma_i(W)^2, no 1/N normalisation, sorted ascending;
SVDs in float64 on CPU (bf16/fp16/fp32 input is upcast first: torch.linalg does not take bf16).

Public API
----------
esd, eigenvalues_batched, singular_values_batched -- eigenvalues of W^T W / singular values
ks_scan, fit_power_law, hill_alpha, PowerLawFit   -- CSN fit (WW / powerlaw equivalent), fixed-x_min Hill
compare_exponential, compare_with_powerlaw_package, is_heavy_tailed
shuffled, marchenko_pastur_edge, count_spikes, stable_rank, effective_rank, spectral_drift
sign_align, temporal_alignment, random_baseline, subspace_overlap, alignment_table
analyze_model                                     -- one row per target matrix
"""
from __future__ import annotations

import math
import zlib
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
import torch
from scipy.special import erfc, gammaln

from .rank1 import is_target, layer_index, matrix_type, target_names

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
# ESD

def _as_matrix(W, name: str = "W") -> torch.Tensor:
    """A 2-D finite torch tensor (any float dtype, numpy accepted); clear ValueError otherwise."""
    if isinstance(W, np.ndarray):
        W = torch.from_numpy(W)
    if not isinstance(W, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor or numpy array, got {type(W).__name__}")
    if W.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D matrix, got shape {tuple(W.shape)}")
    if W.numel() == 0:
        raise ValueError(f"{name}: empty matrix, shape {tuple(W.shape)}")
    W = W.detach()
    if not W.is_floating_point():
        W = W.double()
    if not bool(torch.isfinite(W).all()):
        raise ValueError(f"{name}: contains NaN or Inf")
    return W


def singular_values_batched(mats: Mapping[str, "torch.Tensor"], dtype=torch.float64,
                            max_batch_bytes: int = 1 << 28) -> dict[str, np.ndarray]:
    """{name: singular values (descending, float64 numpy)} with one ``svdvals`` call per shape.

    Same-shape matrices are stacked into (B, m, n) and sent to ``torch.linalg.svdvals`` together,
    in chunks of at most ``max_batch_bytes``. Input of any float dtype is upcast to ``dtype`` first
    (bf16/fp16 are not accepted by torch.linalg). Default float64: LAPACK gesdd as WW's
    ``svd_method='accurate'`` (scipy gesdd). float32 is ~2x faster; its values are upcast to float64 after
    the SVD (the small eigenvalues then carry ~1e-7 relative noise).
    """
    by_shape: dict[tuple, list[str]] = {}
    checked = {}
    for name, W in mats.items():
        checked[name] = _as_matrix(W, name)
        by_shape.setdefault(tuple(checked[name].shape), []).append(name)
    out = {}
    bytes_per = torch.finfo(dtype).bits // 8
    for shape, names in by_shape.items():
        chunk = max(1, max_batch_bytes // (shape[0] * shape[1] * bytes_per))
        for i in range(0, len(names), chunk):
            group = names[i:i + chunk]
            stack = torch.stack([checked[n].to(device="cpu", dtype=dtype) for n in group])
            sv = torch.linalg.svdvals(stack).double().numpy()
            for n, s in zip(group, sv):
                out[n] = s
    return out


def eigenvalues_batched(mats: Mapping[str, "torch.Tensor"], method: str = "gram",
                        workers: int | None = None) -> dict[str, np.ndarray]:
    """{name: lambda = sigma^2 of W (ascending, float64 numpy, min(m, n) values)}.

    ``method="gram"`` (default): per matrix, the float64 Gram matrix of the smaller side (W^T W or W W^T,
    one BLAS-3 product) and ``numpy.linalg.eigvalsh`` (LAPACK syevd, values only), which skips the
    bidiagonalisation a singular-value solver does. Matrices are spread over ``workers`` threads
    (default torch.get_num_threads()) with single-threaded BLAS in each (threadpoolctl): for matrices of
    this size that beats one multi-threaded call at a time. Accuracy: the eigenvalues of the float64 Gram
    carry an absolute error ~ n*eps*lambda_max (~1e-13 relative to lambda_max), far below NOISE_RTOL and
    WW's 1e-5 threshold; the fitted alpha / x_min / D equal the SVD route's and WeightWatcher's to
    |delta alpha| <= 1e-6 (tests/test_spectra.py). Rounding can make a numerically-zero eigenvalue slightly
    negative; those are set to 0. benchmarks/bench_spectra.py times it against the SVD solvers.
    ``method="svd"``: squares of singular_values_batched (float64 gesdd, WW's svd_method='accurate').
    """
    return _eigenvalues({name: _as_matrix(W, name) for name, W in mats.items()}, method, workers=workers)


def _eigenvalues(checked: Mapping[str, "torch.Tensor"], method: str, dtype=torch.float64,
                 workers: int | None = None) -> dict[str, np.ndarray]:
    """eigenvalues_batched for matrices already checked by _as_matrix; float32 always takes the SVD route."""
    if method not in ("gram", "svd"):
        raise ValueError(f"method must be 'gram' or 'svd', got {method!r}")
    if method == "svd" or dtype != torch.float64:
        return {n: np.sort(s.astype(np.float64) ** 2) for n, s in singular_values_batched(checked, dtype=dtype).items()}
    return _gram_eigenvalues(checked, workers)


def _gram_eigenvalues(checked: Mapping[str, "torch.Tensor"], workers: int | None = None) -> dict[str, np.ndarray]:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    def one(W: torch.Tensor) -> np.ndarray:
        X = W.detach().to(device="cpu", dtype=torch.float64).numpy()
        G = X.T @ X if X.shape[0] >= X.shape[1] else X @ X.T
        return np.maximum(np.linalg.eigvalsh(G), 0.0)   # ascending; numerical zeros clipped at 0

    names = list(checked)
    workers = max(1, workers or torch.get_num_threads())
    if workers == 1 or len(names) == 1:
        return {n: one(checked[n]) for n in names}
    with threadpool_limits(limits=1), ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(one, (checked[n] for n in names))))


def esd(W, dtype=torch.float64) -> np.ndarray:
    """Eigenvalues of W^T W, lambda = sigma^2, ascending, float64 (WW convention, docs/methods.md §5.1)."""
    sv = singular_values_batched({"W": W}, dtype=dtype)["W"]
    return np.sort(sv.astype(np.float64) ** 2)


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


# ----------------------------------------------------------------------------------------------------
# Controls and scalar spectral metrics (docs/methods.md §6)

def shuffled(W, seed: int = 0) -> torch.Tensor:
    """Entry-shuffled copy of W (same dtype/shape), fixed seed: keeps the entry distribution, destroys
    correlations (docs/methods.md §6). WW's own randomize is unseeded; this one is reproducible."""
    W = _as_matrix(W)
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(W.numel(), generator=g)
    return W.reshape(-1)[perm.to(W.device)].reshape(W.shape)


def marchenko_pastur_edge(W) -> float:
    """Upper MP bulk edge lambda+ = N s^2 (1 + Q^-1/2)^2 for unnormalised eigenvalues (docs/methods.md §6).

    s^2 = ||W||_F^2/(N M), the matrix's own mean squared entry; spikes inflate it, so the edge errs high
    (conservative spike counts). N = max dim, M = min dim, Q = N/M.
    """
    W = _as_matrix(W).double()
    N, M = max(W.shape), min(W.shape)
    return _mp_edge(float((W ** 2).sum()), N, M)


def _mp_edge(frob2: float, N: int, M: int) -> float:
    s2 = frob2 / (N * M)
    return N * s2 * (1.0 + (M / N) ** 0.5) ** 2


def count_spikes(evals, edge: float) -> int:
    """#{lambda > edge}: eigenvalues outside the MP bulk."""
    return int(np.count_nonzero(np.asarray(evals, dtype=np.float64) > edge))


def _stable_rank_sv(sv: np.ndarray) -> float:
    lam = sv.astype(np.float64) ** 2
    return float(lam.sum() / lam.max()) if lam.max() > 0 else math.nan


def _effective_rank_sv(sv: np.ndarray) -> float:
    s = sv.astype(np.float64)
    if s.sum() <= 0:
        return math.nan
    q = s[s > 0] / s.sum()
    return float(np.exp(-np.sum(q * np.log(q))))


def stable_rank(W) -> float:
    """sum(lambda)/lambda_max = ||W||_F^2 / ||W||_2^2 (WW's stable_rank); nan for W = 0."""
    return _stable_rank_sv(singular_values_batched({"W": W})["W"])


def effective_rank(W) -> float:
    """Roy-Vetterli effective rank exp(H(q)), q_i = sigma_i / sum sigma (Roy & Vetterli 2007); nan for W = 0."""
    return _effective_rank_sv(singular_values_batched({"W": W})["W"])


def spectral_drift(W0, Wt, k: int | None = 8) -> float:
    """Relative change of the top-k singular values, mean_{i<=k} |s'_i - s_i| / s_i (our operational form of
    the "spectral drift" of "The Path Not Taken", arXiv 2511.08567).

    ``k=None`` gives the whole-spectrum version ||s' - s||_2 / ||s||_2. Zero reference values are skipped.
    """
    sv = singular_values_batched({"W0": W0, "Wt": Wt})
    s0, st = sv["W0"], sv["Wt"]
    if s0.shape != st.shape:
        raise ValueError(f"W0 and Wt have different numbers of singular values: {s0.shape} vs {st.shape}")
    if k is None:
        return float(np.linalg.norm(st - s0) / np.linalg.norm(s0))
    s0, st = s0[:k], st[:k]
    nz = s0 > 0
    return float(np.mean(np.abs(st[nz] - s0[nz]) / s0[nz]))


# ----------------------------------------------------------------------------------------------------
# Singular-vector alignment (claim C4; docs/methods.md §8)

def _np2(x, name: str) -> np.ndarray:
    a = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D array, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or Inf")
    return a


def _unit_rows(V: np.ndarray, name: str) -> np.ndarray:
    norms = np.linalg.norm(V, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"{name}: zero vector at rows {np.flatnonzero(norms[:, 0] == 0).tolist()}")
    return V / norms


def sign_align(vectors, return_signs: bool = False):
    """AlphaRL's sign alignment of a singular-vector trajectory: walk from the last step to the first and
    flip v(t) when cos(v(t), v(t+1)) < 0, so the final step's sign is the reference.

    Input [T, d]; returns an aligned copy, and with ``return_signs`` also the sign applied to each step
    ([T] of ±1: the extrapolation flips the paired v1 together with u1)."""
    V = _np2(vectors, "vectors").copy()
    signs = np.ones(len(V))
    for t in range(len(V) - 2, -1, -1):
        if V[t] @ V[t + 1] < 0:
            V[t] = -V[t]
            signs[t] = -1.0
    return (V, signs) if return_signs else V


def temporal_alignment(vectors) -> tuple[np.ndarray, np.ndarray]:
    """(cos_final, cos_prev), each [T]: |cos(v(t), v(T))| and |cos(v(t), v(t-1))| (nan at t=0), docs/methods.md §8.

    Absolute cosines, so the singular-vector sign ambiguity cannot matter.
    """
    V = _unit_rows(_np2(vectors, "vectors"), "vectors")
    cos_final = np.abs(V @ V[-1])
    cos_prev = np.concatenate([[np.nan], np.abs(np.sum(V[1:] * V[:-1], axis=1))])
    return cos_final, cos_prev


def random_baseline(d: int) -> float:
    """E|cos| of two independent uniform unit vectors in R^d = Gamma(d/2) / (sqrt(pi) Gamma((d+1)/2)).

    (The first coordinate of a uniform point on S^{d-1}; d=2 gives 2/pi, d=3 gives 1/2; ~ sqrt(2/(pi d)).)
    """
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    return float(np.exp(gammaln(d / 2) - gammaln((d + 1) / 2)) / math.sqrt(math.pi))


def _orth(A: np.ndarray) -> np.ndarray:
    """Orthonormal basis of range(A) via SVD (as scipy.linalg.orth, rank-revealing)."""
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    tol = max(A.shape) * np.finfo(float).eps * (s[0] if len(s) else 0.0)
    return U[:, s > tol]


def subspace_overlap(A, B) -> tuple[float, np.ndarray]:
    """(mean cos^2 theta, theta) for the principal angles between range(A) and range(B) (docs/methods.md §8).

    Columns need not be orthonormal. Overlap = ||Q_A^T Q_B||_F^2 / min(k_A, k_B) in [0, 1]; chance level for
    random k-dim subspaces of R^m is k/m. Angles in radians, largest first, like scipy.linalg.subspace_angles;
    angles with cos^2 >= 1/2 come from the sines (accurate for small angles, as scipy does).
    """
    QA, QB = _orth(_np2(A, "A")), _orth(_np2(B, "B"))
    if QA.shape[0] != QB.shape[0]:
        raise ValueError(f"A and B live in different spaces: {QA.shape[0]} vs {QB.shape[0]} rows")
    if QA.shape[1] == 0 or QB.shape[1] == 0:
        raise ValueError("A or B has rank 0")
    if QA.shape[1] < QB.shape[1]:
        QA, QB = QB, QA
    C = QA.T @ QB
    cos = np.clip(np.linalg.svd(C, compute_uv=False), 0.0, 1.0)       # descending
    sin = np.clip(np.linalg.svd(QB - QA @ C, compute_uv=False), 0.0, 1.0)  # descending
    cos_asc = cos[::-1]                                                 # largest angle first
    theta = np.where(cos_asc ** 2 >= 0.5, np.arcsin(sin[: len(cos)]), np.arccos(cos_asc))
    return float(np.mean(cos ** 2)), theta


def _type_and_layer(name: str) -> tuple[str, int]:
    for cand in (name, name + ".weight"):
        if is_target(cand):
            return matrix_type(cand), layer_index(cand)
    return "other", layer_index(name)


def alignment_table(trajectory: Mapping[int, Mapping[str, tuple]], component: int = 0) -> pd.DataFrame:
    """Tidy C4 table from the trajectory recorder's format {step: {name: (U_k [m,k], S_k [k], V_k [n,k])}}.

    For each matrix and side (u = left vectors, v = right vectors): sign-aligned singular vector
    ``component`` (0 = the rank-1 direction) over the sorted steps at which the matrix was recorded;
    cos_final = |cos(x(t), x(T))|, cos_prev = |cos(x(t), x(t-1))|, baseline = random_baseline(d)
    (docs/methods.md §8). The whole recorded k-subspace is compared as well: overlap_final / overlap_prev
    = mean cos^2 of the principal angles, with chance level overlap_baseline = k/d.
    """
    rows = []
    names = sorted({n for factors in trajectory.values() for n in factors})
    for name in names:
        steps = sorted(s for s in trajectory if name in trajectory[s])
        mtype, layer = _type_and_layer(name)
        for side, idx in (("u", 0), ("v", 2)):
            mats = [_np2(trajectory[s][name][idx], f"{name} step {s} {side}") for s in steps]
            d, k = mats[-1].shape
            if component >= k:
                raise ValueError(f"{name}: component {component} but only k={k} vectors recorded")
            vecs = sign_align(np.stack([m[:, component] for m in mats]))
            cos_final, cos_prev = temporal_alignment(vecs)
            base = random_baseline(d)
            for t, s in enumerate(steps):
                ov_final = subspace_overlap(mats[t], mats[-1])[0]
                ov_prev = subspace_overlap(mats[t], mats[t - 1])[0] if t > 0 else math.nan
                rows.append(dict(name=name, type=mtype, layer=layer, step=s, side=side,
                                 cos_final=float(cos_final[t]), cos_prev=float(cos_prev[t]), baseline=base,
                                 overlap_final=ov_final, overlap_prev=ov_prev, overlap_baseline=k / d))
    cols = ["name", "type", "layer", "step", "side", "cos_final", "cos_prev", "baseline",
            "overlap_final", "overlap_prev", "overlap_baseline"]
    return pd.DataFrame(rows, columns=cols)


# ----------------------------------------------------------------------------------------------------
# Whole-model analysis (claim C3; docs/methods.md §5-§6)

def _state_dict(model_or_sd) -> dict:
    if isinstance(model_or_sd, torch.nn.Module):
        return dict(model_or_sd.state_dict())
    if isinstance(model_or_sd, Mapping):
        return dict(model_or_sd)
    raise ValueError(f"expected an nn.Module or a dict of tensors, got {type(model_or_sd).__name__}")


def _fit_row(evals: np.ndarray, mode: str, min_tail: int) -> dict:
    """alpha, xmin, D, sigma, n_tail, n_evals, reliable, reason, R, p, heavy_tailed, alpha_hill for one ESD."""
    if mode == "powerlaw" and len(evals):
        evals = evals[evals > NOISE_RTOL * evals.max()]   # drop numerical zeros (relative floor, see NOISE_RTOL)
    fit = fit_power_law(evals, mode=mode, min_tail=min_tail)
    R, p = compare_exponential(evals, fit)
    row = dict(fit._asdict())
    row.update(R=R, p=p, heavy_tailed=is_heavy_tailed(fit, R, p), alpha_hill=hill_alpha(evals))
    return row


def analyze_model(model_or_state_dict, include_delta_from=None, shuffled_control: bool = False, mode: str = "ww",
                  names: list[str] | None = None, seed: int = 0, dtype=torch.float64,
                  min_tail: int = MIN_TAIL, method: str = "gram") -> pd.DataFrame:
    """One row per target matrix (rank1.target_names, or ``names``): heavy-tail fit and spectral metrics.

    Columns: name, layer, type, shape, rows, cols, n_evals, alpha, xmin, D, sigma, n_tail, R, p,
    heavy_tailed, reliable, reason, alpha_hill, lambda_max, stable_rank, effective_rank, mp_edge, spikes.
    mode="ww" reproduces WW 0.7.7 analyze(svd_method='accurate') alpha/xmin/D/sigma/num_pl_spikes per layer.

    * ``shuffled_control=True`` adds the same fit for an entry-shuffled copy (seed from ``seed`` and the
      name): ``*_shuffled`` columns, spikes_shuffled and lambda_max_ratio = lambda_max / lambda_max(shuffled)
      (docs/methods.md §6: heavy tails due to correlations when alpha + 1 < alpha_shuffled or ratio > 1.5).
    * ``include_delta_from=base`` adds the fit of dW = W - W_base (computed in float64): ``*_delta``
      columns, rel_update = ||dW||_F/||W_base||_F, stable/effective rank of dW. The dW eigenvalues are
      divided by their mean before the fit, so WW's absolute 1e-5 threshold cannot swallow a small update
      (alpha, D and ranks are scale-invariant; docs/methods.md §6).
    Eigenvalues: ``method="gram"`` (default, float64 Gram + eigvalsh, matrices spread over threads) or
    ``"svd"`` (float64 gesdd as WW, batched by shape); see eigenvalues_batched. ``dtype=torch.float32``
    forces float32 singular values (the SVD route; faster, ~1e-7 relative noise on small eigenvalues).
    """
    sd = _state_dict(model_or_state_dict)
    names = target_names(sd) if names is None else list(names)
    missing = [n for n in names if n not in sd]
    if missing:
        raise ValueError(f"not in the state dict: {missing[:5]}")
    if not names:
        raise ValueError("no target matrices (q/k/v/o/gate/up/down_proj .weight, 2-D) in the state dict")
    mats = {n: _as_matrix(sd[n], n) for n in names}
    todo, base_norms = dict(mats), {}
    if shuffled_control:
        for n in names:
            todo[n + "#shuffled"] = shuffled(mats[n], seed=seed ^ zlib.crc32(n.encode()))
    if include_delta_from is not None:
        base = _state_dict(include_delta_from)
        for n in names:
            if n not in base:
                raise ValueError(f"{n} missing from the base model given as include_delta_from")
            Wb = _as_matrix(base[n], n + " (base)")
            if Wb.shape != mats[n].shape:
                raise ValueError(f"{n}: shape {tuple(mats[n].shape)} vs base {tuple(Wb.shape)}")
            todo[n + "#delta"] = mats[n].double() - Wb.double()      # upcast first: bf16 differences round updates away
            base_norms[n] = float(torch.linalg.norm(Wb.double()))
    evals = _eigenvalues(todo, method, dtype=dtype)   # todo holds matrices checked by _as_matrix already
    sv = {k: np.sqrt(v)[::-1] for k, v in evals.items()}   # descending singular values for the rank metrics

    rows = []
    for n in names:
        W = mats[n]
        s = sv[n]
        lam = evals[n]
        m, c = W.shape
        mtype, layer = _type_and_layer(n)
        edge = _mp_edge(float(lam.sum()), max(m, c), min(m, c))
        row = dict(name=n, layer=layer, type=mtype, shape=f"{m}x{c}", rows=m, cols=c)
        row.update(_fit_row(lam, mode, min_tail))
        row.update(lambda_max=float(lam[-1]), stable_rank=_stable_rank_sv(s), effective_rank=_effective_rank_sv(s),
                   mp_edge=edge, spikes=count_spikes(lam, edge))
        if shuffled_control:
            lam_s = evals[n + "#shuffled"]
            r = _fit_row(lam_s, mode, min_tail)
            row.update({f"{k}_shuffled": r[k] for k in ("alpha", "xmin", "D", "n_tail", "reliable", "R", "p",
                                                         "heavy_tailed", "alpha_hill")})
            row.update(spikes_shuffled=count_spikes(lam_s, edge),
                       lambda_max_ratio=float(lam[-1] / lam_s[-1]) if lam_s[-1] > 0 else math.nan)
        if include_delta_from is not None:
            s_delta = sv[n + "#delta"]
            lam_d = evals[n + "#delta"]
            mean = lam_d.mean()
            r = _fit_row(lam_d / mean if mean > 0 else lam_d, mode, min_tail)
            row.update({f"{k}_delta": r[k] for k in ("alpha", "xmin", "D", "n_tail", "reliable", "reason", "R",
                                                      "p", "heavy_tailed", "alpha_hill")})
            base_norm = base_norms[n]
            row.update(rel_update=float(np.sqrt(lam_d.sum())) / base_norm if base_norm > 0 else math.nan,
                       stable_rank_delta=_stable_rank_sv(s_delta),
                       effective_rank_delta=_effective_rank_sv(s_delta))
        rows.append(row)
    return pd.DataFrame(rows)
