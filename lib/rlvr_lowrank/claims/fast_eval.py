"""How the claim notebooks evaluate model variants: greedy accuracy with the kv sampler, answer
log-likelihoods with the kv scorer (sampling.scoring).

Why here and not in ``world.evaluate``: both are the same numbers as the plain paths (greedy completions
token for token: tests/test_sampler.py, 200 prompts; log-likelihoods to float rounding, within 1e-4 per item:
tests/test_scoring.py), about twice as fast on SmolLM2 in fp32 (docs/speed.md), and ``world.evaluate`` is part
of every training run's identity, so changing its defaults would make every stored run "earlier code".
A model the kv sampler does not support (e.g. a PEFT wrapper) is evaluated by the plain paths, with the
sampler's one-line warning.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..sampling import scoring
from ..world import evaluate
from ..world.tasks import Item

SAMPLER = "kv"
LOGP_BATCH = 64  # items per scoring chunk: the LM head runs on answer positions only, so memory stays small


def greedy_accuracy(model, tokenizer, items: Sequence[Item]) -> evaluate.EvalResult:
    """:func:`world.evaluate.greedy_accuracy` with the kv sampler (the same completions)."""
    return evaluate.greedy_accuracy(model, tokenizer, items, sampler=SAMPLER)


def answer_logprob(model, tokenizer, items: Sequence[Item], batch_size: int = LOGP_BATCH) -> np.ndarray:
    """:func:`world.evaluate.answer_logprob` (the summed log-probability of each item's reference completion and
    EOS given its prompt, tokenized the same way), computed by the kv scorer where the model is supported."""
    prompts = [tokenizer(evaluate.prompt_text(tokenizer, it))["input_ids"] for it in items]
    answers = [tokenizer(evaluate.reference_completion(tokenizer, it), add_special_tokens=False)["input_ids"]
               + [tokenizer.eos_token_id] for it in items]
    fast = scoring.completion_logprobs(model, prompts, answers, batch_size=batch_size)
    return fast if fast is not None else evaluate.answer_logprob(model, tokenizer, items, batch_size=batch_size)
