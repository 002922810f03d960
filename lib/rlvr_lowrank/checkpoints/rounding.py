"""The storage rounding floor: the ‖ΔW‖_F that rounding W_base to a checkpoint's dtype alone would produce, and
the ratio under which a measured ΔW is indistinguishable from that storage noise.
"""
from __future__ import annotations

import torch

from .dtypes import MANTISSA_BITS

NOISE_RATIO = 3.0      # ‖ΔW‖_F below 3x the rounding floor: indistinguishable from storage noise


def rounding_floor(W: torch.Tensor, dtype: torch.dtype) -> float:
    """Expected ‖round_dtype(W') − W'‖_F for W' at W: sqrt(Σ ulp(w)²/12), ulp(w) = 2^(e − p) with w = m·2^e,
    0.5 <= |m| < 1 (torch.frexp) and p the mantissa bits of `dtype` (8 for bf16, 11 fp16, 24 fp32)."""
    p = MANTISSA_BITS.get(dtype)
    if p is None:
        return 0.0
    # the IEEE exponent field of the float32 value (biased by 127; 0 for zeros and subnormals, skipped), counted
    # per value: Σ ulp² = Σ_E count(E) · 4^(E + 1 − p), without a per-entry float64 array (a 7B matrix is 68 M)
    bits = (W.detach().float().contiguous().view(torch.int32) >> 23) & 0xFF
    counts = torch.bincount(bits.reshape(-1), minlength=256).double()
    E = torch.arange(256, dtype=torch.float64) - 127
    counts[0] = 0.0
    return float(torch.sqrt(torch.sum(counts * torch.exp2(2.0 * (E + 1 - p))) / 12.0))
