"""C1: the paired per-seed numbers read from run directories, the verdict rule, c1.json, its README block."""
import pytest

from fake_runs import reward_curve, write_run
from rlvr_lowrank.claims import FAILS, HOLDS, INCONCLUSIVE, c1
from rlvr_lowrank.training import config, runs


def _evals(test, train):
    """Greedy accuracies, and sampled ones 0.1 below them (the sampled train − test gap equals the greedy one)."""
    return [{"step": 0, "test_acc": 0.0, "train_acc": 0.0},
            {"step": 8, "test_acc": test, "train_acc": train, "sampled_test_acc": test - 0.1,
             "sampled_train_acc": train - 0.1}]


@pytest.fixture
def pair(tmp_path):
    full = write_run(tmp_path / "full", reward_curve([s / 10 for s in range(1, 9)]), _evals(0.7, 0.9))
    pr1s = write_run(tmp_path / "pr1s", reward_curve([0.5] * 8), _evals(0.65, 0.8))
    return full, pr1s


def test_per_seed_reads_the_last_quarter_of_the_reward_and_the_final_evals(pair):
    r = c1.per_seed(*pair)
    assert r["reward_full"] == pytest.approx(0.75)  # steps 7 and 8 of 8
    assert r["reward_pr1s"] == pytest.approx(0.5)
    assert r["reward_gap"] == pytest.approx(0.25)
    assert r["test_gap"] == pytest.approx(0.05) and r["train_pr1s"] == 0.8
    assert r["gap_train_test_full"] == pytest.approx(0.2) and r["gap_train_test_pr1s"] == pytest.approx(0.15)
    assert r["overfit_gap_full"] == pytest.approx(0.2)  # Full's sampled train − test: C1's precondition


def test_per_seed_uses_the_steps_both_runs_have(tmp_path):
    full = write_run(tmp_path / "full", reward_curve([s / 10 for s in range(1, 9)]), _evals(0.7, 0.9))
    short = write_run(tmp_path / "short", reward_curve([0.5] * 6), _evals(0.7, 0.9))
    # the shorter run sets the start (after step 4 of 6): both windows start there
    assert c1.per_seed(full, short)["reward_full"] == pytest.approx((0.5 + 0.6 + 0.7 + 0.8) / 4)
    assert c1.per_seed(full, short)["reward_pr1s"] == pytest.approx(0.5)


def test_an_unfinished_run_is_refused(tmp_path, pair):
    half = write_run(tmp_path / "half", reward_curve([0.5] * 8), _evals(0.7, 0.9), done=False)
    with pytest.raises(runs.RunError, match="no DONE marker"):
        c1.per_seed(pair[0], half)


def test_measure_sweep_rows_and_result_json(pair):
    rows = c1.measure({0: pair[0], 1: pair[0]}, {0: pair[1], 1: pair[1]})
    assert [r["seed"] for r in rows] == [0, 1]
    sweep = c1.sweep_rows("pr1s", config.Pr1s(every=10, variant="trunc"), rows)
    assert [s["metric"] for s in sweep] == ["reward_gap", "test_gap"] and sweep[0]["K"] == 10
    assert sweep[0]["mean"] == pytest.approx(0.25) and sweep[0]["verdict"] == INCONCLUSIVE
    res = c1.decide("smoke", "full", "pr1s", [0, 1], rows, sweep)
    d = res.to_json()
    assert d["why"].endswith("2 seed(s) < 3") and "lower_reward" not in d  # optional keys only when produced
    assert set(d) == {"profile", "full", "pr1s", "seeds", "per_seed", "reward_gap", "test_gap", "verdict", "why",
                      "sweep", "verdict_bootstrap_only", "verdict_two_valued", "overfit_gap"}
    assert c1.C1Result.from_json(d) == res


def test_c1_verdicts():
    assert c1.verdict([0.1, 0.12, 0.09], [0.01, -0.02, 0.0])["verdict"] == HOLDS
    assert c1.verdict([0.1, 0.12, 0.09], [0.2, 0.25, 0.3])["verdict"] == FAILS  # test accuracy not comparable
    assert c1.verdict([0.0, 0.01, -0.01], [0.0, 0.0, 0.0])["verdict"] == FAILS  # reward not lower
    assert c1.verdict([0.1, 0.1], [0.0, 0.0])["verdict"] == INCONCLUSIVE  # too few seeds
    v = c1.verdict([0.1, 0.12, 0.09], [0.2, 0.25, 0.3])
    assert v["lower_reward"] is True and v["comparable_test"] is False


def test_readme_block_renders_the_thresholds(pair, monkeypatch):
    rows = c1.measure({s: pair[0] for s in range(3)}, {s: pair[1] for s in range(3)})
    res = c1.decide("tiny", "full", "pr1s", [0, 1, 2], rows, [])
    assert "mean ≥ 0.02" in c1.readme_block(res) and "| 0.250 |" in c1.readme_block(res)
    monkeypatch.setitem(c1.THRESHOLDS, "min_reward_gap", 0.07)
    assert "mean ≥ 0.07" in c1.readme_block(res)
