"""sampling: a fast sampler for Llama-architecture causal LMs (rollouts and greedy evaluation).

* ``kv_sampler`` -- :class:`KVSampler` / :func:`sample`: each distinct prompt prefilled once and shared by
  its completions, then a decode loop over a preallocated KV cache, reading the model's own parameters;
  other architectures fall back to ``model.generate``;
* ``bf16_weights`` -- :class:`Bf16Weights`: optional bf16 weights for it, ``hi + lo`` so no update is lost;
* ``scoring`` -- :class:`KVScorer`: teacher-forced log-likelihoods of given completions, with the sampler's
  arithmetic and a shared prompt prefix computed once (the claim notebooks' scoring; training never imports it).

May import: the foundations only, besides torch; ``world`` (evaluation) and ``training`` (rollouts) use it.
"""
from .bf16_weights import Bf16Weights
from .kv_sampler import Completions, KVSampler, sample, unsupported_reason

SAMPLERS = ("generate", "kv")  # the values of ``train.sampler`` and of evaluate.generate(sampler=...)

__all__ = ["SAMPLERS", "Bf16Weights", "Completions", "KVSampler", "sample", "unsupported_reason"]
