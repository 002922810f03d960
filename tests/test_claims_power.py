"""Power (claims/power.py): the MDE checked against Monte Carlo rejection rates of the test it describes
(not against its own formula), the "no variation over seeds" marker, the seeds needed, Wilson intervals."""
import math

import numpy as np
import pytest
from scipy import stats

from rlvr_lowrank.claims import power

N_SIM = 200_000  # the standard error of a rejection rate of 0.8 is 0.0009: ± 0.01 is 11 of them


@pytest.mark.parametrize("n,sd", [(3, 1.0), (5, 1.0), (3, 0.0938)])  # 0.0938: smollm2's Δreward over 3 seeds
def test_mde_rejects_80_percent_of_paired_experiments(n, sd):
    """Experiments of n seeds, normal per-seed differences with the given sd and true mean = MDE:
    ttest_1samp (two-sided, α = 0.05) rejects 0 in 80% ± 1% of them."""
    mde = power.min_detectable_effect(sd, n)
    rng = np.random.default_rng(n)
    x = rng.normal(mde, sd, size=(N_SIM, n))
    rate = float((stats.ttest_1samp(x, 0.0, axis=1).pvalue < 0.05).mean())
    assert rate == pytest.approx(0.80, abs=0.01)


@pytest.mark.parametrize("sd1,n1,sd2,n2", [(1.0, 3, 1.0, 3), (1.0, 5, 2.0, 8)])
def test_two_sample_mde_rejects_80_percent_of_welch_tests(sd1, n1, sd2, n2):
    mde = power.min_detectable_effect_two_sample(sd1, n1, sd2, n2)
    rng = np.random.default_rng(n1 + n2)
    a, b = rng.normal(mde, sd1, size=(N_SIM, n1)), rng.normal(0.0, sd2, size=(N_SIM, n2))
    rate = float((stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05).mean())
    assert rate == pytest.approx(0.80, abs=0.01)


def test_unpaired_mde_is_the_two_sample_one_with_equal_arms():
    assert power.min_detectable_effect(1.0, 4, paired=False) == power.min_detectable_effect_two_sample(1.0, 4, 1.0, 4)
    assert power.min_detectable_effect(1.0, 4, paired=False) > power.min_detectable_effect(1.0, 4)


def test_the_issue_numbers_for_smollm2_c1():
    """sd 0.094 over 3 seeds: MDE about 0.31, about 175 seeds for an effect of 0.02."""
    sd = power.sd_over_seeds([0.1, 0.0, -0.0875])
    assert sd == pytest.approx(0.0938, abs=1e-4)
    assert power.min_detectable_effect(sd, 3) == pytest.approx(0.306, abs=0.002)
    assert power.seeds_needed(0.02, sd) == 175


def test_no_variation_over_seeds_is_a_marker_not_zero():
    for mde in (power.min_detectable_effect(0.0, 3), power.min_detectable_effect_two_sample(0.0, 3, 0.0, 4)):
        assert mde == power.NO_VARIATION == "no variation over seeds" and power.is_no_variation(mde)
    assert not power.is_no_variation(0.0) and not power.is_no_variation(0.3)
    assert power.seeds_needed(0.02, 0.0) is None
    # one fraction written twice with different float rounding is one number
    assert power.sd_over_seeds([0.6785714285714286, 0.6785714285714285, 0.6785714285714286]) == 0.0
    assert power.min_detectable_effect(power.sd_over_seeds([0.5, 0.5, 0.5]), 3) == power.NO_VARIATION


def test_degenerate_inputs():
    assert power.min_detectable_effect(1.0, 1) == math.inf  # one seed: no test
    assert math.isnan(power.min_detectable_effect(float("nan"), 3))
    assert math.isnan(power.sd_over_seeds([0.3]))
    assert power.seeds_needed(0.0, 1.0) is None
    assert power.seeds_needed(float("nan"), 1.0) is None
    assert power.seeds_needed(1e-4, 1.0) is None  # more than MAX_SEEDS


def test_seeds_needed_is_the_smallest_n_reaching_the_power():
    for effect, sd in [(0.02, 0.0938), (0.15, 0.159), (1.0, 1.0), (3.0, 1.0)]:
        n = power.seeds_needed(effect, sd)
        assert power.power_one_sample(effect, sd, n) >= 0.8
        if n > 2:
            assert power.power_one_sample(effect, sd, n - 1) < 0.8
    n = power.seeds_needed(0.5, 1.0, paired=False)
    assert power.power_two_sample(0.5, 1.0, n, 1.0, n) >= 0.8 > power.power_two_sample(0.5, 1.0, n - 1, 1.0, n - 1)


def test_seeds_needed_is_monotone():
    by_effect = [power.seeds_needed(e, 1.0) for e in (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)]
    assert by_effect == sorted(by_effect, reverse=True) and by_effect[0] > by_effect[-1]
    by_sd = [power.seeds_needed(0.5, s) for s in (0.1, 0.3, 1.0, 3.0)]
    assert by_sd == sorted(by_sd) and by_sd[0] < by_sd[-1]
    by_power = [power.seeds_needed(0.5, 1.0, power=p) for p in (0.5, 0.8, 0.95)]
    assert by_power == sorted(by_power) and by_power[0] < by_power[-1]


def test_mde_shrinks_with_seeds_and_scales_with_sd():
    mdes = [power.min_detectable_effect(1.0, n) for n in (3, 5, 10, 30)]
    assert mdes == sorted(mdes, reverse=True)
    assert power.min_detectable_effect(0.2, 5) == pytest.approx(0.2 * power.min_detectable_effect(1.0, 5), rel=1e-6)
    # consistent with seeds_needed: at n = seeds_needed(MDE(n)) the power is reached again
    assert power.seeds_needed(power.min_detectable_effect(1.0, 5) * 1.0001, 1.0) == 5


def test_the_sd_uncertainty_quoted_for_three_seeds():
    """The docstring's 'a factor of several': the 95% interval of sd_true / sd_observed with 2 df."""
    lo, hi = np.sqrt(2 / stats.chi2.ppf(0.975, 2)), np.sqrt(2 / stats.chi2.ppf(0.025, 2))
    assert lo == pytest.approx(0.52, abs=0.01) and hi == pytest.approx(6.3, abs=0.05)


@pytest.mark.parametrize("k,n", [(0, 28), (1, 28), (19, 28), (27, 28), (28, 28), (2, 210), (105, 210), (0, 1), (1, 1)])
def test_wilson_interval_matches_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = power.wilson_interval(k, n)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_known_values_and_fraction():
    # 19 of 28 target matrices of tiny heavy-tailed; 2 of SmolLM2's 210
    assert power.fraction_interval(19 / 28, 28) == pytest.approx((0.4934, 0.8207), abs=1e-4)
    assert power.fraction_interval(0.009523809523809525, 210) == pytest.approx((0.0026, 0.0341), abs=1e-4)
    assert power.wilson_interval(0, 28)[0] == 0.0 and power.wilson_interval(28, 28)[1] == 1.0
    assert all(math.isnan(x) for x in power.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        power.wilson_interval(5, 4)
