"""Periodic Rank-1 Substitution (PR1S), the paper's method, as a ``transformers.TrainerCallback`` that works
in any TRL trainer (plain, DDP, FSDP2, DeepSpeed ZeRO).

The hook stays short and delegates to the linear algebra in ``analysis.rank1``. It fires in ``on_step_end``,
which runs after a real optimizer step (after the scheduler step and ``zero_grad``, with ``global_step``
already incremented) and before that step's log, save and eval; so TRL's checkpoints and evaluations see the
substituted weights, and a vLLM-backed trainer syncs them before the next generation.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping

import torch
from transformers import TrainerCallback

from .. import checks, fileio
from ..analysis import rank1, svd, targets
from ..models import sharding


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    # DDP wraps as .module; the Trainer passes the unwrapped model to callbacks, but be safe.
    while isinstance(model, torch.nn.parallel.DistributedDataParallel) or type(model).__name__ == "DeepSpeedEngine":
        model = model.module
    return model


def unsupported_reason(model, optimizer, trainer) -> str | None:
    """Why in-place substitution cannot be done here, or None. Plain, DDP, FSDP2 and DeepSpeed ZeRO are
    handled through rlvr_lowrank.models.sharding (full-weight gather / write-back, one matrix at a time)."""
    if "PeftModel" in {c.__name__ for c in type(model).__mro__}:
        return ("the model is a peft (LoRA) model: PR1S substitutes full weight matrices, and a rank-r LoRA update "
                "is already low-rank; combine PR1S with full fine-tuning only")
    try:
        sharding.detect(model, trainer)  # raises for FSDP1 (flat parameters)
    except sharding.ShardingError as e:
        return str(e)
    return None


class PeriodicRank1Callback(TrainerCallback):
    r"""Periodic Rank-1 Substitution (PR1S): every K optimizer steps, each target update becomes its rank-1 part.

    For every target matrix W (targets.target_names: the attention and MLP projections), in place and
    under ``torch.no_grad()``::

        ΔW = W − W0;   W ← W0 + R(ΔW),   R = σ1 u1 v1ᵀ ("trunc")  or  ‖ΔW‖_F u1 v1ᵀ ("normmatch")

    with σ1 u1 v1ᵀ the top singular triplet of ΔW, computed in float32 (svd.svd_topk). W0 is the base
    model (``anchor="base"``: the substitution is cumulative and ΔW is exactly rank 1 right after it);
    ``anchor="last"`` moves W0 to the substituted weights after each substitution (an ablation; ΔW then
    has rank ≤ the number of substitutions). Embeddings, lm_head, norms and biases are never touched.

    Args:
        base_state (Mapping[str, Tensor] | nn.Module): the base weights W0 (copied to CPU float32).
        every (int): K, the substitution period in optimizer steps.
        variant (str, default "trunc"): "trunc" or "normmatch" (see above).
        optimizer_state (str, default "keep"): "keep" Adam's moments as they are, or "reset" pops the
            substituted parameters' entries (``optimizer.state.pop(p)``) so Adam re-initialises them with
            step 0. Moments are never zeroed in place: that would keep a large bias-correction step count
            and inflate the next update about 3×.
        log_path (str | Path | None): one JSON line per substitution (per matrix fro2 = ‖ΔW‖², sigma1, e1,
            energy_removed = ‖ΔW‖² − ‖R‖², dist2 = ‖ΔW − R‖², and totals); kept in ``self.history`` too.
        generation_every (int | None): optimizer steps per GRPO generation when that is not 1; K must be a
            multiple of it.
        anchor (str, default "base"): "base" or "last" (see above).
        method (str, default "auto"): top-1 SVD solver of ``svd.svd_topk`` ("auto", "exact", "fast").
        seed (int, default 0): seeds the fast solver's start block per matrix (deterministic on every rank).
        trainer: the trainer, for multi-process runs (``cb.trainer = trainer`` also works): with more than
            one process, rank 0's substituted weights are broadcast to every rank.
        broadcast (bool, default True): do that broadcast.

    Why in place on the same ``Parameter``: the optimizer, the DDP buckets and any wrapper point at that
    object; a new ``nn.Parameter`` would be silently ignored.

    Generation boundaries: GRPO generates once every ``steps_per_generation × num_iterations`` micro-steps
    and reuses those completions (and their old log-probabilities) until the next generation; a
    substitution inside that window makes the importance ratio jump. With ``num_iterations = 1`` and
    ``steps_per_generation = gradient_accumulation_steps`` (TRL's defaults) every optimizer step is a
    boundary; otherwise the condition K·GA ≡ 0 (mod steps_per_generation·num_iterations) is checked at
    train begin and a violation raises ValueError.

    Sharded training (rlvr_lowrank.models.sharding, docs/sharded_training.md): under FSDP2 (DTensor parameters on
    a 1-D mesh, Shard(0) or Replicate) each target matrix is all-gathered, substituted as above and cut back
    into the local shard, one matrix at a time; the ranks must compute bitwise-identical substitutes, which is
    checked per matrix (RankDisagreementError otherwise). Under DeepSpeed ZeRO the substitute goes into the
    fp32 master weights (safe_set_full_fp32_param) and the module copy, because DeepSpeed refreshes the
    module parameters from the master after every step. FSDP1 (flat parameters), multi-dimensional meshes,
    other placements and peft (LoRA) models are refused with an error naming the reason.

    Example::

        from rlvr_lowrank.training.pr1s import PeriodicRank1Callback
        pr1s = PeriodicRank1Callback(base_state=model.state_dict(), every=10, variant="trunc")
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds, callbacks=[pr1s])
        pr1s.trainer = trainer
        trainer.train()
    """

    def __init__(self, base_state: Mapping[str, torch.Tensor], every: int, variant: str = "trunc",
                 optimizer_state: str = "keep", log_path: str | Path | None = None, generation_every: int | None = None,
                 anchor: str = "base", method: str = "auto", seed: int = 0, trainer=None, broadcast: bool = True):
        checks.integer(every, "every (K)")
        if variant not in ("trunc", "normmatch"):
            raise ValueError(f"unknown PR1S variant {variant!r}; valid: trunc, normmatch")
        if optimizer_state not in ("keep", "reset"):
            raise ValueError(f"unknown optimizer_state {optimizer_state!r}; valid: keep, reset")
        if anchor not in ("base", "last"):
            raise ValueError(f"unknown anchor {anchor!r}; valid: base, last")
        if method not in svd.SVD_METHODS:
            raise ValueError(f"unknown svd method {method!r}; valid: {', '.join(svd.SVD_METHODS)}")
        if generation_every is not None:
            checks.integer(generation_every, "generation_every")
            if every % generation_every != 0:
                raise ValueError(f"every={every} is not a multiple of generation_every={generation_every}: "
                                 "substitutions must fall on generation boundaries")
        if isinstance(base_state, torch.nn.Module):
            base_state = base_state.state_dict()
        names = targets.target_names(base_state)
        if not names:
            raise ValueError("base_state holds no target matrices (q/k/v/o/gate/up/down_proj .weight)")
        for n in names:
            if not bool(torch.isfinite(base_state[n]).all()):
                raise ValueError(f"base weight {n!r} contains NaN or Inf")
        # CPU float32 copies: the anchor must not alias the live parameters nor lose precision.
        self.base_state = {n: base_state[n].detach().to("cpu", torch.float32).clone() for n in names}
        self.every = every
        self.variant = variant
        self.optimizer_state = optimizer_state
        self.log_path = Path(log_path) if log_path is not None else None
        self.generation_every = generation_every
        self.anchor = anchor
        self.method = method
        self.seed = seed
        self.trainer = trainer
        self.broadcast = broadcast
        self.history: list[dict] = []
        self.seconds = 0.0  # total time spent substituting (benchmarks)
        self._checked_names = False

    # -- checks ------------------------------------------------------------------------------------

    def _check_generation_boundary(self, args) -> None:
        spg = getattr(args, "steps_per_generation", None)
        if spg is None:
            return
        ga = int(getattr(args, "gradient_accumulation_steps", 1) or 1)
        period = int(spg) * int(getattr(args, "num_iterations", 1) or 1)  # micro-steps per generation
        if (self.every * ga) % period != 0:
            raise ValueError(
                f"PR1S every={self.every} optimizer steps (= {self.every * ga} micro-steps) does not fall on GRPO "
                f"generation boundaries (every steps_per_generation x num_iterations = {period} micro-steps); "
                "choose every as a multiple of the generation period")

    def _check_supported(self, model, optimizer) -> None:
        reason = unsupported_reason(model, optimizer, self.trainer)
        if reason is not None:
            raise NotImplementedError(f"PeriodicRank1Callback: {reason}")

    def _params(self, model) -> dict[str, torch.nn.Parameter]:
        params = dict(_unwrap(model).named_parameters())
        if not self._checked_names:
            for n, W0 in self.base_state.items():
                if n not in params:
                    raise ValueError(f"anchor tensor {n!r} is not a parameter of the model (prefix mismatch?)")
                if tuple(params[n].shape) != tuple(W0.shape):
                    raise ValueError(f"shape mismatch for {n!r}: model {tuple(params[n].shape)} "
                                     f"vs anchor {tuple(W0.shape)}")
            missing = [n for n, p in params.items() if targets.is_target(n, p.ndim) and n not in self.base_state]
            if missing:
                raise ValueError(f"target parameter {missing[0]!r} has no anchor in base_state")
            strategy = sharding.detect(model, self.trainer)
            for n in self.base_state:  # a sharded layout the write-back cannot handle is refused, by name
                sharding.check_layout(n, params[n], strategy)
            self._checked_names = True
        return params

    # -- callback events ---------------------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self._check_generation_boundary(args)
        model = kwargs.get("model")
        if model is not None:
            self._check_supported(model, kwargs.get("optimizer"))
            self._params(model)

    def on_step_end(self, args, state, control, **kwargs):
        step = int(state.global_step)
        if step <= 0 or step % self.every != 0:
            return
        self._check_generation_boundary(args)
        self.substitute(kwargs["model"], kwargs.get("optimizer"), step=step,
                        write_log=getattr(state, "is_world_process_zero", True))

    # -- the substitution itself (also usable outside a Trainer) -----------------------------------

    def substitute(self, model: torch.nn.Module, optimizer=None, step: int | None = None,
                   write_log: bool = True) -> dict:
        """Apply one substitution to ``model`` in place; returns (and logs) the record."""
        self._check_supported(model, optimizer)
        if self.optimizer_state == "reset" and optimizer is None:
            raise ValueError("optimizer_state='reset' needs the optimizer (kwargs['optimizer'] in a Trainer)")
        t0 = time.perf_counter()
        params = self._params(model)
        world = sharding.world_size()
        # FSDP2 / DeepSpeed (docs/sharded_training.md): every rank gathers the full matrix (a collective, same
        # order on all ranks), computes the substitute and writes its own shard / fp32 master; the ranks must
        # agree on the substitute, which is checked (a digest per matrix) rather than assumed.
        sharded = sharding.detect(model, self.trainer) in ("fsdp2", "deepspeed")
        diags = []
        with torch.no_grad():
            for name, W0_cpu in self.base_state.items():
                p = params[name]
                W = sharding.full_weight(p)  # one full matrix at a time
                W0 = W0_cpu.to(W.device)
                dW = W.float() - W0
                del W
                R, d = rank1.substitute_update(dW, self.variant, seed=rank1.matrix_seed(self.seed, name),
                                               method=self.method)
                del dW
                new = W0 + R
                del R
                if sharded and world > 1:
                    sharding.assert_ranks_agree(name, new, "substituted weight")
                sharding.write_full_weight(p, new)  # in place: the same Parameter object
                del new
                if world > 1 and self.broadcast and self.trainer is not None and not sharded:
                    # every rank computed the same substitution, but bitwise equality is only certain on
                    # identical hardware and libraries: rank 0's values win
                    torch.distributed.broadcast(p.data, src=0)
                if self.anchor == "last":  # what the parameter now holds (after the cast to its dtype)
                    self.base_state[name] = sharding.full_weight(p).to("cpu", torch.float32).clone()
                if self.optimizer_state == "reset":
                    # AcceleratedOptimizer.state forwards to the inner optimizer; refused under DeepSpeed
                    sharding.reset_optimizer_state(optimizer, p)
                diags.append({"name": name, "layer": targets.layer_index(name), "type": targets.matrix_type(name),
                              "fro2": d["fro2"], "sigma1": d["sigma1"], "e1": d["e1"],
                              "energy_removed": d["energy_removed"], "dist2": d["dist2"], "svd": d["svd"]})
        if world > 1 and self.trainer is not None and hasattr(self.trainer, "accelerator"):
            self.trainer.accelerator.wait_for_everyone()
        summary = rank1.summarize_diagnostics([{**d, "fro": math.sqrt(d["fro2"])} for d in diags])
        record = {"step": step, "variant": self.variant, "optimizer_state": self.optimizer_state,
                  "anchor": self.anchor, "every": self.every, "seconds": time.perf_counter() - t0,
                  **summary, "matrices": diags}
        self.history.append(record)
        self.seconds += record["seconds"]
        if write_log and self.log_path is not None:  # never trainer.log() from a callback: it re-enters the loop
            fileio.append_jsonl(self.log_path, record)
        return record
