"""Rank-1 dynamics beyond the paper: AlphaRL's linear dynamics and rank-1 extrapolation, and RELEX's.

* AlphaRL (arXiv 2510.00553) "rank-1 linear dynamics": per matrix, the sign-aligned u1(t) of
  ΔW_t = W_t − W_0, regressed on test accuracy with a 1-component PLS (sklearn's ``PLSRegression``,
  scale=True, as in AlphaRL's AlphaPLS.py), then a linear map score → accuracy; in-sample R² and, because
  T ≪ d makes the fit easy to overfit, leave-one-out R² (docs/methods.md).
* AlphaRL extrapolation: from an early window, extrapolate a(t) = σ1(t)·u1(t) and rebuild
  W_pred = W_0 + â v1ᵀ with v1 from the window's last snapshot.
  **Our choice:** AlphaRL inverts the PLS map at a target accuracy y*; our runs evaluate accuracy only
  every ``eval.every`` steps (a handful of points per run), so an early window holds one or two accuracy
  points and that inversion is ill-posed. We regress a(t) on the *step* instead (ordinary least squares
  per coordinate) and extrapolate to the target step. If accuracy is linear in step over the window
  (AlphaRL's premise) the two coincide.
* RELEX (arXiv 2605.21468): per tensor, the time × parameter matrix of flattened updates
  M = [vec(ΔW_1); …; vec(ΔW_T)] has a rank-1 structure ΔW_t ≈ c_t·v1; v1 and c_t by the Gram trick
  (eigh of M Mᵀ), OLS c_t = a·t + b, then θ̂(t*) = θ_0 + (a t* + b) v1.
  **Our choice:** the trajectory recorder keeps the top-k factors of each ΔW_t (not full checkpoints),
  so M is built from the rank-k reconstructions U_k S_k V_kᵀ; C0 shows rank 1 already carries the whole
  gain at this scale, so k = 2 loses nothing the extrapolation could use. Only target matrices move;
  every other tensor stays at base (the C0 convention), and time is the step number, not the checkpoint
  index (our snapshots are evenly spaced, so this only rescales a).
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .alignment import sign_align
from .targets import layer_index, matrix_type


def pls_r2(X: np.ndarray, y: Sequence[float]) -> dict:
    """AlphaRL's linear dynamics: 1-component PLS of X [T, d] against y [T] (sklearn, scale=True), then OLS score → y.

    Returns in-sample R² and leave-one-out R² (each held-out point predicted by a PLS + OLS refit on
    the others; R²_LOO = 1 − PRESS / Σ(y − ȳ)²). NaN when y is constant or T < 3.
    """
    from sklearn.cross_decomposition import PLSRegression
    from sklearn.linear_model import LinearRegression

    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    T = len(y)
    ss = float(((y - y.mean()) ** 2).sum())
    if T < 3 or ss == 0:
        return {"r2": float("nan"), "r2_loo": float("nan"), "T": T}

    def fit(Xa, ya):
        pls = PLSRegression(n_components=1, scale=True).fit(Xa, ya)
        lin = LinearRegression().fit(pls.transform(Xa), ya)
        return pls, lin

    pls, lin = fit(X, y)
    pred = lin.predict(pls.transform(X))
    r2 = 1 - float(((y - pred) ** 2).sum()) / ss
    press = 0.0
    for i in range(T):
        keep = np.arange(T) != i
        if np.ptp(y[keep]) == 0:
            return {"r2": r2, "r2_loo": float("nan"), "T": T}
        pls_i, lin_i = fit(X[keep], y[keep])
        press += float((y[i] - lin_i.predict(pls_i.transform(X[i:i + 1]))[0]) ** 2)
    return {"r2": r2, "r2_loo": 1 - press / ss, "T": T}


def linear_dynamics(traj, evals: "pd.DataFrame", metric: str = "test_acc") -> "pd.DataFrame":
    """Per target matrix: PLS R² (in-sample, LOO) of the sign-aligned u1(t) against ``metric`` at the
    steps where both a trajectory snapshot and an evaluation exist (ΔW_0 = 0 has no u1: step 0 dropped)."""
    acc = evals.set_index("step")[metric]
    steps = [int(s) for s in traj.steps if s > 0 and int(s) in acc.index]
    idx = [int(np.flatnonzero(traj.steps == s)[0]) for s in steps]
    y = acc.loc[steps].to_numpy(dtype=float)
    rows = []
    for name in traj.names:
        X, _ = sign_align(traj.U[name][idx, :, 0], return_signs=True)
        rows.append({"name": name, "type": matrix_type(name), "layer": layer_index(name), **pls_r2(X, y)})
    return pd.DataFrame(rows)


def trajectory_rank1(deltas: np.ndarray) -> dict:
    """RELEX (arXiv 2605.21468, §3.1): rank-1 structure of a trajectory M = [vec(ΔW_1); …; vec(ΔW_T)] ∈ R^{T×d}.

    Gram trick (T ≪ d): eigh(M Mᵀ) → (λ_i, e_i); v1 = Mᵀ e1 / σ1, c_t = σ1·e1[t], explained variance
    σ1² / Σσ_i². The sign is fixed so that the last coefficient is ≥ 0.
    """
    M = torch.as_tensor(np.asarray(deltas), dtype=torch.float64)
    G = M @ M.T
    lam, E = torch.linalg.eigh(G)  # ascending
    lam = lam.clamp_min(0)
    sigma1 = float(lam[-1].sqrt())
    if sigma1 == 0:
        return {"v1": np.zeros(M.shape[1]), "c": np.zeros(M.shape[0]), "explained_var": 0.0}
    e1 = E[:, -1]
    if float(e1[-1]) < 0:
        e1 = -e1
    v1 = (M.T @ e1) / sigma1
    return {"v1": v1.numpy(), "c": (sigma1 * e1).numpy(), "explained_var": float(lam[-1] / lam.sum())}


def linear_fit(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slope and intercept of y [T, ...] against t [T] (column-wise)."""
    A = np.stack([t, np.ones_like(t)], axis=1).astype(np.float64)
    coef, *_ = np.linalg.lstsq(A, y.reshape(len(t), -1), rcond=None)
    return coef[0].reshape(y.shape[1:]), coef[1].reshape(y.shape[1:])


