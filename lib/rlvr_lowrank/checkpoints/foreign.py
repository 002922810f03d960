"""Readers for checkpoints that are not safetensors directories: a GGUF file (dequantised to float32 through
transformers, the one case read whole: GGUF files hold small quantised models) and a PEFT LoRA adapter merged
on top of its base checkpoint one tensor at a time, W = W_base + (lora_alpha / r) · B A (alpha / sqrt(r) with
rslora).
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import torch

from .readers import Checkpoint, CheckpointError, DictCheckpoint, refuse_pickles


def gguf_unsupported(path: str | os.PathLike) -> list[tuple[str, str]]:
    """[(tensor name, GGML type)] of the tensors of a GGUF file that gguf.quants cannot dequantise."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import _type_traits

    ok = {Q.F32, Q.F16, Q.BF16} | set(_type_traits)
    reader = gguf.GGUFReader(str(path))
    return [(t.name, Q(t.tensor_type).name) for t in reader.tensors if Q(t.tensor_type) not in ok]


class GGUFCheckpoint(DictCheckpoint):
    """A GGUF file, dequantised to float32 with transformers (``GgufConfig(dequantize=True)``)."""

    kind = "gguf"

    def __init__(self, path):
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist")
        try:
            bad = gguf_unsupported(path)
        except Exception as e:
            raise CheckpointError(f"{path} is not a readable GGUF file ({e})") from e
        if bad:
            name, qtype = bad[0]
            raise CheckpointError(f"{path}: tensor {name!r} is quantised as {qtype}, which gguf cannot dequantise "
                                  f"({len(bad)} such tensor(s)); convert the model from its original safetensors or "
                                  "requantise it to Q8_0 / F16 with llama.cpp")
        from transformers import AutoModelForCausalLM, GgufConfig

        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                     quantization_config=GgufConfig(dequantize=True))
        cfg = model.config.to_dict()
        tensors, seen = {}, set()
        for k, v in model.state_dict().items():
            if v.data_ptr() in seen:  # tied lm_head: stored once, as save_pretrained does
                continue
            seen.add(v.data_ptr())
            tensors[k] = v.detach()
        del model
        super().__init__(path, tensors, cfg, side_dir=None)
        self._gguf = path


def _lora_key(k: str) -> tuple[str, str] | None:
    """'base_model.model.X.lora_A.weight' -> ('X.weight', 'A'); None for non-LoRA keys."""
    m = re.match(r"^(?:base_model\.model\.)?(.*)\.lora_([AB])(?:\.[^.]+)?\.weight$", k)
    return (m.group(1) + ".weight", m.group(2)) if m else None


class LoraCheckpoint(Checkpoint):
    """A PEFT LoRA adapter merged on top of a base checkpoint, one tensor at a time (peft's formula)."""

    kind = "peft"

    def __init__(self, adapter_dir, base: Checkpoint):
        self.path = Path(adapter_dir)
        cfg_path = self.path / "adapter_config.json"
        wpath = self.path / "adapter_model.safetensors"
        if not wpath.exists():
            refuse_pickles(self.path)
            raise CheckpointError(f"{wpath} is missing; save the adapter with save_pretrained(dir)")
        acfg = json.loads(cfg_path.read_text())
        if acfg.get("peft_type", "LORA") != "LORA":
            raise CheckpointError(f"{cfg_path}: peft_type {acfg.get('peft_type')!r}; only LoRA adapters are merged")
        if acfg.get("use_dora"):
            raise CheckpointError(f"{cfg_path}: DoRA adapters are not supported; merge it with peft's "
                                  "merge_and_unload() and save the merged model")
        if acfg.get("rank_pattern") or acfg.get("alpha_pattern"):
            raise CheckpointError(f"{cfg_path}: rank_pattern/alpha_pattern are not supported; merge with peft's "
                                  "merge_and_unload() and save the merged model")
        r, alpha = int(acfg["r"]), float(acfg.get("lora_alpha", acfg["r"]))
        self.scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
        self.fan_in_fan_out = bool(acfg.get("fan_in_fan_out"))
        from safetensors.torch import load_file

        ad = load_file(str(wpath))  # adapters are small: r x (m + n) per matrix
        self._ab: dict[str, dict[str, torch.Tensor]] = {}
        for k, v in ad.items():
            lk = _lora_key(k)
            if lk is None:
                raise CheckpointError(f"{wpath}: tensor {k!r} is not a LoRA A/B matrix (modules_to_save are not "
                                      "supported); merge with peft's merge_and_unload() instead")
            self._ab.setdefault(lk[0], {})[lk[1]] = v
        for n, ab in self._ab.items():
            if n not in base.names():
                raise CheckpointError(f"{wpath}: adapter for {n!r}, which the base checkpoint does not have; "
                                      "the adapter belongs to another model")
            if set(ab) != {"A", "B"}:
                raise CheckpointError(f"{wpath}: {n!r} has only lora_{''.join(ab)}")
        self.base = base
        self.config = base.config
        self.side_dir = base.side_dir
        self.weight_map = base.weight_map

    def names(self):
        return self.base.names()

    def shape(self, name):
        return self.base.shape(name)

    def dtype(self, name):
        return self.base.dtype(name)

    def _get(self, name):
        W = self.base.get(name)
        ab = self._ab.get(name)
        if ab is None:
            return W
        d = (ab["B"].float() @ ab["A"].float()) * self.scaling
        if self.fan_in_fan_out:
            d = d.T
        return (W.float() + d).to(W.dtype)
