"""benchmarks/bench_sampler.py's measurements run on the tiny model in seconds (one timed round each), so a
renamed library function breaks this test rather than a reader's ``make bench``; and what they check holds:
the same completions and the same log-likelihoods from both arms."""
import importlib.util

import pytest

from rlvr_lowrank import models, paths

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sampler", paths.ROOT / "benchmarks" / "bench_sampler.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    model, tok = models.load_model(paths.TINY_BASE)
    return mod, model.eval(), tok


def test_greedy_and_scoring_measurements_run_and_agree(bench):
    mod, model, tok = bench
    g = mod.bench_greedy(model, tok, "tiny", n_items=12, repeats=1)
    assert g["identical_completions"] and g["items"] == 12 and g["ratio_generate_to_kv"] > 0
    c = mod.bench_scoring(model, tok, "tiny", n_items=12, repeats=1)
    assert c["items"] == 12 and c["max_abs_difference_nats"] <= 1e-4 and c["ratio_plain_to_kv"] > 0


def test_sampling_measurement_runs_and_samples_the_same_completions(bench):
    mod, model, tok = bench
    s = mod.bench_sampling(model, tok, "tiny", repeats=1)
    assert s["sequences"] == 16 and all(s["same_completions_each_round"])