def window_indices(traj, window_end: int) -> np.ndarray:
    """Trajectory snapshots with 0 < step ≤ window_end (ΔW_0 = 0 carries no direction); at least two."""
    idx = np.flatnonzero((traj.steps > 0) & (traj.steps <= window_end))
    if len(idx) < 2:  # a line needs two points; more make the fit an actual fit
        raise ValueError(f"extrapolation needs >= 2 trajectory snapshots in (0, {window_end}], got {len(idx)}; "
                         f"recorded steps: {traj.steps.tolist()}")
    return idx


def extrapolate_relex(traj, window_end: int, target_step: int) -> dict[str, torch.Tensor]:
    """RELEX-style: per target matrix, ΔŴ(target) = (a·t* + b) v1 from the window's trajectory rank-1."""
    idx = window_indices(traj, window_end)
    t = traj.steps[idx].astype(np.float64)
    out = {}
    for name in traj.names:
        U, S, V = traj.U[name][idx], traj.S[name][idx], traj.V[name][idx]
        recon = np.einsum("tmk,tk,tnk->tmn", U.astype(np.float64), S.astype(np.float64), V.astype(np.float64))
        r = trajectory_rank1(recon.reshape(len(idx), -1))
        a, b = linear_fit(t, r["c"])
        out[name] = torch.from_numpy((float(a) * target_step + float(b)) * r["v1"].reshape(recon.shape[1:])).float()
    return out


def extrapolate_alpharl(traj, window_end: int, target_step: int) -> dict[str, torch.Tensor]:
    """AlphaRL-style (with the step as regression target, see module docstring): a(t) = σ1(t)u1(t)
    sign-aligned over the window, OLS per coordinate in t, â(t*) v1ᵀ with v1 of the window's last
    snapshot (sign-matched to its u1)."""
    idx = window_indices(traj, window_end)
    t = traj.steps[idx].astype(np.float64)
    out = {}
    for name in traj.names:
        u, signs = sign_align(traj.U[name][idx, :, 0], return_signs=True)
        a_t = u * traj.S[name][idx, 0:1].astype(np.float64)
        slope, icpt = linear_fit(t, a_t)
        a_hat = slope * target_step + icpt
        v1 = traj.V[name][idx[-1], :, 0].astype(np.float64) * signs[-1]
        out[name] = torch.from_numpy(np.outer(a_hat, v1)).float()
    return out


def build_model_from_deltas(base_model: torch.nn.Module, deltas: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """A new model = deepcopy(base) with W = W0 + ΔW for the given target matrices (others stay at base)."""
    new = copy.deepcopy(base_model)
    with torch.no_grad():
        for name, d in deltas.items():
            p = new.get_parameter(name)
            if tuple(p.shape) != tuple(d.shape):
                raise ValueError(f"{name}: extrapolated update has shape {tuple(d.shape)}, the model {tuple(p.shape)}")
            if not torch.isfinite(d).all():
                raise ValueError(f"{name}: extrapolated update has NaN/Inf")
            p.add_(d.to(p.dtype))
    return new
