"""Evaluation: batched greedy accuracy, the unbiased pass@k estimator, answer log-likelihoods.

Every function takes a model, its tokenizer and a list of :class:`tasks.Item` and returns numbers
*and* the raw completions, so a notebook can show what the model actually wrote.

Usage::

    model, tok = models.load_model()
    res = greedy_accuracy(model, tok, tasks.load_items("math", "test"))
    res.accuracy, res.completions[:3]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from .. import sampling as kv_sampling
from . import chat_tasks, rewards, tasks
from .tasks import Item

# Completion budgets per task: for the tiny world characters == tokens (the longest correct math chain is
# 62 chars); for a real chat model (chat_tasks) SmolLM2 tokens -- "13 + 7 = 20" is 8 of them.
MAX_NEW_TOKENS = {"math": 64, "fact": 8, "skill": 12, "chat_math": 12, "chat_fact": 16, "chat_skill": 12}


def prompt_text(tokenizer, item: Item) -> str:
    """What the model is given for an item: the chat-rendered user turn for a chat task, else the prompt."""
    return chat_tasks.render(tokenizer, item) if item.task in chat_tasks.CHAT_TASKS else item.prompt


def reference_completion(tokenizer, item: Item) -> str:
    """The correct completion whose log-likelihood :func:`answer_logprob` scores."""
    return (chat_tasks.reference_completion(item) if item.task in chat_tasks.CHAT_TASKS
            else tasks.completion_for(item, correct=True))


@dataclass
class EvalResult:
    accuracy: float
    n: int
    correct: list[bool]
    completions: list[str]
    by_difficulty: dict[int, float] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "n": self.n,
                "by_difficulty": {str(k): v for k, v in self.by_difficulty.items()}}


@dataclass
class PassAtKResult:
    pass_at_k: dict[int, float]
    n_samples: int
    n_correct: list[int]  # per item, out of n_samples
    completions: list[list[str]]
    by_difficulty: dict[int, dict[int, float]] = field(default_factory=dict)

    def summary(self) -> dict:
        return {"pass_at_k": {str(k): v for k, v in self.pass_at_k.items()}, "n_samples": self.n_samples,
                "by_difficulty": {str(d): {str(k): v for k, v in m.items()} for d, m in self.by_difficulty.items()}}


def _max_new_tokens(items: Sequence[Item]) -> int:
    return max(MAX_NEW_TOKENS[it.task] for it in items)


@torch.inference_mode()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, do_sample: bool = False,
             num_samples: int = 1, temperature: float = 1.0, batch_size: int = 512, seed: int = 0,
             sampler: str = "generate", sampling: dict | None = None) -> list[list[str]]:
    """Completions for each prompt (``num_samples`` of them), decoded without special tokens.

    Sampling uses a forked RNG seeded with ``seed`` so evaluation never perturbs the caller's RNG
    stream (a training run evaluating mid-way must stay reproducible). It draws from the full distribution
    at ``temperature`` (top_k 0, top_p 1) unless ``sampling`` sets other ``generate`` arguments (top_k, top_p,
    min_p, repetition_penalty: a training run's own decoding, training.sampled_eval). ``sampler="kv"``: the
    fast sampler (sampling.kv_sampler; each prompt prefilled once for its ``num_samples`` completions), with
    the same greedy completions and the same sampling distribution (tests/test_sampler.py), for the full
    distribution at ``temperature`` only; ``"generate"``: transformers' ``model.generate``.
    """
    if not do_sample and num_samples != 1:
        raise ValueError("greedy decoding gives one completion per prompt; use do_sample=True for num_samples > 1")
    if sampler not in kv_sampling.SAMPLERS:
        raise ValueError(f"sampler must be one of {kv_sampling.SAMPLERS}, got {sampler!r}")
    neutral = {"top_k": 0, "top_p": 1.0, "min_p": None, "repetition_penalty": 1.0}
    if sampler == "kv" and do_sample and any(v != neutral.get(k, v) for k, v in (sampling or {}).items()):
        sampler = "generate"  # the kv sampler draws from the full distribution only
    was_training = model.training
    model.eval()
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    out: list[list[str]] = []
    prompts_per_batch = max(1, batch_size // num_samples)
    gen_kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, num_return_sequences=num_samples,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if do_sample:
        gen_kwargs.update({"temperature": temperature, "top_k": 0, "top_p": 1.0, **(sampling or {})})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for start in range(0, len(prompts), prompts_per_batch):
            chunk = list(prompts[start:start + prompts_per_batch])
            if sampler == "kv":  # the same ids as the padded batch below, each repeated num_samples times
                ids = [p for p in tokenizer(chunk)["input_ids"] for _ in range(num_samples)]
                done = kv_sampling.sample(model, ids, max_new_tokens, [tokenizer.eos_token_id], tokenizer.pad_token_id,
                                       do_sample=do_sample, temperature=temperature)
                texts = tokenizer.batch_decode(done.tokens, skip_special_tokens=True)
            else:
                enc = tokenizer(chunk, return_tensors="pt", padding=True).to(device)
                seqs = model.generate(**enc, **gen_kwargs)
                texts = tokenizer.batch_decode(seqs[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            for i in range(len(chunk)):
                out.append(texts[i * num_samples:(i + 1) * num_samples])
    if was_training:
        model.train()
    return out


def _by_difficulty(items: Sequence[Item], values: Sequence[float]) -> dict[int, float]:
    groups: dict[int, list[float]] = {}
    for it, v in zip(items, values):
        groups.setdefault(it.difficulty, []).append(float(v))
    return {d: float(np.mean(vs)) for d, vs in sorted(groups.items())}


def greedy_accuracy(model, tokenizer, items: Sequence[Item], batch_size: int = 512,
                    sampler: str = "generate") -> EvalResult:
    """Exact-match accuracy of greedy decoding (the verifier of each item's task); ``sampler`` as in
    :func:`generate` (``"kv"``: the fast sampler, same completions)."""
    if not items:
        raise ValueError("greedy_accuracy needs at least one item")
    comps = [c[0] for c in generate(model, tokenizer, [prompt_text(tokenizer, it) for it in items],
                                    _max_new_tokens(items), batch_size=batch_size, sampler=sampler)]
    correct = [rewards.score(it.task, c, it.answer) == 1.0 for it, c in zip(items, comps)]
    return EvalResult(float(np.mean(correct)), len(items), correct, comps, _by_difficulty(items, correct))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021, eq. 1): 1 - C(n-c, k) / C(n, k), computed as a stable product."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def sampled_pass_at_k(model, tokenizer, items: Sequence[Item], n_samples: int = 16,
                      ks: Sequence[int] = (1, 2, 4, 8, 16), temperature: float = 1.0, seed: int = 0,
                      batch_size: int = 1024, sampler: str = "generate") -> PassAtKResult:
    """pass@k from ``n_samples`` temperature samples per item (pass@1 = mean per-item success rate);
    ``sampler`` as in :func:`generate`."""
    ks = [k for k in ks if k <= n_samples]
    comps = generate(model, tokenizer, [prompt_text(tokenizer, it) for it in items], _max_new_tokens(items),
                     do_sample=True, num_samples=n_samples, temperature=temperature, batch_size=batch_size, seed=seed,
                     sampler=sampler)
    n_correct = [int(sum(rewards.score(it.task, c, it.answer) for c in cs)) for it, cs in zip(items, comps)]
    per_item = {k: [pass_at_k(n_samples, c, k) for c in n_correct] for k in ks}
    result = {k: float(np.mean(v)) for k, v in per_item.items()}
    by_diff = {}
    for d in sorted({it.difficulty for it in items}):
        idx = [i for i, it in enumerate(items) if it.difficulty == d]
        by_diff[d] = {k: float(np.mean([per_item[k][i] for i in idx])) for k in ks}
    return PassAtKResult(result, n_samples, n_correct, comps, by_diff)


def sampled_accuracy(model, tokenizer, items: Sequence[Item], num_samples: int, temperature: float = 1.0,
                     max_new_tokens: int | None = None, sampling: dict | None = None, seed: int = 0,
                     batch_size: int = 512, sampler: str = "generate") -> EvalResult:
    """Accuracy of sampled completions: ``num_samples`` per item at ``temperature`` (and ``sampling``, see
    :func:`generate`), scored by the item's verifier; ``accuracy`` = the mean over all samples (the mean
    per-item success rate), ``correct`` / ``completions`` flattened item by item. ``sampler`` as in
    :func:`generate`."""
    if not items:
        raise ValueError("sampled_accuracy needs at least one item")
    comps = generate(model, tokenizer, [prompt_text(tokenizer, it) for it in items],
                     max_new_tokens or _max_new_tokens(items), do_sample=True, num_samples=num_samples,
                     temperature=temperature, batch_size=batch_size, seed=seed, sampling=sampling, sampler=sampler)
    per_item = [[rewards.score(it.task, c, it.answer) == 1.0 for c in cs] for it, cs in zip(items, comps)]
    flat = [ok for oks in per_item for ok in oks]
    return EvalResult(float(np.mean(flat)), len(items), flat, [c for cs in comps for c in cs],
                      _by_difficulty(items, [float(np.mean(oks)) for oks in per_item]))


@torch.inference_mode()
def answer_logprob(model, tokenizer, items: Sequence[Item], batch_size: int = 256) -> np.ndarray:
    """Per item, the summed log-probability of the correct completion (+ EOS) given the prompt.

    Finer than exact match, for C2's knowledge probe: a model that still "knows" a fact but no longer
    ranks it first keeps a high log-likelihood.
    """
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        seqs, prompt_lens = [], []
        for it in chunk:
            p = tokenizer(prompt_text(tokenizer, it))["input_ids"]
            c = tokenizer(reference_completion(tokenizer, it), add_special_tokens=False)["input_ids"]
            seqs.append(p + c + [tokenizer.eos_token_id])
            prompt_lens.append(len(p))
        width = max(map(len, seqs))
        ids = torch.full((len(seqs), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):  # right padding keeps positions identical to unpadded sequences
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, :len(s)] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        for i, s in enumerate(seqs):
            scores.append(float(logp[i, prompt_lens[i] - 1:len(s) - 1].sum()))
    return np.asarray(scores)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a binomial proportion (used to size evaluation sets)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (centre - half, centre + half)
