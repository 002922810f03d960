"""C1's recorded data: sampled train/test accuracy under the training's decoding at each evaluation
(training.sampled_eval), a PR1S run's evaluation before and after the substitution at a step that is both
(run_recorder: ``pre/…``, ``post/…``, the config's ``eval.pr1s_phase`` unsuffixed), how many times each training
prompt was seen (training.prompt_counts), and the reading from run directories (claims.readings_c1) on
constructed runs with known answers."""
from types import SimpleNamespace

import pytest
import torch

from fake_runs import write_run
from rlvr_lowrank import fileio, models, paths
from rlvr_lowrank.claims import c1, readings, readings_c1
from rlvr_lowrank.training import config, prompt_counts, run_recorder, sampled_eval
from rlvr_lowrank.world import tasks

# ----------------------------------------------------------------------------------------------
# config
# ----------------------------------------------------------------------------------------------


def test_eval_keys_have_defaults_and_are_validated():
    e = config.Eval()
    assert (e.n_sampled_train, e.n_sampled_test, e.samples_per_prompt, e.pr1s_phase) == (8, 16, 4, "post")
    for bad in ({"pr1s_phase": "after"}, {"n_sampled_train": -1}, {"n_sampled_test": 1.5},
                {"samples_per_prompt": 0}, {"samples_per_prompt": True}):
        with pytest.raises(config.ConfigError, match="eval."):
            config.Eval(**bad)
    # the profiles whose verdicts were pre-registered on the earlier order keep reading the pre-substitution
    # evaluation; smollm2's new design registers the substituted weights
    for profile in ("tiny", "tiny-long"):
        assert config.resolve(profile, "full", 0).eval.pr1s_phase == "pre"
    assert config.resolve("smollm2", "full", 0).eval.pr1s_phase == "post"
    assert config.resolve("smoke", "pr1s_trunc_k10", 0).eval.pr1s_phase == "post"


def test_decoding_is_the_training_one_with_grpo_defaults_where_unset():
    d = sampled_eval.decoding({"temperature": 0.7, "top_p": 0.9, "max_completion_length": 64})
    assert d == {"temperature": 0.7, "top_k": 0, "top_p": 0.9, "repetition_penalty": 1.0, "max_completion_length": 64}
    assert sampled_eval.sample_seed(3, 30, "train") != sampled_eval.sample_seed(3, 30, "test")
    assert sampled_eval.sample_seed(3, 30, "train") != sampled_eval.sample_seed(3, 45, "train")


# ----------------------------------------------------------------------------------------------
# the recorder: sampled columns, phases at a substitution step
# ----------------------------------------------------------------------------------------------


def test_sampled_eval_scores_with_the_training_decoding_and_never_moves_the_global_rng():
    model, tok = models.load_model(paths.TINY_BASE)
    test = tasks.load_items("math", "test")
    se = sampled_eval.SampledEval(tasks.load_items("math", "rl_train")[:3], test[:3], 2,
                                  sampled_eval.decoding({"temperature": 1.0}) | {"max_completion_length": 64}, 0)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = se.measure(model, tok, step=3)
    assert torch.equal(torch.rand(3), expected)  # the training's RNG stream is untouched
    b = se.measure(model, tok, step=3)
    assert {k: a[k] for k in sampled_eval.COLUMNS.values()} == {k: b[k] for k in sampled_eval.COLUMNS.values()}
    assert all(0.0 <= a[k] <= 1.0 for k in sampled_eval.COLUMNS.values()) and "sampled_seconds" in a


class _Recorder(run_recorder.RunRecorder):
    """The recorder with ``measure`` reading a stand-in for the weights (the test's ``weights`` dict)."""

    def measure(self, model, tokenizer, step):
        return {"step": step, "test_acc": model["w"], "sampled_train_acc": 2 * model["w"], "eval_seconds": 1.0}


def _drive(tmp_path, phase, every=3, k=2, max_steps=6):
    """Steps 1..max_steps through recorder -> a PR1S stand-in (w += 10 at multiples of k) -> AfterSubstitution."""
    rec = _Recorder(tmp_path, {}, eval_every=every, substitution_every=k, pr1s_phase=phase)
    after = run_recorder.AfterSubstitution(rec)
    weights = {"w": 0.0}
    for step in range(1, max_steps + 1):
        weights["w"] += 0.01
        state = SimpleNamespace(global_step=step, max_steps=max_steps, is_world_process_zero=True)
        rec.on_step_end(None, state, None, model=weights, processing_class=None)
        if k and step % k == 0:
            weights["w"] += 10
        after.on_step_end(None, state, None, model=weights, processing_class=None)
    return fileio.read_jsonl(tmp_path / "evals.jsonl")


