"""Every ``transformers.TrainerCallback`` of the project; each works in any TRL trainer.

- :class:`PeriodicRank1Callback` — Periodic Rank-1 Substitution (PR1S), the paper's method.
- :class:`TrajectoryRecorder` — the rank-k factors of ΔW_t every N steps (what C4 and the dynamics read).
- :class:`SpectralMonitor` — rank-1 energy share, Hill α and u1 alignment, logged live.
- :class:`RunRecorder` — a run directory's metrics.jsonl, evals.jsonl and safetensors checkpoints.

Hooks stay short and delegate to the linear algebra in ``analysis.rank1`` and ``analysis.spectra``.
Callbacks fire in the order they are registered; which order this project's runs use, and what each
recorder therefore sees at a substitution step, is stated in one place: ``training.train.make_callbacks``.

Where the hooks fire: ``on_step_end`` runs after a real optimizer step (after the scheduler step and
``zero_grad``, with ``global_step`` already incremented) and before that step's log, save and eval; so
TRL's checkpoints and evaluations see the substituted weights, and a vLLM-backed trainer syncs them before
the next generation.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from transformers import TrainerCallback

from .. import fileio, models
from ..analysis import rank1, spectra
from ..models import sharding
from ..world import evaluate

# ----------------------------------------------------------------------------------------------
# PR1S
# ----------------------------------------------------------------------------------------------

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

    For every target matrix W (rank1.target_names: the attention and MLP projections), in place and
    under ``torch.no_grad()``::

        ΔW = W − W0;   W ← W0 + R(ΔW),   R = σ1 u1 v1ᵀ ("trunc")  or  ‖ΔW‖_F u1 v1ᵀ ("normmatch")

    with σ1 u1 v1ᵀ the top singular triplet of ΔW, computed in float32 (rank1.svd_topk). W0 is the base
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
        method (str, default "auto"): top-1 SVD solver of ``rank1.svd_topk`` ("auto", "exact", "fast").
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

        from rlvr_lowrank.training.callbacks import PeriodicRank1Callback
        pr1s = PeriodicRank1Callback(base_state=model.state_dict(), every=10, variant="trunc")
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds, callbacks=[pr1s])
        pr1s.trainer = trainer
        trainer.train()
    """

    def __init__(self, base_state: Mapping[str, torch.Tensor], every: int, variant: str = "trunc",
                 optimizer_state: str = "keep", log_path: str | Path | None = None, generation_every: int | None = None,
                 anchor: str = "base", method: str = "auto", seed: int = 0, trainer=None, broadcast: bool = True):
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every (K) must be a positive integer, got {every!r}")
        if variant not in ("trunc", "normmatch"):
            raise ValueError(f"unknown PR1S variant {variant!r}; valid: trunc, normmatch")
        if optimizer_state not in ("keep", "reset"):
            raise ValueError(f"unknown optimizer_state {optimizer_state!r}; valid: keep, reset")
        if anchor not in ("base", "last"):
            raise ValueError(f"unknown anchor {anchor!r}; valid: base, last")
        if method not in rank1.SVD_METHODS:
            raise ValueError(f"unknown svd method {method!r}; valid: {', '.join(rank1.SVD_METHODS)}")
        if generation_every is not None:
            if isinstance(generation_every, bool) or not isinstance(generation_every, int) or generation_every <= 0:
                raise ValueError(f"generation_every must be a positive integer, got {generation_every!r}")
            if every % generation_every != 0:
                raise ValueError(f"every={every} is not a multiple of generation_every={generation_every}: "
                                 "substitutions must fall on generation boundaries")
        if isinstance(base_state, torch.nn.Module):
            base_state = base_state.state_dict()
        names = rank1.target_names(base_state)
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
            missing = [n for n, p in params.items() if rank1.is_target(n, p.ndim) and n not in self.base_state]
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
                diags.append({"name": name, "layer": rank1.layer_index(name), "type": rank1.matrix_type(name),
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


# ----------------------------------------------------------------------------------------------
# Trajectory recorder
# ----------------------------------------------------------------------------------------------

_FACTOR_DTYPES = {"float16": torch.float16, "float32": torch.float32}


@torch.no_grad()
def snapshot(state: Mapping[str, torch.Tensor], base_state: Mapping[str, torch.Tensor], k: int = 2,
             factor_dtype: str = "float16") -> dict[str, torch.Tensor]:
    """The tensors the trajectory recorder stores for one step, per target matrix ``<name>``:

    ``<name>|U`` [m, k] and ``<name>|V`` [n, k]: the top-k singular vectors of ΔW_t = W_t − W_0 (exact SVD,
    sign fixed by rank1.canonical_sign; stored in ``factor_dtype``), ``<name>|S`` [k]: its singular
    values, ``<name>|Wsv`` [min(m, n)]: every singular value of W_t (float32, for heavy-tail tracking).

    Why float16 factors: the alignment statistics are cosines between unit vectors, accurate to ~1e-3 in
    float16, far below the effects measured; the files stay at ~1.5% of a float32 checkpoint of the
    tiny model with k = 2.
    """
    out = {}
    for name in rank1.target_names(base_state):
        w = state[name].detach().float().cpu()
        u, s, vh = torch.linalg.svd(w - base_state[name].float(), full_matrices=False)  # exact: matrices are small
        u, v = rank1.canonical_sign(u, vh.T)  # deterministic files
        out[f"{name}|U"] = u[:, :k].to(_FACTOR_DTYPES[factor_dtype]).contiguous()
        out[f"{name}|S"] = s[:k].contiguous()
        out[f"{name}|V"] = v[:, :k].to(_FACTOR_DTYPES[factor_dtype]).contiguous()
        out[f"{name}|Wsv"] = torch.linalg.svdvals(w)
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
        self.base = {n: base_state[n].detach().float().cpu().clone() for n in rank1.target_names(base_state)}
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


# ----------------------------------------------------------------------------------------------
# Spectral monitor
# ----------------------------------------------------------------------------------------------

class SpectralMonitor(TrainerCallback):
    """Log, every ``every`` optimizer steps, three spectral summaries of the target matrices:

    * ``spectral/rank1_energy``: mean over matrices of σ1(ΔW)² / ‖ΔW‖_F², the share of the update's energy
      in its rank-1 part (ΔW = W_t − W_0; 1 means the update is exactly rank 1);
    * ``spectral/hill_alpha``: median over matrices of the fixed-x_min Hill α of W_t's ESD (spectra.hill_alpha:
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

    Cost per monitor step: one top-1 SVD of ΔW (rank1.svd_topk) and the singular values of W_t per target
    matrix. Example::

        from rlvr_lowrank.training.callbacks import SpectralMonitor
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds,
                              callbacks=[SpectralMonitor(every=10, log_path="spectral.jsonl")])
    """

    def __init__(self, every: int = 10, log_path: str | Path | None = None, base_state: dict | None = None):
        if isinstance(every, bool) or not isinstance(every, int) or every <= 0:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        self.log_path = Path(log_path) if log_path is not None else None
        self.base = None if base_state is None else self._targets(base_state)
        self.prev_u1: dict[str, torch.Tensor] = {}
        self.seconds = 0.0
        self.records: list[dict] = []

    @staticmethod
    def _targets(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = rank1.target_names(state)
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
            row = {"name": name, "hill_alpha": spectra.hill_alpha(spectra.esd(w, dtype=torch.float32))}
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
        U, S, _ = rank1.svd_topk(dw, 1)
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


# ----------------------------------------------------------------------------------------------
# Run recorder
# ----------------------------------------------------------------------------------------------

METRIC_KEYS = ("reward", "reward_std", "step_time", "loss", "grad_norm", "entropy", "frac_reward_zero_std",
               "completions/mean_length", "completions/clipped_ratio", "kl", "learning_rate")


class RunRecorder(TrainerCallback):
    """The run directory's logs: ``metrics.jsonl`` from TRL's logs, ``evals.jsonl`` at a fixed cadence, and
    safetensors checkpoints. Only the world-process-zero writes (other ranks train on).

    Args:
        run (Path): the run directory.
        eval_sets (dict[str, list[tasks.Item]]): ``math_test``, ``math_train``, ``facts``, ``skill_test`` and,
            with ``skill_train_too``, ``skill_train`` (greedy accuracy of each is one column of evals.jsonl).
        eval_every (int, default 0): evaluation period in optimizer steps (also step 0 and the last step); 0: none.
        checkpoint_every (int, default 0): ``checkpoints/step-XXXXX/model.safetensors`` period; 0: none.
        skill_train_too (bool, default False): also score the skill's RL split (multi-task runs).
    """

    def __init__(self, run: Path, eval_sets: dict, eval_every: int = 0, checkpoint_every: int = 0,
                 skill_train_too: bool = False):
        self.run, self.eval_sets = Path(run), eval_sets
        self.eval_every, self.checkpoint_every, self.skill_train_too = eval_every, checkpoint_every, skill_train_too

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs or "reward" not in logs or not state.is_world_process_zero:
            return
        row = {"step": state.global_step, **{k: logs[k] for k in METRIC_KEYS if k in logs}}
        row.update({k: v for k, v in logs.items() if k.startswith("rewards/") and k.endswith("/mean")})
        fileio.append_jsonl(self.run / "metrics.jsonl", row)

    def on_train_begin(self, args, state, control, model=None, **kw):
        if (state.is_world_process_zero and state.global_step == 0 and self.eval_every
                and not (self.run / "evals.jsonl").exists()):
            self.evaluate(model, kw["processing_class"], 0)

    def on_step_end(self, args, state, control, model=None, **kw):
        if not state.is_world_process_zero:
            return
        step, last = state.global_step, state.global_step == state.max_steps
        if self.eval_every and (step % self.eval_every == 0 or last):
            self.evaluate(model, kw["processing_class"], step)
        if self.checkpoint_every and (step % self.checkpoint_every == 0 or last):
            fileio.save_tensors(self.run / "checkpoints" / f"step-{step:05d}" / "model.safetensors",
                            models.unique_tensors(model))

    def evaluate(self, model, tokenizer, step: int) -> dict:
        t0 = time.time()
        sets = ["math_test", "math_train", "facts", "skill_test"] + (["skill_train"] if self.skill_train_too else [])
        columns = {"math_test": "test_acc", "math_train": "train_acc", "facts": "fact_acc", "skill_test": "skill_acc",
                   "skill_train": "skill_train_acc"}
        row = {"step": step}
        for name in sets:
            row[columns[name]] = evaluate.greedy_accuracy(model, tokenizer, self.eval_sets[name]).accuracy
        row["eval_seconds"] = round(time.time() - t0, 2)
        fileio.append_jsonl(self.run / "evals.jsonl", row)
        return row
