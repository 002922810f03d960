"""Target matrices and what their names say: which weights the rank-1 analysis is about, and the matrix type
and decoder layer read from a tensor name. Every module that parses a weight's name asks here.

Targets are AlphaRL's (eval/svd.py): the 2-D weights of the attention and MLP blocks. Embeddings, lm_head,
norms and biases are never targets.
"""
from __future__ import annotations

import re
from typing import Mapping

TARGET_SUFFIXES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_TARGET_RE = re.compile(r"(?:^|\.)(" + "|".join(TARGET_SUFFIXES) + r")\.weight$")
_LAYER_RE = re.compile(r"layers\.(\d+)\.")
# The module path inside a decoder layer, for any weight a checkpoint selection may hold (MoE routers and
# experts included): 'model.layers.3.mlp.experts.0.up_proj.weight' -> 'experts.0.up_proj'.
_MODULE_RE = re.compile(r"layers\.\d+\.(?:self_attn\.|mlp\.)?(.*?)(?:\.weight)?$")


def is_target(name: str, ndim: int = 2) -> bool:
    """True for a 2-D attention/MLP weight such as ``model.layers.0.self_attn.q_proj.weight``."""
    return ndim == 2 and _TARGET_RE.search(name) is not None


def target_names(state_dict: Mapping[str, object]) -> list[str]:
    """Names of the target matrices of a state dict, in state-dict order."""
    return [k for k, v in state_dict.items() if is_target(k, getattr(v, "ndim", 0))]


def matrix_type(name: str) -> str:
    """'q_proj', ..., 'down_proj' for a target name."""
    m = _TARGET_RE.search(name)
    if m is None:
        raise ValueError(f"{name!r} is not a target matrix name")
    return m.group(1)


def layer_index(name: str) -> int:
    """Decoder layer index from ``...layers.<i>....``; -1 when absent."""
    m = _LAYER_RE.search(name)
    return int(m.group(1)) if m else -1


def type_and_layer(name: str) -> tuple[str, int]:
    """(matrix type, layer) for a target name with or without its ``.weight`` suffix; ("other", layer) for any
    other name, so that a table of arbitrary matrices still has a type column."""
    for cand in (name, name + ".weight"):
        if is_target(cand):
            return matrix_type(cand), layer_index(cand)
    return "other", layer_index(name)


def module_type(name: str) -> str:
    """'q_proj', 'gate', 'experts.0.up_proj', ...: the name after 'layers.<i>.' (and 'self_attn.' or 'mlp.')
    minus '.weight', for any weight a checkpoint's target selection may hold; the whole name outside a layer."""
    m = _MODULE_RE.search(name)
    return m.group(1) if m else name
