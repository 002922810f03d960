"""Each arm's evaluations beside the null arm (claims.arm_evals) on runs with known evals.jsonl rows."""
import pytest

from fake_runs import write_run
from rlvr_lowrank.claims import arm_evals, null_arm


def _arm(tmp_path, name, finals, start=0.3, ood=None):
    """One run per seed evaluated at steps 0, 50, 100: test_acc start -> midway -> finals[seed]."""
    out = {}
    for s, f in enumerate(finals):
        rows = [{"step": t, "test_acc": a, "train_acc": 0.5} for t, a in ((0, start), (50, (start + f) / 2), (100, f))]
        if ood is not None:
            for r, o in zip(rows, (0.1, 0.1, ood[s])):
                r["ood_acc"] = o
        out[s] = write_run(tmp_path / f"{name}{s}", evals=rows)
    return out


def test_gains_table_and_the_welch_comparison_with_the_null(tmp_path):
    full = _arm(tmp_path, "full", [0.5, 0.6, 0.55], ood=[0.2, 0.3, 0.25])
    null = _arm(tmp_path, "null", [0.3, 0.32, 0.28], ood=[0.1, 0.1, 0.1])
    out = arm_evals.reading({"Full RL": full}, null)
    g = out["gains"]["test_acc"]
    assert g["Full RL"]["per_seed"] == pytest.approx({0: 0.2, 1: 0.3, 2: 0.25})
    assert g[arm_evals.NULL_LABEL]["mean"] == pytest.approx(0.0)
    c = next(x for x in out["vs_null"] if x["column"] == "test_acc")
    assert c["welch_ci"] == pytest.approx(null_arm.welch_interval([0.2, 0.3, 0.25], [0.0, 0.02, -0.02]))
    assert c["difference"] == pytest.approx(0.25) and "RL and the null differ" in c["reading"]
    assert {x["column"] for x in out["vs_null"]} == {"test_acc", "ood_acc"}
    row = next(r for r in out["table"] if r["arm"] == "Full RL" and r["step"] == 50 and r["column"] == "test_acc")
    assert row["mean"] == pytest.approx((0.4 + 0.45 + 0.425) / 3) and row["n"] == 3


def test_without_a_null_arm_nothing_is_compared_with_nothing(tmp_path):
    out = arm_evals.reading({"Full RL": _arm(tmp_path, "full", [0.5, 0.6])}, None)
    assert all(x["null"] == null_arm.NO_NULL_ARM for x in out["vs_null"])
    assert list(out["gains"]) == ["test_acc"]  # no ood_acc recorded: not compared
    assert any("no null arm" in line for line in out["lines"])


def test_unfinished_null_seeds_are_named_and_left_out(tmp_path, monkeypatch):
    from rlvr_lowrank.training import config, runs
    monkeypatch.setattr(config, "seeds_of", lambda profile, experiment: [0, 1])
    monkeypatch.setattr(runs, "run_dir", lambda profile, experiment, seed: tmp_path / f"null{seed}")
    monkeypatch.setattr(runs, "require_run", lambda profile, experiment, seed: tmp_path / f"null{seed}")
    _arm(tmp_path, "null", [0.3])  # seed 0 finished; seed 1 has no run directory yet
    done, unfinished = arm_evals.null_runs("smoke", "random_reward")
    assert list(done) == [0] and unfinished == [1]
    out = arm_evals.reading({"Full RL": _arm(tmp_path, "full", [0.5, 0.6])}, done, unfinished)
    assert out["null_unfinished"] == [1] and "seed(s) [1] still training" in out["lines"][0]
    assert arm_evals.null_runs("smoke", None) == (None, [])
