"""Names of tensor dtypes where checkpoints meet the outside world, each table written once: the safetensors
header's names, the short names a user passes (--dtype bf16), the names config.json records, and the mantissa
width of each floating storage dtype (the rounding floor of ``pair_analysis``).
"""
from __future__ import annotations

import torch

# The "dtype" field of a safetensors header.
SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64,
                      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
                      "BOOL": torch.bool}
SAFETENSORS_NAMES = {v: k for k, v in SAFETENSORS_DTYPES.items()}
# What --dtype accepts, and what config.json's torch_dtype says for each ("bfloat16", ...).
SHORT_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
CONFIG_NAMES = {dt: str(dt).removeprefix("torch.") for dt in SHORT_DTYPES.values()}
# Stored mantissa bits, the implicit leading bit included (8 for bf16, 11 fp16, 24 fp32, 53 fp64).
MANTISSA_BITS = {torch.bfloat16: 8, torch.float16: 11, torch.float32: 24, torch.float64: 53}
