"""The CSN bootstrap goodness of fit (analysis.goodness_of_fit) on data with a known answer: a sample drawn
from a pure power law is plausible (p >= 0.1), an exponential sample of the same size is not; a lognormal's far
tail passes (the known limit of the test: it cannot tell a power law from another heavy-ish tail); p is
reproducible from its seed and counts only synthetic fits that succeeded."""
import numpy as np
import pytest

from rlvr_lowrank.analysis import goodness_of_fit


def _power_law(n, alpha, xmin, rng):
    return xmin * (1.0 - rng.random(n)) ** (-1.0 / (alpha - 1.0))


def test_a_power_law_sample_is_plausible_and_light_tails_are_not():
    rng = np.random.default_rng(1)
    pl = goodness_of_fit.bootstrap_gof(_power_law(1000, 2.5, 1.0, rng), n_boot=60)
    assert pl["plausible"] and pl["p"] >= 0.1 and pl["alpha"] == pytest.approx(2.5, abs=0.25)
    expo = goodness_of_fit.bootstrap_gof(rng.exponential(1.0, 1000) + 1.0, n_boot=60)
    assert not expo["plausible"] and expo["p"] < 0.1
    logn = goodness_of_fit.bootstrap_gof(rng.lognormal(0.0, 0.3, 1000), n_boot=60)
    assert logn["plausible"] and logn["alpha"] > 6  # plausible, but outside the heavy-tailed α band


def test_p_is_reproducible_and_bad_input_is_refused():
    x = _power_law(300, 3.0, 0.5, np.random.default_rng(2))
    a, b = (goodness_of_fit.bootstrap_gof(x, n_boot=30, seed=7) for _ in range(2))
    assert a == b and a["n_boot"] == 30 and 0.0 <= a["p"] <= 1.0
    with pytest.raises(ValueError, match="n_boot must be >= 1"):
        goodness_of_fit.bootstrap_gof(x, n_boot=0)
    failed = goodness_of_fit.bootstrap_gof(np.ones(5))
    assert failed["n_boot"] == 0 and np.isnan(failed["p"]) and not failed["plausible"]
