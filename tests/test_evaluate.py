"""pass@k against brute-force enumeration; Wilson intervals; generation determinism."""
import itertools
import math

import pytest

from rlvr_lowrank.world import evaluate


@pytest.mark.parametrize("n,c,k", [(n, c, k) for n in range(1, 9) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_equals_brute_force_enumeration(n, c, k):
    samples = [1] * c + [0] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in s) for s in subsets) / len(subsets)
    assert evaluate.pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_large_n_is_stable_and_rejects_bad_input():
    assert evaluate.pass_at_k(200, 1, 1) == pytest.approx(1 / 200)
    assert evaluate.pass_at_k(200, 0, 100) == 0.0
    assert evaluate.pass_at_k(200, 150, 100) == 1.0
    assert evaluate.pass_at_k(1000, 10, 50) == pytest.approx(1 - math.comb(990, 50) / math.comb(1000, 50), rel=1e-9)
    for bad in [(4, 5, 1), (4, 1, 0), (4, 1, 5), (4, -1, 1)]:
        with pytest.raises(ValueError):
            evaluate.pass_at_k(*bad)


def test_wilson_interval_contains_the_point_estimate():
    lo, hi = evaluate.wilson_interval(30, 100)
    assert lo < 0.3 < hi and hi - lo < 0.2
