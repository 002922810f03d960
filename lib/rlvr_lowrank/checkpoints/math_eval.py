"""Score a model directory on a MATH-style JSONL: greedy accuracy and pass@k, one scores file per model.

``python -m rlvr_lowrank evaluate-math MODEL_DIR --data data/math/test.jsonl --out scores/rl_seed0.json
[--samples 8 --temperature 0.6] [--max-new-tokens 1024] [--limit N]`` reads the rows ``prepare-math`` writes
(``prompt`` as a chat turn, ``answer``), renders each prompt with the model's chat template (plain text when
the tokenizer has none), decodes with Hugging Face ``generate`` (:func:`world.evaluate.generate`: greedy, then
``--samples`` completions at ``--temperature`` from a fixed seed) and scores every completion with
:mod:`world.math_verifier` (math-verify when installed). pass@k is the unbiased estimator of Chen et al. (2021)
from n samples, for k = 1 and k = n.

The scores file is what the ``recovery`` command reads: the evaluated model, the data file and its sha256,
the verifier, the decoding settings, the accuracies and per item whether the greedy answer was right and how
many samples were. The base, the RL model and every variant ``substitute`` writes (rank-1, residual, random)
are each scored this way, with the same data and settings (``recovery`` refuses files that differ).

Decoding runs on the CPU or one GPU through ``generate`` (no vLLM here: a MATH500 pass with 1,024 new tokens is
hours on a CPU; on a GPU box vLLM's own offline evaluation writes the same per-item counts faster).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from .. import fileio
from ..models import load_model
from ..world import evaluate, math_verifier

SCORES_KIND = "rlvr-lowrank math scores"


def _prompts(tokenizer, rows: list[dict]) -> list[str]:
    out = []
    for n, row in enumerate(rows, 1):
        prompt = row.get("prompt")
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        if not (isinstance(prompt, list) and prompt and all(isinstance(m, dict) and "content" in m for m in prompt)):
            raise ValueError(f"row {n}: 'prompt' must be a string or a list of chat messages; write the file with "
                             "`python -m rlvr_lowrank prepare-math`")
        if getattr(tokenizer, "chat_template", None):
            out.append(tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True))
        else:  # a base model without a chat template: the user turn as plain text
            out.append("\n\n".join(m["content"] for m in prompt))
    return out


def read_items(data: str | Path, limit: int | None = None) -> list[dict]:
    rows = fileio.read_jsonl(data)
    missing = [n for n, r in enumerate(rows, 1) if not isinstance(r.get("answer"), str)]
    if missing:
        raise ValueError(f"{data}: rows {missing[:5]} have no string 'answer'; write the file with prepare-math")
    if not rows:
        raise ValueError(f"{data} holds no rows")
    return rows[:limit] if limit else rows


def score_completions(completions: list[list[str]], rows: list[dict]) -> list[list[float]]:
    return [[math_verifier.score(c, row["answer"]) for c in comps] for comps, row in zip(completions, rows)]


def evaluate_model(model_dir: str | Path, data: str | Path, out: str | Path, samples: int = 0,
                   temperature: float = 1.0, max_new_tokens: int = 1024, limit: int | None = None,
                   batch_size: int = 16, seed: int = 0) -> dict:
    """Greedy accuracy (and pass@1 / pass@n over ``samples`` samples) of ``model_dir`` on ``data``; writes ``out``."""
    if samples < 0 or max_new_tokens < 1 or batch_size < 1 or (limit is not None and limit < 1):
        raise ValueError("--samples must be >= 0 and --max-new-tokens, --batch-size and --limit >= 1")
    rows = read_items(data, limit)
    model, tokenizer = load_model(model_dir, alphabet=None)
    prompts = _prompts(tokenizer, rows)
    greedy = evaluate.generate(model, tokenizer, prompts, max_new_tokens, batch_size=batch_size)
    greedy_scores = [s[0] for s in score_completions(greedy, rows)]
    result = {"kind": SCORES_KIND, "model": str(model_dir), "data": str(data),
              "data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest(), "n": len(rows),
              "verifier": math_verifier.backend(), "max_new_tokens": max_new_tokens, "limit": limit,
              "greedy_accuracy": sum(greedy_scores) / len(rows), "samples": samples}
    items = [{"id": row.get("id", str(i)), "greedy_correct": bool(g)} for i, (row, g) in
             enumerate(zip(rows, greedy_scores))]
    if samples:
        sampled = evaluate.generate(model, tokenizer, prompts, max_new_tokens, do_sample=True, num_samples=samples,
                                    temperature=temperature, batch_size=batch_size * samples, seed=seed)
        correct = [int(sum(s)) for s in score_completions(sampled, rows)]
        result.update(temperature=temperature, seed=seed,
                      pass_at={str(k): sum(evaluate.pass_at_k(samples, c, k) for c in correct) / len(rows)
                               for k in sorted({1, samples})})
        for item, c in zip(items, correct):
            item["n_correct"] = c
    result["items"] = items
    fileio.write_json(out, result)
    return result
