"""A synthetic RL checkpoint with a known answer: base + a planted rank-1 update + noise on every target. Notebook
09 builds its smoke series with it, the tests and the checkpoint benchmark their known answers.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from ..analysis.rank1 import matrix_seed
from .dtypes import CONFIG_NAMES, SHORT_DTYPES
from .opening import open_checkpoint, target_selector
from .writer import specs_of, write_hf_directory


def planted_delta(name: str, shape: tuple[int, int], scale: float, noise: float, seed: int = 0) -> torch.Tensor:
    """ΔW = scale · a bᵀ + noise · G for one matrix (a, b unit vectors, G standard Gaussian / sqrt(m n), all
    seeded from `seed` and the name), so ‖rank-1 part‖_F = scale and ‖noise part‖_F ≈ noise."""
    m, n = shape
    # its own seed stream ("planted:" prefix): the random substitution variant draws its directions from
    # matrix_seed(seed, name), and must not find the planted ones
    g = torch.Generator().manual_seed(matrix_seed(seed, "planted:" + name))
    a, b = torch.randn(m, generator=g), torch.randn(n, generator=g)
    d = scale * torch.outer(a / a.norm(), b / b.norm())
    if noise:
        d += noise * torch.randn(m, n, generator=g) / math.sqrt(m * n)
    return d


def write_planted_rl(base_path, out, scale: float = 1.0, noise: float = 0.1, rel: bool = True, seed: int = 0,
                     dtype: str | None = None, max_shard_bytes: int | None = None, targets: str = "default",
                     force: bool = False) -> Path:
    """An "RL checkpoint" = base + planted_delta on every target (other tensors copied), as a HF directory in
    `dtype` (None: the base's), sharded to `max_shard_bytes`. With rel=True `scale` and `noise` are relative to
    ‖W_base‖_F of each matrix. The expected rank-1 energy share is scale² / (scale² + noise²) (before storage
    rounding)."""
    base = open_checkpoint(base_path)
    select = target_selector(targets)
    dt = SHORT_DTYPES[dtype] if dtype is not None else None

    def produce(name):
        if not select(name, len(base.shape(name))):
            return base.chunks(name)
        W = base.get(name).float()
        f = float(torch.linalg.vector_norm(W)) if rel else 1.0
        return W + planted_delta(name, tuple(W.shape), scale * f, noise * f, seed)

    cfg = dict(base.config)
    if dt is not None and cfg:
        cfg["torch_dtype"] = cfg["dtype"] = CONFIG_NAMES[dt]
    try:
        return write_hf_directory(out, specs_of(base, dt), produce, cfg, base.side_dir,
                                  max_shard_bytes=max_shard_bytes, force=force)
    finally:
        base.close()
