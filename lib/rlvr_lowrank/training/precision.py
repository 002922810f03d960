"""bf16 compute for real-model GRPO on the CPU, with fp32 master weights: the one place it is done.

A GRPO step of TRL's ``GRPOTrainer`` spends its time in two places (``benchmarks/bench_training.py
--smollm2`` measures the split): sampling the completions token by token (``model.generate``), and the
loss forward + backward over prompt + completion; the optimizer step is a small third.

``train.precision: bf16`` (:class:`Bf16Compute`, used as ``train.FastGRPOTrainer``) runs **the loss
forward** under ``torch.autocast("cpu", dtype=torch.bfloat16)``, with the LM head projected in fp32
(TRL's ``cast_lm_head_to_fp32``: its fused head turns autocast off for that projection), so the per-token
log-probabilities are fp32 computed from bf16 hidden states. Backward follows the forward's dtypes and
accumulates into the fp32 ``.grad`` of the fp32 parameters. **Unchanged, fp32**: sampling, the master
weights, Adam state, the PR1S substitution, the trajectory recorder, the run recorder's evaluations,
every SVD and spectral fit. With ``beta = 0`` and one update per batch (this project's settings) the
importance ratio is exactly 1, so the only difference from fp32 training is rounding in the gradient.

Sampling stays fp32 because the alternative was measured slower here: a bf16 copy of the weights,
refreshed before every ``generate`` call (what vLLM-backed GRPO does on GPUs), made SmolLM2's sampling
*slower* on 2 cores -- at 16 sequences per step a sampling step is dominated by per-token overhead
(the sampler over a 49,152-token vocabulary, small matmuls, dtype casts), not by the matmuls bf16
speeds up. TRL's own ``bf16=True`` wraps every sampling forward in autocast as well.

Detection: bf16 is used only where the CPU has native bf16 matmuls (``amx_bf16`` or ``avx512_bf16`` in
``/proc/cpuinfo``). Elsewhere emulated bf16 would be *slower* than fp32, so a run asking for bf16 falls
back to fp32 with a one-line warning (:func:`effective_precision`). The effective precision is part of
a run's identity (runs.identity), so a fallback run is never taken for a bf16 one.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

PRECISIONS = ("fp32", "bf16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # native bf16 matmul on x86 (oneDNN uses either)
NO_BF16_ENV = "RLVR_NO_BF16"  # "1": behave as on a CPU without bf16 (tests of the fallback, comparisons)


def cpu_bf16_feature(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str | None:
    """The CPU flag that makes bf16 matmuls fast here (``amx_bf16`` before ``avx512_bf16``), else None.

    None on a machine without ``/proc/cpuinfo`` (macOS, Windows): bf16 is then not assumed to be fast.
    """
    if os.environ.get(NO_BF16_ENV) == "1":
        return None
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return None
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    return next((f for f in BF16_CPU_FLAGS if f in flags), None)


def effective_precision(requested: str, warn=None) -> str:
    """The precision a run computes in: ``requested`` ("fp32" or "bf16"), except that bf16 on a CPU
    without native bf16 becomes fp32, with a one-line warning (to stderr unless ``warn`` is given)."""
    if requested not in PRECISIONS:
        raise ValueError(f"train.precision must be one of {PRECISIONS}, got {requested!r}")
    if requested == "fp32" or cpu_bf16_feature():
        return requested
    (warn or (lambda m: print(m, file=sys.stderr)))(
        "warning: train.precision is bf16 but this CPU has no native bf16 (no amx_bf16/avx512_bf16 flag); "
        "training in fp32 instead, which costs the fp32 : bf16 step-time ratio that "
        "`python benchmarks/bench_training.py --smollm2` measures (reports/smollm2/bench_training.json)")
    return "fp32"


class Bf16Compute:
    """Mixin for TRL's GRPOTrainer: the loss forward under bf16 autocast with an fp32 LM head.
    ``train.FastGRPOTrainer`` is ``class FastGRPOTrainer(Bf16Compute, GRPOTrainer)``; it takes GRPOTrainer's
    arguments, and ``args`` must have ``cast_lm_head_to_fp32=True`` and ``bf16=False`` (TRL's own autocast,
    which would also wrap every sampling step, stays off). Full fine-tuning only (no ``peft_config``). This
    module does not import TRL itself, so reading a run's identity (runs.identity) stays cheap."""

    def __init__(self, *args, peft_config=None, **kwargs):
        if peft_config is not None:
            raise ValueError("the bf16 path supports full fine-tuning only; use train.precision: fp32 with LoRA")
        grpo_args = kwargs.get("args")
        if grpo_args is not None and (getattr(grpo_args, "bf16", False) or not grpo_args.cast_lm_head_to_fp32):
            raise ValueError("the bf16 path needs GRPOConfig(bf16=False, cast_lm_head_to_fp32=True)")
        super().__init__(*args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
