"""The null arm: a Bernoulli(p) reward independent of the completion, seeded by the run seed and the step;
its config shape and errors; RL − null with a Welch interval and MDE at matched steps and at matched
‖ΔW‖/‖W0‖, on constructed data with known answers; "no null arm" when a profile has none."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.claims import notebooks, null_arm, power
from rlvr_lowrank.training import config, runs, train, trajectory
from rlvr_lowrank.world import random_reward, rewards


def _state(step):
    return SimpleNamespace(global_step=step)


# --- the reward -----------------------------------------------------------------------------------------

def test_random_reward_ignores_the_completion_and_is_reproducible_per_seed_and_step():
    f = random_reward.random_reward(0.28, seed=3)
    a = f(["A:12."] * 64, answer=["12"] * 64, trainer_state=_state(5))
    b = random_reward.random_reward(0.28, seed=3)(["junk"] * 64, trainer_state=_state(5))  # fresh: a resumed run
    assert a == b and set(a) == {0.0, 1.0}
    assert f(["A:12."] * 64, trainer_state=_state(5)) != a  # a second call at the same step draws anew
    assert random_reward.random_reward(0.28, seed=4)(["x"] * 64, trainer_state=_state(5)) != a
    assert f(["x"] * 64, trainer_state=_state(6)) != a
    many = np.concatenate([random_reward.draws(0.28, 0, step, 0, 1000) for step in range(40)])
    assert abs(many.mean() - 0.28) < 4 * np.sqrt(0.28 * 0.72 / many.size)  # Bernoulli(p)
    guarded = rewards.guarded_reward(f)
    assert guarded.__name__ == "random_reward" and len(guarded(["a", "b", "c"], trainer_state=_state(1))) == 3


def test_random_reward_does_not_touch_the_global_generators():
    np.random.seed(0)
    torch.manual_seed(0)
    expect_np, expect_torch = np.random.rand(), torch.rand(1)
    np.random.seed(0)
    torch.manual_seed(0)
    random_reward.random_reward(0.5, 0)(["x"] * 8, trainer_state=_state(0))
    assert np.random.rand() == expect_np and torch.equal(torch.rand(1), expect_torch)


@pytest.mark.parametrize("p", [0, 1, 1.5, -0.1, True, "0.3", float("nan")])
def test_random_reward_refuses_a_p_outside_0_1(p):
    with pytest.raises(ValueError, match="reward_p must be a number strictly between 0 and 1"):
        random_reward.random_reward(p, 0)


# --- the config -----------------------------------------------------------------------------------------

def _profile(tmp_path, monkeypatch, edit, name="smoke"):
    prof = fileio.read_yaml(paths.CONFIGS / f"{name}.yaml")
    edit(prof)
    fileio.write_yaml(tmp_path / f"{name}.yaml", prof)
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)


def test_tiny_and_smollm2_have_the_null_arm_and_the_other_profiles_do_not():
    cfg = config.resolve("tiny", "random_reward", 2)
    assert (cfg.reward, cfg.reward_p, cfg.seed) == ("random", 0.28, 2)
    assert config.seeds_of("tiny", "random_reward") == [0, 1, 2, 3, 4]
    f = train.reward_function(cfg)
    assert (f.__name__, f.p, f.seed) == ("random_reward", 0.28, 2)
    assert train.reward_function(config.resolve("tiny", "full", 2)) is rewards.math_reward
    assert null_arm.null_experiment("tiny") == "random_reward"
    assert null_arm.null_experiment("smollm2") == "random_reward"
    assert config.seeds_of("smollm2", "random_reward") == [0, 1, 2]  # >= 3 seeds; the deciding arms have 5
    for profile in ("smoke", "tiny-long"):
        assert null_arm.null_experiment(profile) is None
    assert notebooks.OPTIONAL_ARMS["null_arm"] is None and notebooks.ARM_PARAMETERS["null_arm"] == "NULL_ARM"


@pytest.mark.parametrize("over, message", [
    ({"reward": "random"}, "reward: random needs reward_p"),
    ({"reward": "random", "reward_p": 1.0}, "strictly between 0 and 1"),
    ({"reward_p": 0.3}, "reward_p: 0.3 is the success probability of reward: random"),
    ({"reward": "math", "reward_p": 0.3}, "but the reward is math"),
    ({"reward": "randm", "reward_p": 0.3}, r"unknown reward 'randm'; rewards: \[.*'random'"),
])
def test_bad_null_arm_configs_are_refused_with_the_reason(over, message):
    with pytest.raises(config.ConfigError, match=message):
        config.resolve("smoke", "full", 0, over)


def test_a_yaml_null_key_is_refused_not_read_as_none(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, lambda p: p["arms"].update({None: "full"}))
    with pytest.raises(config.ConfigError, match=r"arms: key\(s\) \[None\] are not names"):
        config.load_profile("smoke")


def test_eval_n_samples_is_gone():
    assert "n_samples" not in {f.name for f in config.dataclasses.fields(config.Eval)}
    with pytest.raises(config.ConfigError, match=r"eval: unknown key\(s\) \['n_samples'\]"):
        config.resolve("smoke", "full", 0, {"eval": {"n_samples": 16}})


# --- RL − null ------------------------------------------------------------------------------------------

def test_welch_interval_and_mde_on_known_numbers():
    rl, null = [0.9, 0.95, 0.85, 0.92, 0.88], [0.30, 0.35, 0.20, 0.28, 0.31]
    lo, hi = null_arm.welch_interval(rl, null)
    ref = stats.ttest_ind(rl, null, equal_var=False).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), rel=1e-10)
    c = null_arm.compare({s: v for s, v in enumerate(rl)}, null, "greedy test accuracy", "step 60")
    assert c["difference"] == pytest.approx(0.9 - 0.288)
    assert c["mde"] == pytest.approx(power.min_detectable_effect_two_sample(np.std(rl, ddof=1), 5,
                                                                            np.std(null, ddof=1), 5))
    assert "RL and the null differ" in c["reading"] and "step 60" in c["reading"]
    same = null_arm.compare([0.1, 0.2, 0.3], [0.2, 0.1, 0.3], "x")
    assert same["welch_ci"][0] < 0 < same["welch_ci"][1]
    assert "no difference detected" in same["reading"] and "MDE80" in same["reading"]
    assert null_arm.welch_interval([1.0, 1.0], [0.0, 0.0]) == (1.0, 1.0)
    assert np.isnan(null_arm.welch_interval([1.0], [0.0, 0.5])[0])


@pytest.mark.parametrize("null", [None, [], {}])
def test_no_null_arm_is_said_never_compared_with_nothing(null):
    c = null_arm.compare([0.5, 0.6, 0.7], null, "greedy test accuracy")
    assert c["null"] == null_arm.NO_NULL_ARM and "no null arm" in c["reading"] and "difference" not in c
    out = null_arm.compare_curves({0: {"_norm": None, "q": ([0, 5], [0.0, 1.0])}}, None)
    assert [x["null"] for x in out] == [null_arm.NO_NULL_ARM]


def test_matched_steps_read_every_run_at_the_last_common_step():
    rl = {0: ([0, 15, 30, 45, 60], [0, 1, 2, 3, 4]), 1: ([0, 15, 30, 45, 60], [0, 2, 4, 6, 8])}
    null = {0: ([0, 15, 30, 45], [0, 0, 0, 1])}
    a, b, step = null_arm.at_matched_steps(rl, null)
    assert step == 45 and a == {0: 3.0, 1: 6.0} and b == {0: 1.0}


def test_matched_norm_reads_rl_earlier_than_a_random_walk_null():
    # RL's update grows like t, the null's like √t: both reach r* = the smallest final level, RL at an earlier step
    steps = np.arange(0, 61, dtype=float)
    rl = {k: (steps, c * steps, steps, steps) for k, c in enumerate([0.002, 0.003])}  # value = the step itself
    null = {k: (steps, c * np.sqrt(steps), steps, steps) for k, c in enumerate([0.01, 0.012])}
    a, b, r = null_arm.at_matched_norm(rl, null)
    assert r == pytest.approx(0.01 * np.sqrt(60))  # the smallest final level (null seed 0)
    assert a[0] == pytest.approx(r / 0.002) and a[1] == pytest.approx(r / 0.003)  # linear: exact
    assert b[0] == pytest.approx(60) and b[1] == pytest.approx((r / 0.012) ** 2, rel=2e-3)
    assert max(a.values()) < min(b.values())
    assert np.isnan(null_arm.first_crossing([0, 10], [0.0, 0.1], 0.2))  # never reached


def _planted():
    """Base W0 (one q_proj, 8 × 6) and a state with ΔW = 4 u1 v1ᵀ + 3 u2 v2ᵀ (‖ΔW‖_F = 5, σ1 = 4)."""
    g = torch.Generator().manual_seed(0)
    name = "model.layers.0.self_attn.q_proj.weight"
    w0 = torch.randn(8, 6, generator=g)
    q1, _ = torch.linalg.qr(torch.randn(8, 2, generator=g))
    q2, _ = torch.linalg.qr(torch.randn(6, 2, generator=g))
    dw = 4 * torch.outer(q1[:, 0], q2[:, 0]) + 3 * torch.outer(q1[:, 1], q2[:, 1])
    return name, {name: w0}, {name: w0 + dw}


def test_recorder_keeps_the_update_norm_and_the_null_quantities_follow_from_it(tmp_path):
    name, base, state = _planted()
    snaps = {0: trajectory.snapshot(base, base, k=2, factor_dtype="float32"),
             5: trajectory.snapshot(state, base, k=2, factor_dtype="float32")}
    assert snaps[5][f"{name}|dF"].item() == pytest.approx(5.0, rel=1e-5)
    for step, tensors in snaps.items():
        fileio.save_tensors(tmp_path / "trajectory" / f"step-{step:05d}.safetensors", tensors)
    fileio.write_json(tmp_path / "DONE", {"config_hash": "x", "steps": 5, "weights_sha256": "0" * 64})
    traj = runs.load_trajectory(tmp_path)
    rel = null_arm.relative_update(traj)
    assert rel == pytest.approx([0.0, 5.0 / float(torch.linalg.norm(state[name]))], rel=1e-5)  # ‖ΔW_t‖ / ‖W_t‖
    share = null_arm.rank1_share(traj)
    assert np.isnan(share[0]) and share[1] == pytest.approx(0.8, rel=1e-5)
    traj.dF = None  # a trajectory recorded before ‖ΔW_t‖_F was kept
    assert null_arm.relative_update(traj) is None and null_arm.rank1_share(traj) is None
    rl = {0: {"_norm": None, "q": ([0, 5], [0.0, 1.0])}, 1: {"_norm": None, "q": ([0, 5], [0.0, 2.0])}}
    out = null_arm.compare_curves(rl, {0: {"_norm": None, "q": ([0, 5], [0.0, 0.5])},
                                       1: {"_norm": None, "q": ([0, 5], [0.0, 0.4])}})
    assert out[0]["matched"] == "step 5" and out[0]["difference"] == pytest.approx(1.05)
    assert "no matched-‖ΔW‖ reading" in out[1]["reading"]
