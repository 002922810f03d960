"""Opening checkpoints: the reader for a path (a Hugging Face directory, a run directory of this project or one
of its step directories, a GGUF file, a PEFT adapter), a BASE/RL pair checked to have the same layout, which
of their tensors are targets, and ΔW of one tensor checked finite.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Callable

import torch
import yaml

from .. import paths
from ..analysis.rank1 import check_same_model_type, check_same_tensors
from ..analysis.targets import is_target
from .foreign import GGUFCheckpoint, LoraCheckpoint
from .readers import BIN_HINT, SINGLE_NAME, Checkpoint, CheckpointError, HFCheckpoint

# Target selections. "default" is the project's (targets.is_target: q/k/v/o/gate/up/down_proj); "alpharl" is
# AlphaRL's scope (eval/svd.py): every 2-D weight under self_attn or mlp of a decoder layer, MoE routers and
# experts included; anything else is a user regex matched (re.search) against the tensor name.
ALPHARL_RE = re.compile(r"(?:^|\.)layers\.\d+\.(?:self_attn|mlp)\..*weight$")


def target_selector(targets: str = "default") -> Callable[[str, int], bool]:
    """(name, ndim) -> bool for --targets: "default", "alpharl" or a regular expression."""
    if targets in (None, "default"):
        return is_target
    if targets == "alpharl":
        return lambda name, ndim: ndim == 2 and ALPHARL_RE.search(name) is not None
    try:
        rx = re.compile(targets)
    except re.error as e:
        raise CheckpointError(f"--targets {targets!r} is not a valid regular expression ({e})") from e
    return lambda name, ndim: ndim == 2 and rx.search(name) is not None


def iter_targets(ckpt: Checkpoint, select: Callable[[str, int], bool]) -> list[str]:
    """Target names of a checkpoint under a selector, in stored order; error when none match."""
    names = [n for n in ckpt.names() if select(n, len(ckpt.shape(n)))]
    if not names:
        raise CheckpointError(f"no target matrices in {ckpt.path} for this --targets selection")
    return names


def _run_weights(d: Path) -> tuple[Path, Path] | None:
    """(weights file, config dir) for a run directory of this project (runs/<profile>/<exp>/seed<k>)."""
    cfg = d / "config.yaml"
    if not cfg.exists():
        return None
    rc = yaml.safe_load(cfg.read_text()) or {}
    model = Path(str(rc.get("model", "")))
    model = model if model.is_absolute() else paths.ROOT / model
    w = d / "final" / SINGLE_NAME
    if not w.exists():
        steps = sorted((d / "checkpoints").glob("step-*/model.safetensors"))
        if not steps:
            raise CheckpointError(f"run {d} has no final/model.safetensors nor checkpoints; finish the run first")
        w = steps[-1]
    if not (model / "config.json").exists():
        raise CheckpointError(f"run {d} was trained from {model}, which has no config.json (a GGUF base cannot be "
                              "exported as a Hugging Face directory by this command)")
    return w, model


def open_checkpoint(path: str | os.PathLike, base: Checkpoint | None = None) -> Checkpoint:
    """The right reader for `path`: a .gguf file, a PEFT adapter dir (needs `base`), a run directory of this
    project, a run's step directory (checkpoints/step-N, final) or a Hugging Face directory. An already open
    Checkpoint is returned as is (e.g. a GGUF file dequantised once and used for several commands)."""
    if isinstance(path, Checkpoint):
        return path
    p = Path(path)
    if p.suffix == ".gguf":
        return GGUFCheckpoint(p)
    if p.is_file() and p.suffix in (".bin", ".pt", ".pth"):
        raise CheckpointError(f"{p} is a pickle checkpoint; {BIN_HINT.replace('DIR', str(p.parent))}")
    if not p.exists():
        raise CheckpointError(f"{p} does not exist")
    if (p / "adapter_config.json").exists():
        if base is None:
            raise CheckpointError(f"{p} is a PEFT adapter; it can only be the RL side (merged onto the base)")
        return LoraCheckpoint(p, base)
    run = _run_weights(p)
    if run is not None:
        return HFCheckpoint(p, config_dir=run[1], weights=run[0])
    if not (p / "config.json").exists() and (p / SINGLE_NAME).exists() and (p.parent.name in ("checkpoints",) or
                                                                           p.name == "final"):
        run_dir = p.parent.parent if p.parent.name == "checkpoints" else p.parent
        r = _run_weights(run_dir)
        if r is not None:
            return HFCheckpoint(p, config_dir=r[1])
    return HFCheckpoint(p)


def check_pair(base: Checkpoint, other: Checkpoint) -> None:
    """Same architecture, same tensor names, same shapes; the first mismatch is named."""
    b, o = str(base.path), str(other.path)
    check_same_model_type(base.config.get("model_type"), other.config.get("model_type"), b, o, CheckpointError)
    check_same_tensors(base.names(), other.names(), base.shape, other.shape, b, o, CheckpointError)


def open_pair(base_path, rl_paths) -> tuple[Checkpoint, list[Checkpoint]]:
    """The base (a full model) and the RL checkpoints of it (a PEFT adapter is merged onto the base), each
    checked against the base with :func:`check_pair`."""
    base = open_checkpoint(base_path)
    if base.kind == "peft":
        raise CheckpointError(f"{base_path} is a PEFT adapter; the base must be a full model")
    rls = [open_checkpoint(p, base=base) for p in rl_paths]
    for r in rls:
        check_pair(base, r)
    return base, rls


def checked_delta(W1: torch.Tensor, W0: torch.Tensor, name: str, base: Checkpoint, rl: Checkpoint) -> torch.Tensor:
    """ΔW = W1 − W0, checked finite in one pass: NaN or Inf in either input makes ΔW non-finite (x − NaN = NaN,
    Inf − x = ±Inf, Inf − Inf = NaN), and only then are the inputs checked one by one to name the culprit."""
    dW = W1 - W0
    if not math.isfinite(float(dW.abs().max())):
        base.get(name)
        rl.get(name)
        raise CheckpointError(f"ΔW of {name!r} is not finite")  # not reached: one of the inputs is not finite
    return dW


def path_label(x) -> str:
    """How a checkpoint argument (a path or an open Checkpoint) is named in reports."""
    return str(x.path) if isinstance(x, Checkpoint) else str(x)
