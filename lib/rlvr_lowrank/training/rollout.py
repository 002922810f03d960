"""``train.sampler: kv``: the fast sampler (sampling.kv_sampler) as TRL's ``rollout_func``.

What TRL 1.16's ``GRPOTrainer._generate`` does with it (read from its source and pinned by
tests/test_sampler.py): it calls ``rollout_func(prompts, trainer)`` with this process's slice of the
batch, in which each prompt appears ``num_generations`` times in a row (the RepeatSampler's order; TRL's
docstring says "no duplication", the code passes the repeated slice), and expects one completion per entry.
It then decodes the completions, computes the rewards and the loss exactly as on its own path.

``logprobs`` is returned as None: TRL uses sampling log-probabilities only for vLLM's importance-sampling
correction and for ``off_policy_mask_threshold``; without vLLM (refused with this sampler by
check_sampler) and with ``num_iterations: 1`` the old log-probabilities are the loss forward's own,
detached. Nothing of the trainer is written; it reads ``processing_class``, ``args.chat_template_kwargs``,
``eos_token_ids``, ``max_completion_length`` and ``temperature``.
"""
from __future__ import annotations

import torch
from trl.data_utils import is_conversational

from .. import sampling
from .config import ConfigError

# GRPOConfig fields the kv sampler (train.sampler: kv) implements only at these values: it samples from
# softmax(logits / temperature) with no other logits processor, on the CPU, without vLLM
KV_SAMPLER_NEEDS = {"top_k": (0, None), "top_p": (1.0,), "min_p": (None,), "repetition_penalty": (1.0,),
                    "generation_kwargs": (None, {}), "use_vllm": (False,),
                    "use_transformers_continuous_batching": (False,)}


def prompt_token_ids(prompts: list, tokenizer, chat_template_kwargs: dict | None = None) -> list[list[int]]:
    """Token ids of the prompts as TRL's own path makes them: ``tokenizer(text=...)`` for plain text,
    ``apply_chat_template(add_generation_prompt=True)`` for conversational ``[{role, content}]`` prompts."""
    if is_conversational({"prompt": prompts[0]}):  # the test TRL's _generate applies
        enc = tokenizer.apply_chat_template(conversation=prompts, add_generation_prompt=True, tokenize=True,
                                            return_dict=True, **(chat_template_kwargs or {}))
        return [list(ids) for ids in enc["input_ids"]]
    return [list(ids) for ids in tokenizer(text=prompts)["input_ids"]]


def kv_rollout(prompts: list, trainer) -> dict:
    """TRL ``rollout_func``: one sampled completion per entry of ``prompts`` (identical prompts prefilled once)."""
    tok = trainer.processing_class
    prompt_ids = prompt_token_ids(prompts, tok, trainer.args.chat_template_kwargs)
    model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad():
        done = sampling.sample(model, prompt_ids, trainer.max_completion_length, trainer.eos_token_ids,
                               tok.pad_token_id, do_sample=True, temperature=trainer.temperature)
    return {"prompt_ids": prompt_ids, "completion_ids": done.lists(), "logprobs": None}


def check_sampler(cfg) -> None:
    """``train.sampler`` of a config.Experiment: "generate" (default) or "kv"; "kv" only with the sampling settings
    it implements (config.validate calls it)."""
    t = cfg.train
    value = t.get("sampler", "generate")
    if value not in sampling.SAMPLERS:
        raise ConfigError(f"train.sampler must be one of {list(sampling.SAMPLERS)}, got {value!r}")
    if value != "kv":
        return
    if cfg.device != "cpu":
        raise ConfigError("train.sampler: kv is the CPU sampler; on a GPU use vLLM (use_vllm) or generate")
    for key, allowed in KV_SAMPLER_NEEDS.items():
        if key in t and t[key] not in allowed:
            raise ConfigError(f"train.sampler: kv samples with {key} in {list(allowed)} only, got {key}: {t[key]!r}; "
                              "use train.sampler: generate for other sampling settings")
