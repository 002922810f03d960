"""sampling: a fast sampler for Llama-architecture causal LMs (rollouts and greedy evaluation).

* ``kv_sampler`` -- :class:`KVSampler` / :func:`sample`: each distinct prompt prefilled once and shared by
  its completions, then a decode loop over a preallocated KV cache, reading the model's own parameters;
  other architectures fall back to ``model.generate``. Optional bf16 weights (:class:`Bf16Weights`).

May import: nothing of the project (only torch); ``world`` (evaluation) and ``training`` (rollouts) use it.
"""
from .kv_sampler import Bf16Weights, Completions, KVSampler, sample, unsupported_reason

SAMPLERS = ("generate", "kv")  # the values of ``train.sampler`` and of evaluate.generate(sampler=...)

__all__ = ["SAMPLERS", "Bf16Weights", "Completions", "KVSampler", "sample", "unsupported_reason"]
