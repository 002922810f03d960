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


def test_base_targets_table_and_check_agree_and_flip_at_the_threshold():
    """notebook 00's table and check_targets read one definition: every row's "met" is check_targets' value,
    and a metric moved across its threshold flips exactly that target."""
    metrics = {"math_test_greedy": {"accuracy": 0.1}, "math_test_sampled": {"pass_at_k": {"1": 0.2, "16": 0.85}},
               "fact_greedy": {"accuracy": 0.95}, "skill_test_sampled": {"pass_at_k": {"1": 0.5}},
               "grpo_probe": {"test_greedy_after": {"accuracy": 0.6}}}
    met = pretrain.check_targets(metrics)
    assert all(met.values()) and [r[3] for r in pretrain.target_rows(metrics)] == list(met.values())
    metrics["math_test_sampled"]["pass_at_k"]["16"] = pretrain.BASE_TARGETS["math_pass16_min"] - 0.01
    met = pretrain.check_targets(metrics)
    assert [k for k, v in met.items() if not v] == ["math_pass@16>=0.8"]
    metrics["grpo_probe"]["test_greedy_after"]["accuracy"] = 0.96  # above probe_final_max, gain still >= 0.3
    missed = [k for k, v in pretrain.check_targets(metrics).items() if not v]
    assert missed == ["math_pass@16>=0.8", "probe_final<=0.95"]
