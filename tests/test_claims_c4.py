"""C4: u/v alignment read from a recorded trajectory with a known answer, the verdict rule, c4.json."""
import numpy as np
import pytest

from fake_runs import write_run
from rlvr_lowrank.analysis import alignment
from rlvr_lowrank.claims import FAILS, HOLDS, INCONCLUSIVE, c4

NAME = "model.layers.0.self_attn.q_proj.weight"


def _traj(n_steps=6, d=32, seed=0, with_step0=False):
    """u1 fixed (up to sign flips) over steps, v1 a new random direction at each step."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    out = {0: {NAME: (np.zeros((d, 1)), np.array([0.0]), np.zeros((d, 1)))}} if with_step0 else {}
    for t in range(1, n_steps + 1):
        v = rng.standard_normal(d)
        v /= np.linalg.norm(v)
        sign = -1 if t % 2 else 1
        out[t * 5] = {NAME: (sign * u[:, None], np.array([1.0]), v[:, None])}
    return out


def test_per_seed_on_constructed_trajectory():
    table = alignment.alignment_table(_traj())
    r = c4.per_seed(table)
    assert r["u_cos_final"] == pytest.approx(1.0, abs=1e-6)  # sign flips do not matter
    assert r["v_cos_final"] < 0.6  # independent random directions in d=32: chance level ~0.14
    assert r["u_minus_v"] > 0.3 and r["u_minus_baseline"] > 0.8
    # the final step (cos = 1 by definition) is excluded: only 5 of 6 steps count
    assert r["v_cos_final"] == pytest.approx(table[(table.side == "v") & (table.step < 30)]["cos_final"].mean())


def test_trajectory_alignment_reads_the_run_and_drops_the_zero_update(tmp_path):
    run = write_run(tmp_path / "run", trajectory=_traj(with_step0=True))
    table = c4.trajectory_alignment(run)
    assert sorted(table["step"].unique()) == [5, 10, 15, 20, 25, 30]  # step 0 (ΔW = 0) dropped
    assert c4.per_seed(table) == pytest.approx(c4.per_seed(alignment.alignment_table(_traj())), abs=1e-6)
    one = write_run(tmp_path / "one", trajectory={0: _traj(with_step0=True)[0], 5: _traj()[5]})
    with pytest.raises(ValueError, match="fewer than two recorded steps"):
        c4.trajectory_alignment(one)


def test_decide_by_arm_and_the_first_arm_decides():
    rows = [{"arm": "full", "seed": s, "u_minus_v": 0.1 + 0.01 * s, "u_minus_baseline": 0.5} for s in range(3)]
    rows += [{"arm": "pr1s", "seed": s, "u_minus_v": -0.1, "u_minus_baseline": 0.5} for s in range(3)]
    res = c4.decide("smoke", ["full", "pr1s"], [0, 1, 2], rows)
    assert res.verdict == HOLDS and res.by_arm["pr1s"]["verdict"] == FAILS
    assert res.u_minus_v["mean"] == pytest.approx(0.11) and len(res.by_arm["full"]["per_seed"]) == 3
    other = c4.decide("smoke", ["pr1s", "full"], [0, 1, 2], rows)
    assert other.verdict_two_valued == FAILS and other.verdict == "refuted"  # u − v = −0.1 on every seed
    assert set(res.to_json()) == {"profile", "arms", "seeds", "verdict", "u_minus_v", "u_minus_baseline", "by_arm",
                                  "verdict_bootstrap_only", "verdict_two_valued", "why"}


def test_verdict_c4_needs_both_ci_lower_bounds_above_zero():
    assert c4.verdict([0.1, 0.12, 0.11], [0.5, 0.6, 0.55])["verdict"] == HOLDS
    assert c4.verdict([-0.05, -0.06, -0.04], [0.8, 0.8, 0.8])["verdict"] == FAILS
    assert c4.verdict([0.1, -0.2, 0.1], [0.8, 0.8, 0.8])["verdict"] == FAILS  # CI spans 0
    assert c4.verdict([0.1], [0.5])["verdict"] == INCONCLUSIVE
