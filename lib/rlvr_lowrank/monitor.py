"""A spectral monitor for any transformers / TRL trainer (issue 6, beyond the paper).

The press summary of the paper suggests watching the spectrum as a leading indicator of knowledge loss.
:class:`SpectralMonitor` logs, every ``every`` optimizer steps, for the target matrices of the model
(rank1.target_names: the attention and MLP projections):

* ``spectral/rank1_energy``: mean over matrices of σ1(ΔW)² / ‖ΔW‖_F², the share of the update's energy in
  its rank-1 part (ΔW = W_t − W_0, W_0 captured when training starts; 1 = the update is exactly rank 1);
* ``spectral/hill_alpha``: median over matrices of the fixed-x_min Hill α of W_t's ESD
  (spectra.hill_alpha: no x_min search, so it moves smoothly between steps);
* ``spectral/u1_cos_prev``: mean |cos(u1(t), u1(t_prev))| of ΔW's top left singular vector between two
  consecutive monitor steps (C4's quantity, online).

The summary goes into the trainer's ``state.log_history`` (so it appears in TRL's logs and in
``trainer.state.log_history``) and, with ``log_path``, one JSON line per monitor step with the
per-matrix values. Usage on a plain TRL script::

    from rlvr_lowrank.monitor import SpectralMonitor
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds,
                          callbacks=[SpectralMonitor(every=10, log_path="spectral.jsonl")])

Cost: one top-1 SVD of ΔW (rank1.svd_topk, the checked fast path for large matrices) and the singular
values of W_t per target matrix, every ``every`` steps; ``benchmarks/bench_monitor.py`` measures it.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from transformers import TrainerCallback

from . import io, rank1, spectra


class SpectralMonitor(TrainerCallback):
    """Log rank-1 energy share, Hill α and u1 alignment of the target matrices every ``every`` steps."""

    def __init__(self, every: int = 10, log_path: str | Path | None = None, base_state: dict | None = None):
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        self.log_path = Path(log_path) if log_path is not None else None
        self.base = None if base_state is None else self._targets(base_state)
        self.prev_u1: dict[str, torch.Tensor] = {}
        self.seconds = 0.0
        self.records: list[dict] = []

    @staticmethod
    def _targets(state: dict) -> dict[str, torch.Tensor]:
        names = rank1.target_names(state)
        if not names:
            raise ValueError("SpectralMonitor found no target matrices (q/k/v/o/gate/up/down_proj weights) in the "
                             f"model; its parameters start with {list(state)[:3]}")
        return {n: state[n].detach().float().cpu().clone() for n in names}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.base is None:  # W_0 = the weights training starts from (a resumed run: pass base_state)
            self.base = self._targets(rank1.effective_state_dict(model))

    @torch.no_grad()
    def measure(self, model, step: int) -> dict:
        t0 = time.perf_counter()
        current = rank1.effective_state_dict(model)
        per_matrix = []
        for name, w0 in self.base.items():
            w = current[name].detach().float().cpu()
            dw = w - w0
            fro2 = float((dw * dw).sum())
            row = {"name": name, "hill_alpha": spectra.hill_alpha(spectra.esd(w, dtype=torch.float32))}
            if fro2 > 0:
                U, S, _ = rank1.svd_topk(dw, 1)
                row["rank1_energy"] = float(S[0]) ** 2 / fro2
                u1 = U[:, 0]
                if name in self.prev_u1:
                    row["u1_cos_prev"] = abs(float(u1 @ self.prev_u1[name]))
                self.prev_u1[name] = u1
            per_matrix.append(row)

        def agg(key, fn):
            vals = [r[key] for r in per_matrix if key in r and math.isfinite(r[key])]
            return float(fn(vals)) if vals else float("nan")

        summary = {"step": step, "spectral/rank1_energy": agg("rank1_energy", np.mean),
                   "spectral/hill_alpha": agg("hill_alpha", np.median),
                   "spectral/u1_cos_prev": agg("u1_cos_prev", np.mean)}
        self.seconds += time.perf_counter() - t0
        return {**summary, "per_matrix": per_matrix}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every and state.global_step != state.max_steps:
            return
        rec = self.measure(model, state.global_step)
        summary = {k: v for k, v in rec.items() if k != "per_matrix"}
        self.records.append(summary)
        state.log_history.append(summary)
        if self.log_path is not None:
            io.append_jsonl(self.log_path, rec)
