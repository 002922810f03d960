"""bf16 compute for real-model GRPO on the CPU, with fp32 master weights: the one place it is done.

A GRPO step of TRL's ``GRPOTrainer`` spends its time in two places (``benchmarks/bench_training.py
--smollm2`` measures the split): sampling the completions token by token, and the loss forward + backward
over prompt + completion; the optimizer step is a small third.

``train.precision: bf16`` (:class:`Bf16Compute`, used as ``train.FastGRPOTrainer``) keeps **bf16 copies** of
the decoder layers' weight matrices (:class:`Bf16Copies`) and runs the loss forward and backward on them:

* the copies are refreshed from the fp32 masters at the first micro-batch after the masters changed (an
  optimizer step, a PR1S substitution, anything a callback does between steps: the refresh is keyed on
  the trainer's ``global_step``; :meth:`Bf16Copies.refresh` is public for anything else);
* the forward runs under ``torch.autocast("cpu", bf16)``, which finds these weights already in bf16 and
  so casts only activations, not the 135M weights at every call (plain autocast casts each weight in the
  forward and again in the backward); the embedding, the norms, attention (:class:`Fp32Attention`)
  and the LM head stay fp32;
* the LM head is applied in fp32 at the completion positions only (:class:`CompactHead`), so the per-token
  log-probabilities are fp32 (TRL's own fused head scores every position on a CPU: 5x the work here);
* the gradients land on the bf16 copies and are added into the fp32 ``.grad`` of the masters after each
  micro-batch's backward; clipping, AdamW and its state, PR1S, the recorders, every SVD and spectral fit
  act on the fp32 masters.

With ``beta = 0`` and one update per batch (this project's settings) the importance ratio is exactly 1, so
the only difference from fp32 training is where the gradient is evaluated: at bf16(W), the weights rounded
to 8 significant bits, as plain autocast does too.

**Sampling stays fp32** (the kv sampler on the masters), by measurement. A plain bf16 copy would round an
early update away from the rollouts (at |w| ≈ 0.03 half a bf16 ulp is ≈ 1.2e-4, more than 20 Adam steps at lr
1e-5 move a weight); the copy that keeps it, ``sampling.Bf16Weights`` (``hi + lo``, two bf16 matmuls),
reads as many bytes as fp32 and measured *slower* than fp32 sampling on an AMD EPYC with avx512_bf16
(docs/speed.md has the numbers), so no setting uses it for training. Claim evaluations of model variants
(greedy answers, log-likelihoods) are fp32 as well, so no variant difference is rounded away.

Detection: bf16 is used only where the CPU has native bf16 matmuls (``amx_bf16`` or ``avx512_bf16`` in
``/proc/cpuinfo``). Elsewhere emulated bf16 would be *slower* than fp32, so a run asking for bf16 falls
back to fp32 with a one-line warning (:func:`effective_precision`). The effective precision is part of
a run's identity (runs.identity), so a fallback run is never taken for a bf16 one.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

PRECISIONS = ("fp32", "bf16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # native bf16 matmul on x86 (oneDNN uses either)
ATTENTION_BACKENDS = [SDPBackend.MATH]  # the loss forward/backward's SDPA (Bf16Compute.compute_loss)


def compute_weights(model) -> dict:
    """name -> parameter of the weight matrices the bf16 path copies: every trainable 2-D parameter except
    the input embedding and the LM head (which stay fp32)."""
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return {name: p for name, p in model.named_parameters()
            if p.dim() == 2 and p.requires_grad and p is not embed and p is not head}


class Fp32Attention(TorchFunctionMode):
    """Inside this mode, ``scaled_dot_product_attention`` runs in fp32 (autocast off, q/k/v upcast) and returns
    its caller's dtype; every other function runs as called.

    Why: on the same SmolLM2 batch, attention in bf16 was the largest share of the fast path's gradient
    error against fp32 (a cosine of 0.9984, below the 0.999 fixed beforehand; with fp32 attention 0.9995),
    and at GRPO's ~60-token sequences attention is a small part of the arithmetic: 2% of a step, within
    noise (docs/speed.md). The backward needs no mode: autograd recorded the fp32 operations."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention:
            q, k, v, *rest = args
            with torch.autocast("cpu", enabled=False):
                return func(q.float(), k.float(), v.float(), *rest, **kwargs).to(q.dtype)
        return func(*args, **kwargs)
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
        "training in fp32 instead, which costs the fp32 : fast step-time ratio that "
        "`python benchmarks/bench_fast_path.py` measures (reports/smollm2/bench_fast_path.json)")
    return "fp32"


