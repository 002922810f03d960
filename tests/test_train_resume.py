"""An interrupted run resumes from its last checkpoint and finishes with complete, non-duplicated logs."""
import pytest
from transformers import TrainerCallback

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.training import runs, train

pytestmark = pytest.mark.slow  # trains or loads a real model


class Interrupted(RuntimeError):
    pass


class InterruptAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.step:
            raise Interrupted(f"simulated crash at step {self.step}")


def test_interrupted_pr1s_run_resumes_to_done(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path)
    original = train.make_callbacks
    # smoke: 6 steps, TRL checkpoint every 3 steps -> crash at step 4 leaves checkpoint-3 behind
    monkeypatch.setattr(train, "make_callbacks", lambda *a, **k: original(*a, **k) + [InterruptAt(4)])
    with pytest.raises(Interrupted):
        train.train("smoke", "pr1s_trunc_k10", 0)
    run = runs.run_dir("smoke", "pr1s_trunc_k10", 0)
    assert not (run / "DONE").exists()
    assert (run / "trainer" / "checkpoint-3").exists()
    with pytest.raises(runs.RunError, match="no DONE marker"):
        runs.require_done(run)
    before = [r for r in fileio.read_jsonl(run / "metrics.jsonl") if r["step"] <= 3]

    monkeypatch.setattr(train, "make_callbacks", original)
    assert train.train("smoke", "pr1s_trunc_k10", 0) == run
    assert (run / "DONE").exists() and not (run / "trainer").exists()
    assert fileio.read_json(run / "DONE")["steps"] == 6
    metrics = fileio.read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in metrics] == [1, 2, 3, 4, 5, 6]  # step 4 logged once, not twice
    assert metrics[:3] == before  # lines up to the checkpoint are kept as written
    eval_steps = [r["step"] for r in fileio.read_jsonl(run / "evals.jsonl")]
    assert eval_steps == sorted(set(eval_steps)) and eval_steps[-1] == 6
    subs = [r["step"] for r in fileio.read_jsonl(run / "substitutions.jsonl")]
    assert subs == sorted(set(subs)) and 4 in subs and 6 in subs  # PR1S every 2 steps, across the resume
    assert (run / "final" / "model.safetensors").exists()
    seen = fileio.read_json(run / "prompt_counts.json")["per_prompt"]  # the steps redone after the resume count once
    assert sum(p["seen"] for p in seen) == 12
