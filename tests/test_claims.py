"""Claim statistics and verdict rules on constructed cases."""
import math

import numpy as np
import pytest

from rlvr_lowrank import claims


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1, 1, 5), rng.normal(1, 1, 500)
    lo, hi = claims.bootstrap_ci(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = claims.bootstrap_ci(large)
    assert hi2 - lo2 < hi - lo and lo2 < 1 < hi2
    assert claims.bootstrap_ci([0.3]) == (0.3, 0.3)
    assert all(math.isnan(x) for x in claims.bootstrap_ci([]))


def test_t_interval_matches_scipy():
    from scipy import stats

    x = [0.1, 0.3, 0.2, 0.5]
    lo, hi = claims.t_interval(x)
    ref = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (lo, hi) == pytest.approx(ref)


def test_recovery_formula_and_zero_gain():
    assert claims.recovery(0.5, 0.2, 0.8) == pytest.approx(0.5)
    assert claims.recovery(0.8, 0.2, 0.8) == pytest.approx(1.0)
    assert math.isnan(claims.recovery(0.5, 0.3, 0.3))


def test_c1_verdicts():
    assert claims.verdict_c1([0.1, 0.12, 0.09], [0.01, -0.02, 0.0])["verdict"] == claims.HOLDS
    assert claims.verdict_c1([0.1, 0.12, 0.09], [0.2, 0.25, 0.3])["verdict"] == claims.FAILS  # test accuracy not comparable
    assert claims.verdict_c1([0.0, 0.01, -0.01], [0.0, 0.0, 0.0])["verdict"] == claims.FAILS  # reward not lower
    assert claims.verdict_c1([0.1, 0.1], [0.0, 0.0])["verdict"] == claims.INCONCLUSIVE  # too few seeds


def test_c0_verdicts():
    good = {"normmatch": [0.95, 0.97, 0.99], "random": [0.0, 0.02, -0.01]}
    assert claims.verdict_c0(good, [0.5, 0.5, 0.5])["verdict"] == claims.HOLDS
    assert claims.verdict_c0({**good, "random": [0.9, 0.95, 1.0]}, [0.5] * 3)["verdict"] == claims.FAILS
    assert claims.verdict_c0(good, [0.01, 0.02, 0.0])["verdict"] == claims.INCONCLUSIVE
