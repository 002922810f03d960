"""The spectral monitor, a ``transformers.TrainerCallback`` that works in any TRL trainer: the rank-1 energy
share of ΔW, Hill's α of W and the step-to-step alignment of u1, logged live.

Public API that this project's own runs do not use (their trajectories are analysed after training, from the
trajectory recorder's files); the benchmarks and tests exercise it.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from transformers import TrainerCallback

from .. import checks, fileio, models
from ..analysis import esd, power_law, svd, targets
from ..models import sharding


class SpectralMonitor(TrainerCallback):
    """Log, every ``every`` optimizer steps, three spectral summaries of the target matrices:

    * ``spectral/rank1_energy``: mean over matrices of σ1(ΔW)² / ‖ΔW‖_F², the share of the update's energy
      in its rank-1 part (ΔW = W_t − W_0; 1 means the update is exactly rank 1);
    * ``spectral/hill_alpha``: median over matrices of the fixed-x_min Hill α of W_t's ESD (power_law.hill_alpha:
      no x_min search, so it moves smoothly between steps);
    * ``spectral/u1_cos_prev``: mean |cos(u1(t), u1(t_prev))| of ΔW's top left singular vector between two
      consecutive monitor steps (C4's quantity, online).

    The summary goes into ``state.log_history`` (so it appears in the trainer's logs) and, with
    ``log_path``, one JSON line per monitor step with the per-matrix values.

    Args:
        every (int, default 10): monitoring period in optimizer steps (and the last step).
        log_path (str | Path | None): JSONL file of the per-matrix values.
        base_state (Mapping[str, Tensor] | None): W_0; default: the weights when training begins (pass it
            for a resumed run).

    Cost per monitor step: one top-1 SVD of ΔW (svd.svd_topk) and the singular values of W_t per target
    matrix. Example::

        from rlvr_lowrank.training.monitor import SpectralMonitor
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds,
                              callbacks=[SpectralMonitor(every=10, log_path="spectral.jsonl")])
    """

    def __init__(self, every: int = 10, log_path: str | Path | None = None, base_state: dict | None = None):
        checks.integer(every, "every")
        self.every = every
        self.log_path = Path(log_path) if log_path is not None else None
        self.base = None if base_state is None else self._targets(base_state)
        self.prev_u1: dict[str, torch.Tensor] = {}
        self.seconds = 0.0
        self.records: list[dict] = []

    @staticmethod
    def _targets(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = targets.target_names(state)
        if not names:
            raise ValueError("SpectralMonitor found no target matrices (q/k/v/o/gate/up/down_proj weights) in the "
                             f"model; its parameters start with {list(state)[:3]}")
        # sharding.full_weight: a gathered copy under FSDP2, one matrix at a time (every rank calls this)
        return {n: sharding.full_weight(state[n]).float().cpu().clone() for n in names}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if self.base is None:
            self.base = self._targets(models.effective_state_dict(model))

    @torch.no_grad()
    def measure(self, model, step: int) -> dict:
        t0 = time.perf_counter()
        current = sharding.FullView(models.effective_state_dict(model))  # gathers per matrix under FSDP2
        per_matrix = []
        for name, w0 in self.base.items():
            w = current[name].detach().float().cpu()
            row = {"name": name, "hill_alpha": power_law.hill_alpha(esd.esd(w, dtype=torch.float32))}
            row.update(self._update_stats(name, w - w0))
            per_matrix.append(row)

        def agg(key, fn):
            vals = [r[key] for r in per_matrix if key in r and math.isfinite(r[key])]
            return float(fn(vals)) if vals else float("nan")

        summary = {"step": step, "spectral/rank1_energy": agg("rank1_energy", np.mean),
                   "spectral/hill_alpha": agg("hill_alpha", np.median),
                   "spectral/u1_cos_prev": agg("u1_cos_prev", np.mean)}
        self.seconds += time.perf_counter() - t0
        return {**summary, "per_matrix": per_matrix}

    def _update_stats(self, name: str, dw: torch.Tensor) -> dict:
        fro2 = float((dw * dw).sum())
        if fro2 <= 0:  # no update yet: no direction to measure
            return {}
        U, S, _ = svd.svd_topk(dw, 1)
        row = {"rank1_energy": float(S[0]) ** 2 / fro2}
        u1 = U[:, 0]
        if name in self.prev_u1:
            row["u1_cos_prev"] = abs(float(u1 @ self.prev_u1[name]))
        self.prev_u1[name] = u1
        return row

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every and state.global_step != state.max_steps:
            return
        rec = self.measure(model, state.global_step)
        summary = {k: v for k, v in rec.items() if k != "per_matrix"}
        self.records.append(summary)
        state.log_history.append(summary)
        if self.log_path is not None and sharding.rank() == 0:  # every rank measures (collectives), rank 0 writes
            fileio.append_jsonl(self.log_path, rec)
