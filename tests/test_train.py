"""A real smoke GRPO run through TRL writes the run directory (layout: runs.py docstring), and is reused by hash."""
import pytest

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.training import config, runs, train
from rlvr_lowrank.world import rewards


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setattr(paths, "RUNS", root)
    run = train.train("smoke", "pr1s_trunc_k10", seed=0)
    yield run
    mp.undo()


@pytest.mark.slow
def test_run_directory_contract(smoke_run):
    run = smoke_run
    cfg = fileio.read_yaml(run / "config.yaml")
    assert fileio.read_json(run / "DONE")["config_hash"] == cfg["config_hash"]
    metrics = fileio.read_jsonl(run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, cfg["train"]["max_steps"] + 1))
    assert all(0.0 <= m["reward"] <= 1.0 for m in metrics)
    evals = fileio.read_jsonl(run / "evals.jsonl")
    assert [e["step"] for e in evals] == [0, 3, 6]
    assert {"test_acc", "train_acc", "fact_acc", "skill_acc", "sampled_train_acc", "sampled_test_acc"} <= set(evals[0])
    # step 6 is an evaluation and a substitution step: both phases, the smoke profile's pr1s_phase (post) unsuffixed
    assert [e.get("phase") for e in evals] == [None, None, "post"]
    assert all(evals[2][k] == evals[2][f"post/{k}"] for k in ("test_acc", "sampled_train_acc", "sampled_test_acc"))
    assert {"pre/test_acc", "pre/sampled_test_acc"} <= set(evals[2])
    seen = fileio.read_json(run / "prompt_counts.json")  # 6 steps x 2 prompts (16 completions / 8 generations)
    assert sum(p["seen"] for p in seen["per_prompt"]) == 12 and seen["unknown_prompt_completions"] == 0
    assert not (run / "prompts_seen").exists()
    subs = fileio.read_jsonl(run / "substitutions.jsonl")
    assert [s["step"] for s in subs] == [2, 4, 6]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00003", "step-00006"]
    assert not (run / "trainer").exists()
    traj = runs.load_trajectory(run)
    assert list(traj.steps) == [2, 4, 6]
    name = traj.names[0]
    assert traj.U[name].shape[0] == 3 and traj.U[name].shape[2] == 2


@pytest.mark.slow
def test_pr1s_leaves_rank1_updates_in_the_final_model(smoke_run):
    import torch

    from rlvr_lowrank import models
    from rlvr_lowrank.analysis import targets

    base, _ = models.load_model(paths.TINY_BASE)
    final = fileio.load_tensors(smoke_run / "final" / "model.safetensors")
    for name in targets.target_names(base.state_dict()):
        dw = final[name] - base.state_dict()[name]
        s = torch.linalg.svdvals(dw)
        assert s[1] <= 1e-4 * max(float(s[0]), 1e-12) + 1e-6, name  # substituted at the last step (6 % 2 == 0)


@pytest.mark.slow
def test_finished_run_is_reused_and_a_changed_config_is_refused(smoke_run, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", smoke_run.parents[2])
    before = (smoke_run / "DONE").stat().st_mtime_ns
    assert train.train("smoke", "pr1s_trunc_k10", seed=0) == smoke_run
    assert (smoke_run / "DONE").stat().st_mtime_ns == before
    with pytest.raises(runs.RunError, match="the resolved config .* changed"):
        train.train("smoke", "pr1s_trunc_k10", seed=0, overrides={"train": {"learning_rate": 1e-4}})


def test_unfinished_run_is_never_read_as_a_result(tmp_path):
    (tmp_path / "config.yaml").write_text("profile: smoke\nexperiment: full\nseed: 1\n")
    with pytest.raises(runs.RunError, match="--experiment full --seed 1"):
        runs.require_done(tmp_path)


def test_bad_experiment_settings_are_refused():
    with pytest.raises(ValueError, match="unknown experiment"):
        config.resolve("smoke", "nope", 0)
    with pytest.raises(ValueError, match="positive integer"):
        config.resolve("smoke", "full", 0, {"pr1s": {"every": 0}})
    with pytest.raises(ValueError, match="variant"):
        config.resolve("smoke", "full", 0, {"pr1s": {"every": 2, "variant": "rank3"}})


@pytest.mark.slow
def test_a_run_being_trained_by_a_live_process_is_refused_and_a_stale_lock_is_taken_over(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(paths, "RUNS", tmp_path)
    run = runs.run_dir("smoke", "full", 0)
    run.mkdir(parents=True)
    (run / ".lock").write_text(str(os.getpid()))  # a live process (this one) holds it
    with pytest.raises(runs.RunError, match=f"being trained by another process \\(pid {os.getpid()}\\)"):
        train.train("smoke", "full", 0)
    assert not (run / "DONE").exists()
    (run / ".lock").write_text("999999999")  # no such process: an interrupted run's lock
    assert train.train("smoke", "full", 0) == run
    assert (run / "DONE").exists() and not (run / ".lock").exists()


def test_a_raising_or_nan_reward_is_a_clear_error_and_none_passes():
    def exploding(completions, **kw):
        raise KeyError("answer")

    def nan_reward(completions, **kw):
        return [0.5, float("nan")]

    wrapped = rewards.guarded_reward(exploding)
    assert wrapped.__name__ == "exploding"  # TRL's per-reward log key is kept
    with pytest.raises(rewards.RewardError, match=r"exploding raised KeyError.*'Q:1\+2='"):
        wrapped(["Q:1+2="], answer=["3"])
    with pytest.raises(rewards.RewardError, match="1 non-finite or non-numeric reward"):
        rewards.guarded_reward(nan_reward)(["a", "b"])
    assert rewards.guarded_reward(lambda c, **k: [1.0, None])(["a", "b"]) == [1.0, None]
    assert rewards.guarded_reward(rewards.math_reward)(["1+2=3,A:3."], answer=["3"]) == [1.0]
