"""Pretraining: a short run lowers the loss and is deterministic for a seed."""
import pytest

from rlvr_lowrank.models import pretrain


@pytest.mark.slow
def test_twenty_steps_lower_the_loss_deterministically():
    cfg = pretrain.PretrainConfig(steps=20, batch_size=16, warmup=5, seed=7)
    _, _, losses = pretrain.pretrain(cfg, progress=False)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5
    _, _, again = pretrain.pretrain(cfg, progress=False)
    assert again == losses


def test_corpus_is_seeded():
    a = pretrain.Corpus(pretrain.PretrainConfig(seed=1))
    b = pretrain.Corpus(pretrain.PretrainConfig(seed=1))
    c = pretrain.Corpus(pretrain.PretrainConfig(seed=2))
    sa = [a.sample() for _ in range(50)]
    assert sa == [b.sample() for _ in range(50)]
    assert sa != [c.sample() for _ in range(50)]