@pytest.mark.parametrize("phase", ["pre", "post"])
def test_a_substitution_step_logs_both_phases_and_the_configured_one_unsuffixed(tmp_path, phase):
    rows = _drive(tmp_path, phase)
    assert [r["step"] for r in rows] == [3, 6]
    assert "phase" not in rows[0] and rows[0]["test_acc"] == pytest.approx(0.03 + 10)  # step 3: one state
    last = rows[1]  # step 6 = 3 evaluations' worth of 0.01 + 2 substitutions before, the third at step 6
    assert last["pre/test_acc"] == pytest.approx(20.06) and last["post/test_acc"] == pytest.approx(30.06)
    assert last["post/sampled_train_acc"] == pytest.approx(60.12)
    assert last["phase"] == phase and last["test_acc"] == last[f"{phase}/test_acc"]
    assert last["eval_seconds"] == 2.0


def test_without_pr1s_there_is_one_row_per_evaluation_and_no_phase(tmp_path):
    rows = _drive(tmp_path, "post", k=0)
    assert [r["step"] for r in rows] == [3, 6] and not any("phase" in r for r in rows)


# ----------------------------------------------------------------------------------------------
# prompt counts
# ----------------------------------------------------------------------------------------------


def _reward(completions, **kw):
    return [1.0] * len(completions)


def test_prompt_counts_sum_the_ranks_logs_and_a_resume_truncates_them(tmp_path, monkeypatch):
    prompts = ["a", "b", "c"]
    index = prompt_counts.index_of(prompts)
    fn = prompt_counts.counting_reward(_reward, tmp_path, index)
    assert fn.__name__ == "_reward"
    state = lambda s: SimpleNamespace(global_step=s)  # noqa: E731
    for rank, batches in ((0, [["a"] * 4 + ["b"] * 4, ["a"] * 4]), (1, [["a"] * 4 + ["z"] * 4, ["b"] * 4])):
        monkeypatch.setenv("RANK", str(rank))
        fn = prompt_counts.counting_reward(_reward, tmp_path, index)
        for step, batch in enumerate(batches):
            assert fn(["x"] * len(batch), prompts=batch, trainer_state=state(step)) == [1.0] * len(batch)
    fn(["x"], prompts=None)  # outside a trainer: not counted
    out = prompt_counts.counts(tmp_path, n_prompts=3, num_generations=4)
    assert [p["seen"] for p in out["per_prompt"]] == [3.0, 2.0, 0.0]  # a: 4+4+4 completions, b: 4+4, c: none
    assert out["unknown_prompt_completions"] == 4 and out["last_step"] == 2
    assert out["summary"] == {"min": 0.0, "max": 3.0, "mean": pytest.approx(5 / 3), "never_seen": 1,
                              "seen_more_than_once": 2}
    prompt_counts.reset(tmp_path, resume_step=1)  # rank 1 resumes from step 1: its step-2 line goes
    assert prompt_counts.counts(tmp_path, 3, 4)["per_prompt"][1]["seen"] == 1.0
    written = prompt_counts.write_counts(tmp_path, 3, 4)
    assert prompt_counts.read(tmp_path) == written and not (tmp_path / prompt_counts.LOG_DIR).exists()
    prompt_counts.reset(tmp_path, None)
    assert prompt_counts.index_of([[{"role": "user", "content": "q"}]]) == {'[{"content": "q", "role": "user"}]': 0}


# ----------------------------------------------------------------------------------------------
# the reading from run directories
# ----------------------------------------------------------------------------------------------

FULL_TRAIN, FULL_TEST = [0.70, 0.74, 0.66, 0.72], [0.40, 0.42, 0.38, 0.41]
PR1S_TRAIN, PR1S_TEST = [0.50, 0.53, 0.47, 0.52], [0.40, 0.41, 0.39, 0.40]


