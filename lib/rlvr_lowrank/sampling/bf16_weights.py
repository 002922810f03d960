"""bf16 copies of a model's weight matrices for the sampler, in two terms so that a small update is not lost.

Why two terms: a plain bf16 copy rounds each weight to 8 significant bits. At |w| ≈ 0.03 half an ulp is
≈ 1.2e-4, more than 20 Adam steps at lr 1e-5 move a weight, so rollouts sampled from such a copy would see
the base model, and a bf16 evaluation could not tell model variants that differ by a small ΔW apart.
"""
from __future__ import annotations

import torch


class Bf16Weights:
    """The model's weight matrices as ``hi + lo`` in bf16.

    ``hi = bf16(W₀)`` is taken once (at construction) and ``lo = bf16(W − hi)`` is recomputed by :meth:`refresh`.
    ``lo`` carries both hi's rounding error and the whole update W − W₀, each to 8 bits of *its own* size, so W
    is represented to about 16 bits and no update is rounded away. The sampler computes a linear layer as two
    bf16 matmuls whose outputs are added in fp32. That reads as many bytes as fp32: it pays only where bf16
    compute is much faster than fp32 (a CPU with AMX), not on a CPU without native bf16 (emulated: slower).
    Norm weights, the embedding lookup, the residual stream, attention and the sampling stay fp32.
    """

    def __init__(self, model):
        self.model = model
        self.hi = {name: p.detach().to(torch.bfloat16) for name, p in weight_matrices(model)}
        for name, t in self.hi.items():
            _check_finite(name, t)
        self.lo: dict[str, torch.Tensor] = {}
        self.refresh()

    @torch.no_grad()
    def refresh(self) -> None:
        """Recompute ``lo`` from the model's current weights (after an optimizer step or a substitution);
        a NaN or Inf in the result is an error naming the parameter, never silent sampling."""
        for name, p in weight_matrices(self.model):
            lo = (p.detach().float() - self.hi[name].float()).to(torch.bfloat16)
            _check_finite(name, lo)
            self.lo[name] = lo

    def pair(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.hi[name], self.lo[name]


def weight_matrices(model):
    """(name, parameter) of every 2-D weight the decode step multiplies by (the tied LM head once)."""
    seen = set()
    for name, p in model.named_parameters():
        if p.dim() == 2 and id(p) not in seen:
            seen.add(id(p))
            yield name, p
    head = model.lm_head.weight
    if id(head) not in seen:
        yield "lm_head.weight", head


def _check_finite(name: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():
        raise FloatingPointError(f"the bf16 copy of parameter {name!r} holds NaN or Inf (bf16 range is ±3.4e38; "
                                 "the fp32 weight itself may be non-finite): refusing to sample from it")
