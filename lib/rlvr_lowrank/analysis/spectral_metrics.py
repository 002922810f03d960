"""Controls and scalar spectral metrics of one matrix (docs/methods.md §6): the entry-shuffled control, the
Marchenko-Pastur bulk edge and the spikes above it, stable and effective rank, spectral drift.

The ``*_sv`` and :func:`mp_edge` forms take singular values or norms already computed, so that a whole-model
table (``spectra.analyze_model``) takes one eigendecomposition per matrix.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .esd import as_matrix, singular_values_batched


def shuffled(W, seed: int = 0) -> torch.Tensor:
    """Entry-shuffled copy of W (same dtype/shape), fixed seed: keeps the entry distribution, destroys
    correlations (docs/methods.md §6). WW's own randomize is unseeded; this one is reproducible."""
    W = as_matrix(W)
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(W.numel(), generator=g)
    return W.reshape(-1)[perm.to(W.device)].reshape(W.shape)


def marchenko_pastur_edge(W) -> float:
    """Upper MP bulk edge lambda+ = N s^2 (1 + Q^-1/2)^2 for unnormalised eigenvalues (docs/methods.md §6).

    s^2 = ||W||_F^2/(N M), the matrix's own mean squared entry; spikes inflate it, so the edge errs high
    (conservative spike counts). N = max dim, M = min dim, Q = N/M.
    """
    W = as_matrix(W).double()
    N, M = max(W.shape), min(W.shape)
    return mp_edge(float((W ** 2).sum()), N, M)


def mp_edge(frob2: float, N: int, M: int) -> float:
    s2 = frob2 / (N * M)
    return N * s2 * (1.0 + (M / N) ** 0.5) ** 2


def count_spikes(evals, edge: float) -> int:
    """#{lambda > edge}: eigenvalues outside the MP bulk."""
    return int(np.count_nonzero(np.asarray(evals, dtype=np.float64) > edge))


def stable_rank_sv(sv: np.ndarray) -> float:
    lam = sv.astype(np.float64) ** 2
    return float(lam.sum() / lam.max()) if lam.max() > 0 else math.nan


def effective_rank_sv(sv: np.ndarray) -> float:
    s = sv.astype(np.float64)
    if s.sum() <= 0:
        return math.nan
    q = s[s > 0] / s.sum()
    return float(np.exp(-np.sum(q * np.log(q))))


def stable_rank(W) -> float:
    """sum(lambda)/lambda_max = ||W||_F^2 / ||W||_2^2 (WW's stable_rank); nan for W = 0."""
    return stable_rank_sv(singular_values_batched({"W": W})["W"])


def effective_rank(W) -> float:
    """Roy-Vetterli effective rank exp(H(q)), q_i = sigma_i / sum sigma (Roy & Vetterli 2007); nan for W = 0."""
    return effective_rank_sv(singular_values_batched({"W": W})["W"])


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