def _runs(tmp_path, phase="post", pre_shift=0.2):
    """Per seed a Full run and a PR1S run whose final rows hold the sampled accuracies above; the PR1S final row
    has both phases, its pre-substitution values ``pre_shift`` higher, and ``phase`` unsuffixed."""
    full, pr1s = {}, {}
    for s in range(4):
        full[s] = write_run(tmp_path / f"full{s}", evals=[
            {"step": 0, "sampled_train_acc": 0.1, "sampled_test_acc": 0.1},
            {"step": 6, "sampled_train_acc": FULL_TRAIN[s], "sampled_test_acc": FULL_TEST[s]}])
        post = {"sampled_train_acc": PR1S_TRAIN[s], "sampled_test_acc": PR1S_TEST[s]}
        pre = {k: v + pre_shift for k, v in post.items()}
        row = {"step": 6, **(post if phase == "post" else pre), "phase": phase,
               **{f"pre/{k}": v for k, v in pre.items()}, **{f"post/{k}": v for k, v in post.items()}}
        pr1s[s] = write_run(tmp_path / f"pr1s{s}", config={"eval": {"pr1s_phase": phase}},
                            evals=[{"step": 0, "sampled_train_acc": 0.1, "sampled_test_acc": 0.1}, row])
        fileio.append_jsonl(pr1s[s] / prompt_counts.LOG_DIR / "rank0.jsonl", {"step": 1, "completions": {"0": 16}})
        prompt_counts.write_counts(pr1s[s], n_prompts=2, num_generations=8)
    return full, pr1s


def test_c1_reading_from_runs_has_the_known_difference_in_differences(tmp_path):
    full, pr1s = _runs(tmp_path)
    out = readings_c1.reading(full, pr1s)
    direct = readings.c1_reading(FULL_TRAIN, FULL_TEST, PR1S_TRAIN, PR1S_TEST)
    # DiD per seed = (0.30, 0.32, 0.28, 0.31) − (0.10, 0.12, 0.08, 0.12) = (0.20, 0.20, 0.20, 0.19)
    assert out["did"]["mean"] == pytest.approx(0.1975) and out["did"] == direct["did"]
    assert out["overfits_more_than_pr1s"] and out["tost"]["equivalent"]  # Δtest (0, .01, −.01, .01): within ±0.05
    assert out["phase"] == ["post"] and [r["step_pr1s"] for r in out["per_seed"]] == [6] * 4
    assert out["by_phase"]["pre"]["did"]["mean"] == pytest.approx(0.1975)  # train and test shifted alike
    assert out["by_phase"]["pre"]["test_gap"]["mean"] == pytest.approx(0.0025 - 0.2)
    assert not out["by_phase"]["pre"]["tost"]["equivalent"]
    assert out["prompts_seen"]["pr1s"] == {"runs": 4, "n_prompts": 2, "mean_seen": 1.0, "max_seen": 2.0,
                                           "min_seen": 0.0, "never_seen": 1.0, "seen_more_than_once": 1.0}
    assert out["prompts_seen"]["full"] is None
    assert "C1 train − test DiD" in out["reading"] and "seen 1 times" in out["reading"]


def test_c1_reading_follows_the_phase_the_config_named(tmp_path):
    out = readings_c1.reading(*_runs(tmp_path, phase="pre", pre_shift=0.1))
    assert out["phase"] == ["pre"] and out["means"]["pr1s_test"] == pytest.approx(0.4 + 0.1)
    assert out["by_phase"]["post"]["test_gap"]["mean"] == pytest.approx(0.0025)


def test_runs_without_sampled_columns_are_reported_not_measured(tmp_path):
    full = {0: write_run(tmp_path / "f", evals=[{"step": 6, "test_acc": 0.4}])}
    pr1s = {0: write_run(tmp_path / "p", evals=[{"step": 6, "test_acc": 0.4}])}
    out = readings_c1.reading(full, pr1s)
    assert "not measured" in out["reading"] and "did" not in out


def test_c1_json_keeps_readings_that_classify_ignores():
    rows = [{"reward_gap": g, "test_gap": 0.0} for g in (0.1, 0.12, 0.11)]
    r = c1.C1Result(profile="smoke", full="full", pr1s="p", seeds=[0, 1, 2], per_seed=rows, sweep=[],
                    **c1.verdict_of_rows(rows))
    plain = c1.classify(r.to_json())
    r.readings = {"C1": {"did": {"mean": -1.0}}}
    stored = c1.C1Result.from_json(r.to_json()).to_json()
    assert stored["readings"] == r.readings and c1.classify(stored) == plain
