"""The whole-model spectral table (claim C3; docs/methods.md §5-§6): one row per target matrix with the
heavy-tail fit of its ESD, the shuffled and ΔW controls, and its scalar spectral metrics.

The parts, one job each: ``esd`` (eigenvalues and singular values), ``power_law`` (the CSN / WeightWatcher /
powerlaw-equivalent fit, Hill's alpha, the heavy-tail decision), ``spectral_metrics`` (shuffled control,
Marchenko-Pastur edge and spikes, stable and effective rank, drift) and ``alignment`` (singular vectors over
a trajectory, claim C4).
"""
from __future__ import annotations

import math
import zlib
from typing import Mapping

import numpy as np
import pandas as pd
import torch

from . import esd as _esd
from .esd import as_matrix, eigenvalues_checked
from .power_law import MIN_TAIL, NOISE_RTOL, compare_exponential, fit_power_law, hill_alpha, is_heavy_tailed
from .spectral_metrics import count_spikes, effective_rank_sv, mp_edge, shuffled, stable_rank_sv
from .targets import target_names, type_and_layer

# Not used here: notebook 04 reads it as spectra.esd (it lives in analysis.esd).
esd = _esd.esd


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
    """One row per target matrix (targets.target_names, or ``names``): heavy-tail fit and spectral metrics.

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
    mats = {n: as_matrix(sd[n], n) for n in names}
    todo, base_norms = dict(mats), {}
    if shuffled_control:
        for n in names:
            todo[n + "#shuffled"] = shuffled(mats[n], seed=seed ^ zlib.crc32(n.encode()))
    if include_delta_from is not None:
        base = _state_dict(include_delta_from)
        for n in names:
            if n not in base:
                raise ValueError(f"{n} missing from the base model given as include_delta_from")
            Wb = as_matrix(base[n], n + " (base)")
            if Wb.shape != mats[n].shape:
                raise ValueError(f"{n}: shape {tuple(mats[n].shape)} vs base {tuple(Wb.shape)}")
            todo[n + "#delta"] = mats[n].double() - Wb.double()      # upcast first: bf16 differences round updates away
            base_norms[n] = float(torch.linalg.norm(Wb.double()))
    evals = eigenvalues_checked(todo, method, dtype=dtype)   # todo holds matrices checked by as_matrix already
    sv = {k: np.sqrt(v)[::-1] for k, v in evals.items()}   # descending singular values for the rank metrics

    rows = []
    for n in names:
        W = mats[n]
        s = sv[n]
        lam = evals[n]
        m, c = W.shape
        mtype, layer = type_and_layer(n)
        edge = mp_edge(float(lam.sum()), max(m, c), min(m, c))
        row = dict(name=n, layer=layer, type=mtype, shape=f"{m}x{c}", rows=m, cols=c)
        row.update(_fit_row(lam, mode, min_tail))
        row.update(lambda_max=float(lam[-1]), stable_rank=stable_rank_sv(s), effective_rank=effective_rank_sv(s),
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
                       stable_rank_delta=stable_rank_sv(s_delta),
                       effective_rank_delta=effective_rank_sv(s_delta))
        rows.append(row)
    return pd.DataFrame(rows)
