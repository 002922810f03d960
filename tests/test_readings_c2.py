"""The C2 readings (claims.readings_c2) on constructed data with known answers: the random-direction control's
classes, its per-probe losses from score rows, and the forward-KL estimator against the exact KL of
one-token completions (computed from the logits) and against 0 for a model compared with itself."""
import copy

import numpy as np
import pytest
import torch

from rlvr_lowrank import models, paths
from rlvr_lowrank.claims import readings_c2
from rlvr_lowrank.world import evaluate, tasks

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_control_classes_follow_the_threshold_under_both_intervals():
    assert readings_c2.classify_control([0.10, 0.12, 0.11, 0.09, 0.10])["class"] == readings_c2.SPECIFIC
    assert readings_c2.classify_control([0.0, 0.01, -0.01, 0.0, 0.005])["class"] == readings_c2.NOT_LARGER
    assert readings_c2.classify_control([0.2, -0.2, 0.3, -0.3, 0.0])["class"] == readings_c2.UNDECIDED
    assert readings_c2.classify_control([0.2])["class"] == readings_c2.UNDECIDED  # one seed decides nothing
    # a mean above the threshold with an interval reaching below 0 is not "specific"
    assert readings_c2.classify_control([0.5, -0.3, 0.4, -0.2, 0.1])["class"] == readings_c2.UNDECIDED


def test_random_control_reads_losses_against_the_base_per_probe():
    rows, rand = [], []
    for s in range(4):
        rows += [{"seed": s, "model": "base", "fact_acc": 1.0, "skill_acc": 0.8},
                 {"seed": s, "model": "normmatch", "fact_acc": 0.8 + 0.01 * s, "skill_acc": 0.8}]
        rand.append({"seed": s, "model": "random", "fact_acc": 1.0, "skill_acc": 0.8})
    out = readings_c2.random_control(rows, rand)
    assert out["fact"]["loss_rank1"] == pytest.approx(0.185) and out["fact"]["loss_random"] == pytest.approx(0.0)
    assert out["fact"]["random_minus_rank1"]["mean"] == pytest.approx(0.185)
    assert out["fact"]["class"] == readings_c2.SPECIFIC
    assert out["skill"]["random_minus_rank1"]["values"] == [0.0] * 4 and out["skill"]["class"] == readings_c2.NOT_LARGER


@pytest.fixture(scope="module")
def tiny():
    model, tok = models.load_model(paths.TINY_BASE)
    return model.eval(), tok


def test_forward_kl_matches_the_exact_kl_of_one_token_completions(tiny):
    """One-token completions: the sequence KL is the next-token KL, exact from the two models' logits. The
    Monte Carlo estimate over 2,000 base samples lies within 4 standard errors of it; a model against
    itself gives exactly 0."""
    base, tok = tiny
    other = copy.deepcopy(base)
    with torch.no_grad():
        other.lm_head.weight.mul_(0.5)  # flatter next-token distributions: a KL well above 0.01 nats
    items = tasks.load_items("math", "rl_train")[:4]
    samples = readings_c2.base_samples(base, tok, items, n_samples=500, max_new_tokens=1)
    assert all(len(c) == 1 for c in samples[1])
    got = readings_c2.forward_kl(other, samples)
    exact = []
    with torch.inference_mode():
        for it in items:
            ids = torch.tensor([tok(evaluate.prompt_text(tok, it))["input_ids"]])
            p, q = (torch.log_softmax(m(input_ids=ids).logits[0, -1].double(), -1) for m in (base, other))
            exact.append(float((p.exp() * (p - q)).sum()))
    assert np.mean(exact) > 0.01
    assert abs(got["kl"] - np.mean(exact)) <= 4 * got["se"], (got, np.mean(exact))
    assert readings_c2.forward_kl(base, samples)["kl"] == 0.0