class Bf16Copies:
    """bf16 copies of a model's decoder-layer weight matrices (every 2-D parameter except the embedding and
    the LM head), as leaf tensors that collect gradients, for the loss forward and backward.

    ``refresh()`` copies the fp32 masters into them (a NaN or Inf is an error naming the parameter);
    ``grads_to_masters()`` adds their gradients, in fp32, to the masters' ``.grad`` and clears them."""

    def __init__(self, model):
        self.masters = compute_weights(model)
        if not self.masters:
            raise ValueError("the bf16 path found no trainable weight matrix outside the embedding and LM head")
        self.copies = {name: torch.empty_like(p, dtype=torch.bfloat16).requires_grad_()
                       for name, p in self.masters.items()}
        # fp32 gradient buffers, kept across steps: the trainer's zero_grad(set_to_none) drops the masters'
        # reference, and a fresh 0.4 GB allocation per step costs more than the copy (page faults)
        self._grad_buffers: dict[str, torch.Tensor] = {}
        self.refreshed_at = None
        self.refresh()

    @torch.no_grad()
    def refresh(self, step=None) -> None:
        """Copy the fp32 masters into the bf16 copies; ``step`` records when (see :meth:`refresh_unless`).

        A NaN or Inf in a copy is an error naming the parameter. The check is one fused reduction over all
        copies (``_foreach_norm``: non-finite if any element is, or if a sum of squares overflows); only when
        it trips is each copy scanned, to name the parameter or to clear a mere overflow. Scanning every
        copy element-wise was a visible share of a SmolLM2 step."""
        names = list(self.masters)
        torch._foreach_copy_([self.copies[n] for n in names], [self.masters[n] for n in names])
        norms = torch.stack(torch._foreach_norm([self.copies[n] for n in names]))
        if not bool(torch.isfinite(norms).all()):
            for name in names:
                if not bool(torch.isfinite(self.copies[name]).all()):
                    raise FloatingPointError(f"the bf16 copy of parameter {name!r} holds NaN or Inf (bf16's range "
                                             "is ±3.4e38, so the fp32 master itself is not finite): refusing to "
                                             "train on it")
        self.refreshed_at = step

    def refresh_unless(self, step) -> None:
        """Refresh unless the copies were last refreshed at ``step`` (the trainer's ``global_step``: the masters
        change only between steps, by the optimizer or by a callback)."""
        if step != self.refreshed_at:
            self.refresh(step)

    @torch.no_grad()
    def grads_to_masters(self) -> None:
        for name, copy in self.copies.items():
            if copy.grad is None:
                continue
            master = self.masters[name]
            if master.grad is None:
                buffer = self._grad_buffers.get(name)
                if buffer is None:
                    buffer = self._grad_buffers[name] = torch.empty_like(master)
                master.grad = buffer.copy_(copy.grad)
            else:
                master.grad += copy.grad
            copy.grad = None


