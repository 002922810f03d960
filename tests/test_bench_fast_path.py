"""The fast-path benchmarks' own logic, in seconds on the tiny model: bench_fast_path's trainer arms train and
are timed (its SmolLM2 measurements are left to ``make bench``), its summary divides the right medians, and
bench_fast_curves' equivalence rule gives the three answers on cases whose answer is known."""
import sys

import pytest
import torch

from rlvr_lowrank import models, paths
from rlvr_lowrank.training import precision

sys.path.insert(0, str(paths.ROOT / "benchmarks"))
import bench_fast_curves  # noqa: E402
import bench_fast_path  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("arm", sorted(bench_fast_path.ARMS))
def test_each_arm_trains_and_is_timed(arm, tmp_path):
    torch.manual_seed(0)
    base, tok = models.load_model(paths.TINY_BASE)
    trainer, timer, gen, fast = bench_fast_path.make_trainer(arm, base, tok, 2, str(tmp_path), profile="smoke")
    trainer.train()
    assert len(timer.steps) == 2 and len(timer.optimizer) == 2 and len(gen) == 2  # one rollout per step
    assert all(0 < g < s for g, s in zip(gen, timer.steps))
    assert fast == (arm == "fast" and precision.cpu_bf16_feature() is not None)


def test_the_summary_divides_the_medians_of_each_phase():
    samples = {"today": {"step": [9.0, 10.0, 11.0], "generation": [2.0] * 3, "optimizer": [0.1] * 3},
               "profile": {"step": [8.0] * 3, "generation": [1.0] * 3, "optimizer": [0.1] * 3},
               "fast": {"step": [4.0, 5.0, 6.0], "generation": [1.0] * 3, "optimizer": [0.1] * 3}}
    s = bench_fast_path.summarise(samples)
    assert s["ratio_today_to_fast"] == pytest.approx(2.0)
    assert s["ratio_profile_to_fast"] == pytest.approx(1.6)
    assert s["median_seconds"]["fast"]["rest"] == pytest.approx(5.0 - 1.0 - 0.1)
    assert s["ratio_by_phase"]["generation"] == pytest.approx(2.0)


def test_the_equivalence_rule_of_the_learning_curves():
    margin = bench_fast_curves.MARGIN
    assert bench_fast_curves.judge([0.5, 0.6, 0.7], [0.51, 0.61, 0.70])["verdict"] == "equivalent"
    far = bench_fast_curves.judge([0.5, 0.6, 0.7], [0.5 + 4 * margin, 0.61 + 4 * margin, 0.7 + 4 * margin])
    assert far["verdict"] == "not equivalent" and far["interval"][0] > margin
    wide = bench_fast_curves.judge([0.5, 0.6, 0.7], [0.5, 0.6 + 3 * margin, 0.7 - 2 * margin])
    assert wide["verdict"] == "inconclusive" and wide["interval"][0] < -margin < margin < wide["interval"][1]


def test_the_greedy_floor_counts_a_shared_prompt_once_and_every_answer_token():
    """greedy_floor's least work: a second copy of the same item adds only its last prompt token (the rest is
    the shared prefix) and its own fed-back answer tokens to the decoder's work, and its whole answer to the
    LM head's; the floor is that work at the measured fp32 rate."""
    from rlvr_lowrank.world import tasks

    torch.set_num_threads(1)
    base, tok = models.load_model(paths.TINY_BASE)
    item = tasks.load_items("math", "test")[0]
    one = bench_fast_path.greedy_floor(base, tok, [item], 1.0)
    two = bench_fast_path.greedy_floor(base, tok, [item, item], 1.0)
    n = one["answer_tokens"]
    assert n >= 1 and two["answer_tokens"] == 2 * n
    assert two["body_tokens"] - one["body_tokens"] == 1 + (n - 1)
    assert one["floor_seconds_fp32"] == pytest.approx(one["gflop_min"] / one["matmul_gflops_fp32"])
    assert one["max_ratio_generate_to_fp32"] == pytest.approx(1.0 / one["floor_seconds_fp32"])
