"""Teacher-forced scoring of given completions, fast: log p(completion | prompt) summed per item.

Why: C2 scores the log-likelihood of the reference answer of every probe item under every model variant.
The plain way (``world.evaluate.answer_logprob``) runs the whole prompt + answer through the model and
takes a log-softmax over the full vocabulary at *every* position, although only the few answer tokens
are scored. With SmolLM2's chat prompts that is about 55 positions per item, of which 27 are the system
turn shared by every prompt and about 6 are the answer, and each position pays for the 49,152-token LM head.
:class:`KVScorer` computes the shared prefix once (as the kv sampler does), runs only each item's
remaining prompt suffix and answer over that cached prefix, and applies the LM head to the answer
positions alone. It uses the kv sampler's arithmetic (transformers' Llama, operation for operation), so
the numbers are those of the plain forward to float rounding; tests/test_scoring.py holds it to 1e-4 per
item against ``world.evaluate.answer_logprob``.

Supported: what :class:`~rlvr_lowrank.sampling.kv_sampler.KVSampler` supports (Llama architectures with a
static RoPE); :func:`completion_logprobs` returns None for anything else, so the caller can take the plain
path. This module is not imported by training (a run's identity does not depend on it).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .kv_sampler import KVSampler, _common_prefix, unsupported_reason


class KVScorer(KVSampler):
    """A :class:`KVSampler` that also scores given completions (it holds references, not copies)."""

    @torch.inference_mode()
    def completion_logprobs(self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                            batch_size: int = 64) -> np.ndarray:
        """Per item i, Σ_j log p(completion_ids[i][j] | prompt_ids[i] + completion_ids[i][:j]) (float64 array).

        The longest prefix common to all prompts (at most the shortest prompt minus one token) is computed
        once; then each chunk of ``batch_size`` items runs its suffixes, right-padded, over that prefix.
        """
        prompts = [list(map(int, p)) for p in prompt_ids]
        answers = [list(map(int, c)) for c in completion_ids]
        if len(prompts) != len(answers):
            raise ValueError(f"{len(prompts)} prompts but {len(answers)} completions")
        if any(len(p) == 0 for p in prompts) or any(len(c) == 0 for c in answers):
            raise ValueError("every prompt and every completion needs at least one token")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        longest = max(len(p) + len(c) for p, c in zip(prompts, answers)) if prompts else 0
        if longest > self.max_cache_len:
            raise ValueError(f"a prompt plus completion of {longest} tokens is longer than the model's "
                             f"context (max_cache_len={self.max_cache_len})")
        if not prompts:
            return np.zeros(0)
        embed = self.model.model.embed_tokens.weight
        dev, dtype = embed.device, embed.dtype
        c = _common_prefix(prompts) if len(prompts) > 1 else 0
        cos_t, sin_t = self._rope_tables(longest)
        prefix_cache = None
        if c:  # keys/values of the shared prefix, one row, broadcast into every chunk's cache below
            shape = (1, self.n_kv, c, self.head_dim)
            prefix_cache = ([torch.empty(shape, dtype=dtype, device=dev) for _ in self.model.model.layers],
                            [torch.empty(shape, dtype=dtype, device=dev) for _ in self.model.model.layers])
            ids = torch.tensor([prompts[0][:c]], device=dev)
            self._layers(F.embedding(ids, embed), cos_t[None, None, :c], sin_t[None, None, :c],
                         self._prefill_mask(torch.ones(1, c, dtype=torch.bool, device=dev)), cache=prefix_cache)
        out = np.empty(len(prompts))
        for start in range(0, len(prompts), batch_size):
            chunk = range(start, min(start + batch_size, len(prompts)))
            out[start:chunk.stop] = self._chunk(c, prefix_cache, cos_t, sin_t,
                                                [prompts[i] for i in chunk], [answers[i] for i in chunk])
        return out

    def _chunk(self, c, prefix_cache, cos_t, sin_t, prompts, answers) -> np.ndarray:
        embed = self.model.model.embed_tokens.weight
        dev, dtype = embed.device, embed.dtype
        rests = [p[c:] + a for p, a in zip(prompts, answers)]
        n, w = len(rests), max(map(len, rests))
        ids = torch.zeros(n, w, dtype=torch.long, device=dev)  # right padding: real positions are contiguous
        real = torch.zeros(n, w, dtype=torch.bool, device=dev)
        for i, r in enumerate(rests):
            ids[i, :len(r)] = torch.tensor(r, device=dev)
            real[i, :len(r)] = True
        cos, sin = cos_t[None, None, c:c + w], sin_t[None, None, c:c + w]
        if c:
            shape = (n, self.n_kv, c + w, self.head_dim)
            cache = ([torch.empty(shape, dtype=dtype, device=dev) for _ in self.model.model.layers],
                     [torch.empty(shape, dtype=dtype, device=dev) for _ in self.model.model.layers])
            for mine, shared in zip(cache[0] + cache[1], prefix_cache[0] + prefix_cache[1]):
                mine[:, :, :c] = shared
            h = self._layers(F.embedding(ids, embed), cos, sin, self._prefill_mask(real, before=c), at=c, cache=cache)
        else:
            h = self._layers(F.embedding(ids, embed), cos, sin, self._prefill_mask(real))
        # the hidden state at suffix index j predicts token j + 1: answer i occupies suffix indices
        # len(p) - c .. len(p) - c + len(a) - 1, so its predictors start one earlier (>= 0 since c < len(p))
        rows, cols, targets = [], [], []
        for i, (p, a) in enumerate(zip(prompts, answers)):
            first = len(p) - c - 1
            rows += [i] * len(a)
            cols += range(first, first + len(a))
            targets += a
        rows = torch.tensor(rows, device=dev)  # the item each scored position belongs to
        hid = h[rows, torch.tensor(cols, device=dev)]
        logp = torch.log_softmax(self._logits(hid), dim=-1)
        picked = logp.gather(-1, torch.tensor(targets, device=dev)[:, None]).squeeze(-1).double()
        sums = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, rows, picked)
        return sums.cpu().numpy()


def completion_logprobs(model, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]],
                        batch_size: int = 64) -> np.ndarray | None:
    """:meth:`KVScorer.completion_logprobs` for a supported model; None for another architecture (the
    caller takes its plain path and says so)."""
    if unsupported_reason(model) is not None:
        return None
    was_training = model.training
    model.eval()
    try:
        return KVScorer(model).completion_logprobs(prompt_ids, completion_ids, batch_size=batch_size)
    finally:
        if was_training:
            model.train()
