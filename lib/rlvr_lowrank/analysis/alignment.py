"""Singular-vector alignment over a training trajectory (claim C4; docs/methods.md §8): AlphaRL's sign
alignment, |cos| with the final and the previous step, the random-vector baseline, principal-angle subspace
overlap, and the tidy C4 table of a recorded trajectory.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from scipy.special import gammaln

from .targets import type_and_layer


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
        mtype, layer = type_and_layer(name)
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
