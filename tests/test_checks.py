"""checks.integer: one wording for an integer argument outside its range, in every layer that uses it."""
import pytest

from rlvr_lowrank import checks
from rlvr_lowrank.training.config import ConfigError


@pytest.mark.parametrize("value", [1, 5, 10])
def test_an_integer_in_range_is_returned(value):
    assert checks.integer(value, "k", minimum=1, maximum=10) == value


@pytest.mark.parametrize("value", [0, 11, -3, True, 2.0, "3", None])
def test_out_of_range_non_integers_and_bools_are_refused_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"k must be an integer in 1\.\.10, got"):
        checks.integer(value, "k", minimum=1, maximum=10)


def test_wording_follows_the_bounds_and_the_error_type_is_the_callers():
    with pytest.raises(ValueError, match="every must be a positive integer, got 0"):
        checks.integer(0, "every")
    with pytest.raises(ConfigError, match=r"eval\.n must be an integer >= 0 \(0: none\), got -1"):
        checks.integer(-1, "eval.n", minimum=0, error=ConfigError, hint=" (0: none)")
    assert checks.integer(10**9, "n", minimum=0) == 10**9  # no upper bound unless one is given
