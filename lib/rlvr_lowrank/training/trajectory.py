"""The trajectory recorder, a ``transformers.TrainerCallback`` that works in any TRL trainer: the top-k factors
of ΔW_t = W_t − W_0 of every target matrix every N optimizer steps (what claim C4 and the linear dynamics read).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import torch
from transformers import TrainerCallback

from .. import fileio, models
from ..analysis import svd, targets
from ..models import sharding

_FACTOR_DTYPES = {"float16": torch.float16, "float32": torch.float32}


@torch.no_grad()
def snapshot(state: Mapping[str, torch.Tensor], base_state: Mapping[str, torch.Tensor], k: int = 2,
             factor_dtype: str = "float16") -> dict[str, torch.Tensor]:
    """The tensors the trajectory recorder stores for one step, per target matrix ``<name>``:

    ``<name>|U`` [m, k] and ``<name>|V`` [n, k]: the top-k singular vectors of ΔW_t = W_t − W_0 (exact SVD,
    sign fixed by svd.canonical_sign; stored in ``factor_dtype``), ``<name>|S`` [k]: its singular
    values, ``<name>|Wsv`` [min(m, n)]: every singular value of W_t (float32, for heavy-tail tracking),
    ``<name>|dF`` [1]: ‖ΔW_t‖_F (from all singular values of ΔW_t; with Wsv it gives ‖ΔW_t‖/‖W_t‖, on which
    claims.null_arm matches the random-reward arm to RL).

    Why float16 factors: the alignment statistics are cosines between unit vectors, accurate to ~1e-3 in
    float16, far below the effects measured; the files stay at ~1.5% of a float32 checkpoint of the
    tiny model with k = 2.
    """
    out = {}
    for name in targets.target_names(base_state):
        w = state[name].detach().float().cpu()
        u, s, vh = torch.linalg.svd(w - base_state[name].float(), full_matrices=False)  # exact: matrices are small
        u, v = svd.canonical_sign(u, vh.T)  # deterministic files
        out[f"{name}|U"] = u[:, :k].to(_FACTOR_DTYPES[factor_dtype]).contiguous()
        out[f"{name}|S"] = s[:k].contiguous()
        out[f"{name}|V"] = v[:, :k].to(_FACTOR_DTYPES[factor_dtype]).contiguous()
        out[f"{name}|Wsv"] = torch.linalg.svdvals(w)
        out[f"{name}|dF"] = s.double().square().sum().sqrt().float().reshape(1)
    return out


class TrajectoryRecorder(TrainerCallback):
    """Write a :func:`snapshot` of every target matrix every ``every`` optimizer steps (and at the last step).

    Files: ``<out_dir>/step-XXXXX.safetensors`` (read back with ``runs.load_trajectory``). Small per-step
    spectral snapshots instead of full checkpoints: C4's alignment and AlphaRL's linear dynamics need only
    the top factors of ΔW_t.

    Args:
        base_state (Mapping[str, Tensor]): W_0, the weights training starts from.
        out_dir (str | Path): where the step files go (``<run>/trajectory``).
        every (int, default 5): recording period in optimizer steps.
        k (int, default 2): singular triplets stored per matrix.
        factor_dtype (str, default "float16"): "float16" or "float32" for U and V.

    Example::

        rec = TrajectoryRecorder(base_state=model.state_dict(), out_dir="run/trajectory", every=5, k=2)
        rec.record(model, step=0)          # the base (ΔW = 0) before training
        trainer = GRPOTrainer(..., callbacks=[rec])
    """

    def __init__(self, base_state: Mapping[str, torch.Tensor], out_dir: str | Path, every: int = 5, k: int = 2,
                 factor_dtype: str = "float16"):
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if factor_dtype not in _FACTOR_DTYPES:
            raise ValueError(f"factor_dtype must be one of {sorted(_FACTOR_DTYPES)}, got {factor_dtype!r}")
        self.base = {n: base_state[n].detach().float().cpu().clone() for n in targets.target_names(base_state)}
        self.out_dir, self.every, self.k, self.factor_dtype = Path(out_dir), every, k, factor_dtype
        self.seconds = 0.0

    def record(self, model, step: int) -> None:
        t0 = time.perf_counter()
        state = models.effective_state_dict(model)
        if sharding.rank() != 0:
            # Rank 0 writes. Under FSDP2 every gather is a collective, so the other ranks take part in
            # them (same matrices, same order as snapshot) and drop the result; under DDP they do nothing.
            if sharding.is_sharded(state):
                for name in self.base:
                    sharding.full_weight(state[name])
            self.seconds += time.perf_counter() - t0
            return
        # FullView gathers one matrix at a time as snapshot reads it (plain tensors pass through).
        tensors = snapshot(sharding.FullView(state), self.base, self.k, self.factor_dtype)
        fileio.save_tensors(self.out_dir / f"step-{step:05d}.safetensors", tensors, metadata={"step": str(step)})
        self.seconds += time.perf_counter() - t0

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.record(model, state.global_step)
