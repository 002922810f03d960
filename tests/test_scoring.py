"""The kv scorer (sampling.scoring, used by the claim notebooks through claims.fast_eval) against the plain
teacher-forced forward of ``world.evaluate.answer_logprob``: the same per-item log-likelihoods within 1e-4
(tolerance fixed before measuring), with and without a shared prompt prefix, at any chunk size; its refusals."""
import numpy as np
import pytest
import torch

from rlvr_lowrank import models, paths
from rlvr_lowrank.claims import fast_eval
from rlvr_lowrank.sampling import scoring
from rlvr_lowrank.world import evaluate, tasks

pytestmark = pytest.mark.usefixtures("one_thread")
TOL = 1e-4  # per item, in nats: float rounding of a ~10-token sum, far below any difference C2 reads


@pytest.fixture(scope="module")
def tiny():
    model, tok = models.load_model(paths.TINY_BASE)
    return model.eval(), tok


def _items():
    return (tasks.spread_subset(tasks.load_items("math", "test"), 100) + tasks.load_items("fact")[:50]
            + tasks.spread_subset(tasks.load_items("skill", "test"), 50))


def test_answer_logprobs_match_the_plain_forward_on_200_items(tiny):
    model, tok = tiny
    items = _items()
    ref = evaluate.answer_logprob(model, tok, items)
    for batch in (7, 64):  # a chunk boundary inside the set, and the default
        mine = fast_eval.answer_logprob(model, tok, items, batch_size=batch)
        assert mine.shape == ref.shape == (200,)
        assert np.abs(mine - ref).max() <= TOL, batch
    assert ref.std() > 1.0  # the items differ: a scorer that returned one value for all would fail above


def test_a_long_shared_prefix_is_computed_once_and_changes_nothing(tiny):
    """Prompts that share a 10-character head (as chat prompts share their system turn): the same numbers as the
    plain forward of the full sequences, and the same as the scorer without the shared prefix."""
    model, tok = tiny
    items = tasks.spread_subset(tasks.load_items("math", "test"), 40)
    head = tok("Q:1+1=2 Q:")["input_ids"]
    prompts = [head + tok(it.prompt)["input_ids"] for it in items]
    answers = [tok(evaluate.reference_completion(tok, it), add_special_tokens=False)["input_ids"]
               + [tok.eos_token_id] for it in items]
    assert scoring._common_prefix(prompts) >= len(head)
    seqs = [p + a for p, a in zip(prompts, answers)]
    width = max(map(len, seqs))
    ids = torch.full((len(seqs), width), tok.pad_token_id)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        ids[i, :len(s)], mask[i, :len(s)] = torch.tensor(s), 1
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float()[:, :-1], -1)
    ref = [float(logp[i, len(p) - 1:len(p) + len(a) - 1].gather(-1, torch.tensor(a)[:, None]).sum())
           for i, (p, a) in enumerate(zip(prompts, answers))]
    mine = scoring.completion_logprobs(model, prompts, answers, batch_size=16)
    alone = np.concatenate([scoring.completion_logprobs(model, [p], [a]) for p, a in zip(prompts[:5], answers[:5])])
    assert np.abs(mine - np.asarray(ref)).max() <= TOL
    assert np.abs(alone - mine[:5]).max() <= TOL  # a single prompt: no shared prefix at all


def test_bad_input_is_a_clear_error_and_another_architecture_is_left_to_the_caller(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="at least one token"):
        scoring.completion_logprobs(model, [[1, 2]], [[]])
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        scoring.completion_logprobs(model, [[1], [2]], [[3]])
    with pytest.raises(ValueError, match="max_cache_len"):
        scoring.KVScorer(model, max_cache_len=4).completion_logprobs([[1, 2, 3]], [[4, 5]])

    class Wrapped(torch.nn.Module):  # any other class name: not an architecture the kv sampler knows
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
    assert scoring.completion_logprobs(Wrapped(model), [[1, 2]], [[3]]) is None
