"""Eigenvalues and singular values of weight matrices, the empirical spectral density (ESD) of claims C3/C4.

Conventions (WeightWatcher's, docs/methods.md §5.1): lambda_i = sigma_i(W)^2, no 1/N normalisation, sorted
ascending; SVDs in float64 on CPU (bf16/fp16/fp32 input is upcast first: torch.linalg does not take bf16).
Input is checked once (:func:`as_matrix`); same-shape matrices are batched.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch


def as_matrix(W, name: str = "W") -> torch.Tensor:
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
        checked[name] = as_matrix(W, name)
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
    return eigenvalues_checked({name: as_matrix(W, name) for name, W in mats.items()}, method, workers=workers)


def eigenvalues_checked(checked: Mapping[str, "torch.Tensor"], method: str, dtype=torch.float64,
                 workers: int | None = None) -> dict[str, np.ndarray]:
    """eigenvalues_batched for matrices already checked by as_matrix; float32 always takes the SVD route."""
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