class CompactHead:
    """What TRL's loss calls as ``model(input_ids=, attention_mask=, labels=, fused_lm_head=True)``, on the CPU
    fast path: the backbone runs with ``weights`` (name -> tensor; the bf16 copies) in place of its own weight
    matrices (``torch.func.functional_call``), and the LM head, in fp32, only at the positions whose label is not -100
    (the completion tokens). Returns ``log_probs`` and ``entropy`` of shape (B, T-1), zero elsewhere, at
    temperature ``temperature``: what TRL's fused head returns.

    Why not TRL's fused head: on a device without Triton (the CPU) it scores *every* position, prompt
    included (its own comment: to keep tile shapes fixed for compilers), so with SmolLM2's 49,152-token
    vocabulary the head's forward and backward over (prompt + completion) / completion times the needed
    positions were among a step's largest costs (docs/speed.md). On Triton devices TRL scores the masked
    positions only, as this does. ``tests/test_precision.py`` holds it to TRL's fused head on the tiny model.

    ``entropy_grad``: whether the entropy is differentiable (TRL's loss uses it only with an entropy bonus,
    ``entropy_coef`` or ``use_adaptive_entropy``); without, it is computed under ``no_grad``. The input
    embedding of a plain ``nn.Embedding`` is looked up from its detached weight and its gradient added
    sparsely by :meth:`embedding_grads_to_master`, which must follow every backward
    (``Bf16Compute.gradients_to_masters`` does)."""

    def __init__(self, model, weights: dict, temperature: float, entropy_grad: bool = True):
        cfg = model.config
        for field in ("final_logit_softcapping", "logit_scale"):
            if getattr(cfg, field, None) not in (None, 1.0):
                raise ValueError(f"the bf16 path's LM head does not implement {field} "
                                 f"({type(model).__name__}); use train.precision: fp32")
        prefix = model.base_model_prefix + "."
        if any(not name.startswith(prefix) for name in weights):
            raise ValueError(f"the bf16 path expects every weight matrix but the LM head under {prefix!r}; "
                             f"{type(model).__name__} has others: use train.precision: fp32")
        self.backbone = getattr(model, model.base_model_prefix)
        self.head = model.get_output_embeddings()
        self.weights = {name.removeprefix(prefix): t for name, t in weights.items()}
        self.inv_t = 1.0 / temperature
        self.entropy_grad = entropy_grad
        embed = model.get_input_embeddings()
        # A plain lookup table's gradient touches only the rows of the batch's tokens. Autograd would build it
        # dense (a zeroed vocabulary x hidden matrix, then added to the tied LM head's gradient); instead the
        # lookup's output gradient is kept and index-added into the weight's gradient by
        # embedding_grads_to_master(). Any other embedding module goes through autograd.
        self.embed = embed if (type(embed) is torch.nn.Embedding and embed.max_norm is None
                               and not embed.scale_grad_by_freq and not embed.sparse
                               and embed.weight.requires_grad) else None
        self._embedding_grads: list[tuple[torch.Tensor, torch.Tensor]] = []

    def _inputs(self, input_ids) -> dict:
        if self.embed is None:
            return {"input_ids": input_ids}
        looked_up = torch.nn.functional.embedding(input_ids, self.embed.weight.detach()).requires_grad_()
        looked_up.register_hook(lambda grad: self._embedding_grads.append((input_ids, grad)))
        return {"inputs_embeds": looked_up}

    @torch.no_grad()
    def embedding_grads_to_master(self) -> None:
        """Add the kept lookup gradients into the embedding weight's fp32 ``.grad`` (rows of ``padding_idx``
        excepted, as ``nn.Embedding``'s own backward does)."""
        for input_ids, grad in self._embedding_grads:
            ids, rows = input_ids.reshape(-1), grad.reshape(-1, grad.shape[-1]).float()
            if self.embed.padding_idx is not None:
                keep = ids != self.embed.padding_idx
                ids, rows = ids[keep], rows[keep]
            weight = self.embed.weight
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            weight.grad.index_add_(0, ids, rows)
        self._embedding_grads.clear()

    def __call__(self, input_ids, attention_mask, labels, fused_lm_head=True, **kwargs):
        if not fused_lm_head or kwargs:
            raise ValueError(f"CompactHead scores labels only; got fused_lm_head={fused_lm_head}, {sorted(kwargs)}")
        hidden = torch.func.functional_call(self.backbone, self.weights, (), {
            **self._inputs(input_ids), "attention_mask": attention_mask, "use_cache": False}).last_hidden_state
        target = labels[:, 1:]
        mask = target != -100
        with torch.autocast("cpu", enabled=False):
            h = hidden[:, :-1][mask].float()
            z = torch.nn.functional.linear(h, self.head.weight.float(),
                                           None if self.head.bias is None else self.head.bias.float()) * self.inv_t
            logp_all = torch.log_softmax(z, dim=-1)
            logp = logp_all.gather(-1, target[mask].unsqueeze(-1)).squeeze(-1)
            # the entropy carries a gradient only when TRL's loss has an entropy bonus; softmax, not
            # exp(log_softmax), whose many denormal results made it the head's slowest operator
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.entropy_grad):
                entropy = -(torch.softmax(z, dim=-1) * logp_all).sum(-1)
        zeros = hidden.new_zeros(mask.shape, dtype=torch.float32)
        return SimpleNamespace(log_probs=zeros.masked_scatter(mask, logp), entropy=zeros.masked_scatter(mask, entropy))


