"""The post-saturation reading beside C1 (claims.readings_saturation) on runs with known evaluation rows."""
import math

import pytest

from fake_runs import write_run
from rlvr_lowrank.claims import readings_saturation as rs
from rlvr_lowrank.claims import stats


def _pair(tmp_path, seed, full_train, full_test, pr1s_test):
    """A Full and a PR1S run evaluated at steps 0, 50, 100 with the given sampled training accuracy (Full) and
    greedy test accuracies (both arms)."""
    steps = (0, 50, 100)
    full = write_run(tmp_path / f"full{seed}", evals=[
        {"step": t, "sampled_train_acc": a, "test_acc": b} for t, a, b in zip(steps, full_train, full_test)])
    pr1s = write_run(tmp_path / f"pr1s{seed}", evals=[
        {"step": t, "sampled_train_acc": 0.3, "test_acc": b} for t, b in zip(steps, pr1s_test)])
    return full, pr1s


def test_saturation_is_the_first_evaluation_at_or_over_the_threshold():
    ev = {0: {"sampled_train_acc": 0.2}, 50: {"sampled_train_acc": rs.SATURATION}, 100: {"sampled_train_acc": 1.0}}
    assert rs.saturation_step(ev) == 50
    assert rs.saturation_step({0: {"sampled_train_acc": 0.89}, 50: {}}) is None


def test_changes_are_read_from_fulls_saturation_step_for_both_arms(tmp_path):
    full, pr1s = {}, {}
    # seed 0 saturates at 50, seed 1 at 50, seed 2 only at 100 (its last evaluation: no window)
    for s, (ft, fte, pte) in enumerate([((0.2, 0.9, 1.0), (0.3, 0.5, 0.6), (0.3, 0.45, 0.5)),
                                        ((0.2, 0.95, 0.95), (0.3, 0.4, 0.45), (0.3, 0.4, 0.4)),
                                        ((0.2, 0.5, 0.9), (0.3, 0.4, 0.5), (0.3, 0.4, 0.5))]):
        full[s], pr1s[s] = _pair(tmp_path, s, ft, fte, pte)
    out = rs.reading(full, pr1s)
    assert out["n_with_window"] == 2
    assert [r["saturation_step"] for r in out["per_seed"]] == [50, 50, 100]
    assert "full_change" not in out["per_seed"][2]
    assert out["full_change"]["values"] == pytest.approx([0.1, 0.05])
    assert out["pr1s_change"]["values"] == pytest.approx([0.05, 0.0])
    diffs = [f - p for f, p in zip(out["full_change"]["values"], out["pr1s_change"]["values"])]
    assert out["difference"] == stats.summarize(diffs) and out["difference"]["mean"] == pytest.approx(0.05)
    assert "2 of 3 seed(s)" in out["reading"] and "[50]" in out["reading"]


def test_no_saturation_is_untestable_with_the_highest_accuracy(tmp_path):
    full, pr1s = _pair(tmp_path, 0, (0.2, 0.6, 0.8), (0.3, 0.4, 0.5), (0.3, 0.4, 0.5))
    out = rs.reading({0: full}, {0: pr1s})
    assert out["n_with_window"] == 0 and "full_change" not in out
    assert out["reading"].startswith("post-saturation generalisation untestable here")
    assert "highest 0.80" in out["reading"]


def test_saturation_only_at_the_last_evaluation_is_untestable_and_says_so(tmp_path):
    full, pr1s = _pair(tmp_path, 0, (0.2, 0.6, 0.95), (0.3, 0.4, 0.5), (0.3, 0.4, 0.5))
    out = rs.reading({0: full}, {0: pr1s})
    assert "only at its last evaluation" in out["reading"] and "[100]" in out["reading"]


def test_runs_without_sampled_accuracies_never_saturate(tmp_path):
    full = write_run(tmp_path / "f", evals=[{"step": 0, "test_acc": 0.3}, {"step": 10, "test_acc": 0.5}])
    pr1s = write_run(tmp_path / "p", evals=[{"step": 0, "test_acc": 0.3}, {"step": 10, "test_acc": 0.5}])
    out = rs.reading({0: full}, {0: pr1s})
    assert out["per_seed"][0]["saturation_step"] is None and math.isnan(out["per_seed"][0]["max_sampled_train_full"])
    assert "never reached" in out["reading"]
