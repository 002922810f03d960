"""The trajectory recorder, a ``transformers.TrainerCallback`` that works in any TRL trainer: the top-k factors
of ΔW_t = W_t − W_0 of every target matrix every N optimizer steps (what claim C4 and the linear dynamics read),
and those of the increment since the previous record, ΔW_t − ΔW_{t−Δ} (C4's increment reading,
claims.readings_c4): the cumulative factors alone cannot give increments afterwards.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import torch
from transformers import TrainerCallback

from .. import checks, fileio, models
from ..analysis import svd, targets
from ..models import sharding

_FACTOR_DTYPES = {"float16": torch.float16, "float32": torch.float32}


INCREMENT_PARTS = ("incU", "incS", "incV", "incF")  # the increment's keys, beside U, S, V, Wsv, dF


@torch.no_grad()
def snapshot(state: Mapping[str, torch.Tensor], base_state: Mapping[str, torch.Tensor], k: int = 2,
             factor_dtype: str = "float16", previous: dict[str, torch.Tensor] | None = None,
             previous_known: bool = True, method: str = "exact", spectrum: bool = True) -> dict[str, torch.Tensor]:
    """The tensors the trajectory recorder stores for one step, per target matrix ``<name>``:

    ``<name>|U`` [m, k] and ``<name>|V`` [n, k]: the top-k singular vectors of ΔW_t = W_t − W_0 (exact SVD,
    sign fixed by svd.canonical_sign; stored in ``factor_dtype``), ``<name>|S`` [k]: its singular
    values, ``<name>|Wsv`` [min(m, n)]: every singular value of W_t (float32, for heavy-tail tracking),
    ``<name>|dF`` [1]: ‖ΔW_t‖_F (from all singular values of ΔW_t; with Wsv it gives ‖ΔW_t‖/‖W_t‖, on which
    claims.null_arm matches the random-reward arm to RL).

    The increment since the previous record, D = ΔW_t − ΔW_prev = W_t − W_prev: ``<name>|incU`` [m, k],
    ``<name>|incV`` [n, k] (``factor_dtype``) and ``<name>|incS`` [k]: its top-k singular triplets
    (svd.svd_topk, method "auto": the certified fast path on large matrices; canonical sign), ``<name>|incF``
    [1]: ‖D‖_F. ``previous`` maps a name to ΔW_prev (float32); a name it lacks has ΔW_prev = 0 (the first
    record after W_0, or a plain call: the increment is then ΔW_t itself); this record's ΔW_t replaces it in
    ``previous`` (in place), ready for the next record. ``previous_known=False`` (a resumed run: the ΔW of the
    record before the resume is gone) writes zero increments, which readers drop like the ΔW = 0 of step 0.

    ``method`` "exact" (default): the top-k of ΔW_t from a full SVD; "auto": svd.svd_topk's certified fast
    path (σ1 to 1e-4 relative, |cos u1| ≥ 0.9999, else exact), with ‖ΔW_t‖_F computed directly.
    ``spectrum`` False: ``Wsv`` is not stored (a full SVD of every W_t, the dominant cost on a real model:
    ~55 s per record for SmolLM2's 210 matrices on one CPU thread); ``<name>|WF`` [1] = ‖W_t‖_F is stored
    instead, which is all the relative update ‖ΔW‖/‖W‖ needs.

    Why float16 factors: the alignment statistics are cosines between unit vectors, accurate to ~1e-3 in
    float16, far below the effects measured; the files stay at ~1.5% of a float32 checkpoint of the
    tiny model with k = 2 (the increment's factors add as much again as U and V).
    """
    out = {}
    dtype = _FACTOR_DTYPES[factor_dtype]
    for name in targets.target_names(base_state):
        w = state[name].detach().float().cpu()  # read once: under FSDP2 each read is a collective gather
        dw = w - base_state[name].float()
        m, n = dw.shape
        if method == "exact":
            u, s, vh = torch.linalg.svd(dw, full_matrices=False)  # exact: the tiny model's matrices are small
            u, v = svd.canonical_sign(u, vh.T)  # deterministic files
            d_f = s.double().square().sum().sqrt().float().reshape(1)
            u, s, v = u[:, :k], s[:k], v[:, :k]
        else:
            u, s, v = svd.svd_topk(dw, min(k, m, n), method=method)
            d_f = torch.linalg.vector_norm(dw.double()).float().reshape(1)
        out[f"{name}|U"] = u.to(dtype).contiguous()
        out[f"{name}|S"] = s.contiguous()
        out[f"{name}|V"] = v.to(dtype).contiguous()
        if spectrum:
            out[f"{name}|Wsv"] = torch.linalg.svdvals(w)
        else:
            out[f"{name}|WF"] = torch.linalg.vector_norm(w.double()).float().reshape(1)
        out[f"{name}|dF"] = d_f
        if previous_known:
            prev = previous.get(name) if previous is not None else None
            inc = dw - prev if prev is not None else dw
            iu, i_s, iv = svd.svd_topk(inc, min(k, m, n), method="auto")
            i_f = torch.linalg.vector_norm(inc.double()).float().reshape(1)
        else:
            kk = min(k, m, n)
            iu, i_s, iv, i_f = dw.new_zeros(m, kk), dw.new_zeros(kk), dw.new_zeros(n, kk), dw.new_zeros(1)
        out[f"{name}|incU"] = iu.to(dtype).contiguous()
        out[f"{name}|incS"] = i_s.contiguous()
        out[f"{name}|incV"] = iv.to(dtype).contiguous()
        out[f"{name}|incF"] = i_f
        if previous is not None:
            previous[name] = dw
    return out


class TrajectoryRecorder(TrainerCallback):
    """Write a :func:`snapshot` of every target matrix every ``every`` optimizer steps (and at the last step).

    Files: ``<out_dir>/step-XXXXX.safetensors`` (read back with ``runs.load_trajectory``). Small per-step
    spectral snapshots instead of full checkpoints: C4's alignment and AlphaRL's linear dynamics need only
    the top factors of ΔW_t, and C4's increment reading those of ΔW_t − ΔW_{t−Δ} (Δ = the steps since the
    previous record: ``every``, shorter for a last step that is not a multiple of it).

    Memory: the increments need the previous record's ΔW of every target matrix, kept on the host in float32
    beside the float32 copy of W_0 the recorder already holds: two copies of the target matrices, 2 × 4.2 MB
    for the tiny model (28 matrices, 1.05M parameters) and 2 × 425 MB for SmolLM2-135M (210 matrices,
    106.2M parameters; 30 layers × (2·576² + 2·192·576 + 3·576·1536)). Only rank 0 keeps it. Kept in full
    because W_t − W_prev is needed exactly: in bfloat16 (8 bits of mantissa) the rounding error of ΔW_prev
    is ~0.4% of ‖ΔW‖, of the order of a late increment over a long run.
    After a resume (``on_train_begin`` at a global step other than the last recorded one) the ΔW before the
    resume is gone, so the first record after it stores a zero increment (dropped by the readers).

    Args:
        base_state (Mapping[str, Tensor]): W_0, the weights training starts from.
        out_dir (str | Path): where the step files go (``<run>/trajectory``).
        every (int, default 5): recording period in optimizer steps.
        k (int, default 2): singular triplets stored per matrix.
        factor_dtype (str, default "float16"): "float16" or "float32" for U and V.
        method (str, default "exact"), spectrum (bool, default True): as in :func:`snapshot`.

    Example::

        rec = TrajectoryRecorder(base_state=model.state_dict(), out_dir="run/trajectory", every=5, k=2)
        rec.record(model, step=0)          # the base (ΔW = 0) before training
        trainer = GRPOTrainer(..., callbacks=[rec])
    """

    def __init__(self, base_state: Mapping[str, torch.Tensor], out_dir: str | Path, every: int = 5, k: int = 2,
                 factor_dtype: str = "float16", method: str = "exact", spectrum: bool = True):
        checks.integer(every, "every")
        if factor_dtype not in _FACTOR_DTYPES:
            raise ValueError(f"factor_dtype must be one of {sorted(_FACTOR_DTYPES)}, got {factor_dtype!r}")
        self.base = {n: base_state[n].detach().float().cpu().clone() for n in targets.target_names(base_state)}
        self.out_dir, self.every, self.k, self.factor_dtype = Path(out_dir), every, k, factor_dtype
        self.method, self.spectrum = method, spectrum
        self.seconds = 0.0
        self.previous: dict[str, torch.Tensor] = {}  # ΔW of the last record (rank 0); empty: ΔW_prev = 0
        self.previous_step, self.previous_known = 0, True

    def on_train_begin(self, args, state, control, **kwargs):
        if state.global_step != self.previous_step:  # resumed from a checkpoint: ΔW_prev is unknown
            self.previous.clear()
            self.previous_known = False

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
        tensors = snapshot(sharding.FullView(state), self.base, self.k, self.factor_dtype, previous=self.previous,
                           previous_known=self.previous_known, method=self.method, spectrum=self.spectrum)
        self.previous_step, self.previous_known = step, True
        fileio.save_tensors(self.out_dir / f"step-{step:05d}.safetensors", tensors, metadata={"step": str(step)})
        self.seconds += time.perf_counter() - t0

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.record(model, state.global_step)
