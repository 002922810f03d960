"""The weights a model computes with: a LoRA model merged, tied tensors once, sharded ones gathered."""
from __future__ import annotations

import torch

from . import sharding


def effective_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights the model computes with, under the plain (base model's) parameter names.

    For a peft LoRA model this merges on the fly, W = W0 + B·A·(lora_alpha / r) for every active
    adapter (peft's own ``get_delta_weight``), without modifying the model, so the trajectory
    recorder and the checkpoints see the same matrices as for full fine-tuning. For any other model
    it is ``model.state_dict()``.
    """
    try:
        from peft import PeftModel
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft is a project dependency, but keep the plain path working without it
        return model.state_dict()
    if not isinstance(model, PeftModel):
        return model.state_dict()
    base = model.get_base_model()
    out = {}
    for key, value in base.state_dict().items():
        if ".lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            w = module.base_layer.weight.detach().clone()
            for adapter in module.active_adapters:
                # an adapter merged in place (peft merge_adapter) is already inside base_layer.weight:
                # adding it again would count the update twice
                if adapter in module.lora_A and adapter not in module.merged_adapters:
                    w += module.get_delta_weight(adapter).to(w.dtype)
            out[f"{name}.weight"] = w
    return out


def unique_tensors(model) -> dict:
    """The weights to save: :func:`effective_state_dict` without aliases (tied lm_head/embeddings are stored
    once, as safetensors requires); a LoRA model is stored merged, under the base model's names."""
    seen, out = set(), {}
    for k, v in effective_state_dict(model).items():
        ptr = (v.to_local() if sharding.is_dtensor(v) else v).data_ptr()
        if ptr in seen:
            continue
        seen.add(ptr)
        out[k] = sharding.full_weight(v)  # gathered under FSDP2 (a collective: every rank calls this)
    return out

