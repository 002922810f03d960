"""Shared claim statistics: bootstrap and t intervals, recovery, and the "last fraction of steps" mean."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from rlvr_lowrank.claims import stats


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(1, 1, 5), rng.normal(1, 1, 500)
    lo, hi = stats.bootstrap_ci(small)
    assert lo <= small.mean() <= hi
    lo2, hi2 = stats.bootstrap_ci(large)
    assert hi2 - lo2 < hi - lo and lo2 < 1 < hi2
    assert stats.bootstrap_ci([0.3]) == (0.3, 0.3)
    assert all(math.isnan(x) for x in stats.bootstrap_ci([]))
    assert stats.bootstrap_ci([1.0, float("nan"), 1.0]) == (1.0, 1.0)  # NaN values are dropped


def test_t_interval_matches_scipy():
    x = [0.1, 0.3, 0.2, 0.5]
    lo, hi = stats.t_interval(x)
    ref = scipy_stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=scipy_stats.sem(x))
    assert (lo, hi) == pytest.approx(ref)
    assert all(math.isnan(v) for v in stats.t_interval([0.4]))


def test_summarize_shape():
    s = stats.summarize([1, 2, 3])
    assert s["mean"] == 2.0 and s["n"] == 3 and s["values"] == [1.0, 2.0, 3.0]
    assert s["ci"][0] <= 2.0 <= s["ci"][1] and set(s) == {"mean", "ci", "t_ci", "n", "values"}


def test_recovery_formula_and_zero_gain():
    assert stats.recovery(0.5, 0.2, 0.8) == pytest.approx(0.5)
    assert stats.recovery(0.8, 0.2, 0.8) == pytest.approx(1.0)
    assert math.isnan(stats.recovery(0.5, 0.3, 0.3))


@pytest.mark.parametrize("n, start", [(6, 4), (60, 45), (150, 112), (8, 6), (3, 2), (1, 0)])
def test_last_steps_start_is_the_last_quarter_and_at_least_one_step(n, start):
    assert stats.last_steps_start(n) == start


def test_last_fraction_mean_known_answer():
    m = pd.DataFrame({"step": range(1, 61), "reward": [0.0] * 45 + [1.0] * 15})
    assert stats.last_fraction_mean(m) == 1.0  # exactly the last 15 of 60 steps
    m = pd.DataFrame({"step": range(1, 9), "reward": [s / 10 for s in range(1, 9)]})
    assert stats.last_fraction_mean(m) == pytest.approx((0.7 + 0.8) / 2)
    # a shorter paired run sets where the window starts (after step 4 of 6); the window runs to the end
    assert stats.last_fraction_mean(m, n_steps=6) == pytest.approx((0.5 + 0.6 + 0.7 + 0.8) / 4)
    assert stats.last_fraction_mean(m, fraction=0.5) == pytest.approx((0.5 + 0.6 + 0.7 + 0.8) / 4)


def test_interval_formatters_write_one_form():
    assert stats.fmt_pair(0.1234, 0.5678) == "[0.123, 0.568]"
    assert stats.fmt_pair(1.5e-4, 2.5e-3, 3, "g") == "[0.00015, 0.0025]"
    assert stats.fmt_mean_ci({"mean": 0.5, "ci": [0.25, 0.75]}) == "0.50 [0.25, 0.75]"
    # a summary of one seed has no interval: the notebooks print nan, as they did before the formatter
    assert stats.fmt_mean_ci({"mean": float("nan"), "ci": [float("nan"), float("nan")]}) == "nan [nan, nan]"