class Bf16Compute:
    """Mixin for TRL's GRPOTrainer: the loss forward and backward on bf16 copies of the weights (under bf16
    autocast, LM head in fp32), gradients into the fp32 masters (see the module docstring).
    ``train.FastGRPOTrainer`` is ``class FastGRPOTrainer(Bf16Compute, GRPOTrainer)``; it takes GRPOTrainer's
    arguments, and ``args`` must have ``cast_lm_head_to_fp32=True`` and ``bf16=False`` (TRL's own autocast,
    which would also wrap every sampling step, stays off). Full fine-tuning on one process only (no
    ``peft_config``, no FSDP/ZeRO: the copies are of the whole, unsharded weights). This module does not
    import TRL itself, so reading a run's identity (runs.identity) stays cheap."""

    def __init__(self, *args, peft_config=None, **kwargs):
        if peft_config is not None:
            raise ValueError("the bf16 path supports full fine-tuning only; use train.precision: fp32 with LoRA")
        grpo_args = kwargs.get("args")
        if grpo_args is not None and (getattr(grpo_args, "bf16", False) or not grpo_args.cast_lm_head_to_fp32):
            raise ValueError("the bf16 path needs GRPOConfig(bf16=False, cast_lm_head_to_fp32=True)")
        super().__init__(*args, **kwargs)
        if self.accelerator.num_processes > 1:
            raise ValueError("the bf16 path runs on one process (its copies are of the whole, unwrapped model); "
                             "use train.precision: fp32 with several processes")
        self.bf16_copies = Bf16Copies(self.model)
        entropy_bonus = bool(getattr(self.args, "entropy_coef", 0.0)) or bool(getattr(self.args, "use_adaptive_entropy",
                                                                                    False))
        self.compact_head = CompactHead(self.model, self.bf16_copies.copies, self.temperature,
                                        entropy_grad=entropy_bonus)

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.bf16_copies.refresh_unless(self.state.global_step)
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.gradients_to_masters()
        return loss

    def gradients_to_masters(self) -> None:
        """After a backward: the bf16 copies' and the embedding lookup's gradients into the fp32 masters."""
        self.bf16_copies.grads_to_masters()
        self.compact_head.embedding_grads_to_master()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # ``model`` is the one unwrapped model on one process (checked above), the one the compact head runs.
        # SDPA's math backend: for GRPO's short sequences (~60 tokens) its backward is a few batched matmuls,
        # cheaper than the CPU flash kernel's backward in a profile of a SmolLM2 step (docs/speed.md);
        # attention itself in fp32 (Fp32Attention), the rest of the layers in bf16
        with torch.autocast("cpu", dtype=torch.bfloat16), sdpa_kernel(ATTENTION_BACKENDS), Fp32Attention():
            return super().compute_loss(self.compact_head, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
