"""This project's run recorder: the ``transformers.TrainerCallback`` that writes a run directory's
``metrics.jsonl``, ``evals.jsonl`` and safetensors checkpoints (the files ``training.runs`` reads back).
"""
from __future__ import annotations

import time
from pathlib import Path

from transformers import TrainerCallback

from .. import fileio, models
from ..world import evaluate

METRIC_KEYS = ("reward", "reward_std", "step_time", "loss", "grad_norm", "entropy", "frac_reward_zero_std",
               "completions/mean_length", "completions/clipped_ratio", "kl", "learning_rate")


class RunRecorder(TrainerCallback):
    """The run directory's logs: ``metrics.jsonl`` from TRL's logs, ``evals.jsonl`` at a fixed cadence, and
    safetensors checkpoints. Only the world-process-zero writes (other ranks train on).

    Args:
        run (Path): the run directory.
        eval_sets (dict[str, list[tasks.Item]]): ``math_test``, ``math_train``, ``facts``, ``skill_test`` and,
            with ``skill_train_too``, ``skill_train``, and ``math_ood`` when present (a real-model task's
            out-of-distribution problems: ``ood_acc``); greedy accuracy of each is one column of evals.jsonl.
        eval_every (int, default 0): evaluation period in optimizer steps (also step 0 and the last step); 0: none.
        checkpoint_every (int, default 0): ``checkpoints/step-XXXXX/model.safetensors`` period; 0: none.
        skill_train_too (bool, default False): also score the skill's RL split (multi-task runs).
        sampled (sampled_eval.SampledEval | None): sampled accuracy under the training's decoding at each
            evaluation (``sampled_train_acc``, ``sampled_test_acc``, ``sampled_seconds``).
        substitution_every (int, default 0): the PR1S period K of a PR1S run (0: none).
        pr1s_phase (str, default "post"): config.Eval.pr1s_phase.
        sampler (str, default "generate"): how the greedy completions are made (evaluate.generate; "kv" gives
            the same completions faster).

    PR1S substitution steps. The recorder is registered before PR1S (the order: train.make_callbacks). At a step
    that is both an evaluation and a substitution step it therefore evaluates the pre-substitution
    weights, holds that row, and :class:`AfterSubstitution` (a callback placed after PR1S) evaluates again on
    the substituted weights and writes one row with both: every column under ``pre/<column>`` and
    ``post/<column>``, the unsuffixed columns equal to the ``pr1s_phase`` one, and ``phase`` naming it. Other
    rows carry no ``phase``: the weights have one state at that step.
    """

    def __init__(self, run: Path, eval_sets: dict, eval_every: int = 0, checkpoint_every: int = 0,
                 skill_train_too: bool = False, sampled=None, substitution_every: int = 0,
                 pr1s_phase: str = "post", sampler: str = "generate"):
        self.run, self.eval_sets = Path(run), eval_sets
        self.eval_every, self.checkpoint_every, self.skill_train_too = eval_every, checkpoint_every, skill_train_too
        self.sampled, self.substitution_every, self.pr1s_phase = sampled, substitution_every, pr1s_phase
        self.sampler = sampler
        self.pending: dict | None = None  # the pre-substitution row of the current step, until AfterSubstitution

    def on_log(self, args, state, control, logs=None, **kw):
        if not logs or "reward" not in logs or not state.is_world_process_zero:
            return
        row = {"step": state.global_step, **{k: logs[k] for k in METRIC_KEYS if k in logs}}
        row.update({k: v for k, v in logs.items() if k.startswith("rewards/") and k.endswith("/mean")})
        fileio.append_jsonl(self.run / "metrics.jsonl", row)

    def on_train_begin(self, args, state, control, model=None, **kw):
        if (state.is_world_process_zero and state.global_step == 0 and self.eval_every
                and not (self.run / "evals.jsonl").exists()):
            self.evaluate(model, kw["processing_class"], 0)

    def on_step_end(self, args, state, control, model=None, **kw):
        if not state.is_world_process_zero:
            return
        step, last = state.global_step, state.global_step == state.max_steps
        if self.eval_every and (step % self.eval_every == 0 or last):
            if self.substitution_every and step % self.substitution_every == 0:
                self.pending = self.measure(model, kw["processing_class"], step)  # AfterSubstitution writes it
            else:
                self.evaluate(model, kw["processing_class"], step)
        if self.checkpoint_every and (step % self.checkpoint_every == 0 or last):
            fileio.save_tensors(self.run / "checkpoints" / f"step-{step:05d}" / "model.safetensors",
                            models.unique_tensors(model))

    def evaluate(self, model, tokenizer, step: int) -> dict:
        """Measure and write one evals.jsonl row."""
        row = self.measure(model, tokenizer, step)
        fileio.append_jsonl(self.run / "evals.jsonl", row)
        return row

    def after_substitution(self, model, tokenizer, step: int) -> dict | None:
        """At a step whose pre-substitution row is pending: measure the substituted weights and write the row
        with both phases (the class docstring)."""
        if self.pending is None or self.pending["step"] != step:
            return None
        pre, post = self.pending, self.measure(model, tokenizer, step)
        self.pending = None
        row = phase_row(pre, post, self.pr1s_phase)
        fileio.append_jsonl(self.run / "evals.jsonl", row)
        return row

    def measure(self, model, tokenizer, step: int) -> dict:
        """One evaluation's columns: greedy accuracies, then the sampled ones (when configured)."""
        t0 = time.time()
        sets = (["math_test", "math_train", "facts", "skill_test"] + (["skill_train"] if self.skill_train_too else [])
                + (["math_ood"] if "math_ood" in self.eval_sets else []))
        columns = {"math_test": "test_acc", "math_train": "train_acc", "facts": "fact_acc", "skill_test": "skill_acc",
                   "skill_train": "skill_train_acc", "math_ood": "ood_acc"}
        row = {"step": step}
        for name in sets:
            row[columns[name]] = evaluate.greedy_accuracy(model, tokenizer, self.eval_sets[name],
                                                          sampler=self.sampler).accuracy
        if self.sampled is not None:
            row.update(self.sampled.measure(model, tokenizer, step))
        row["eval_seconds"] = round(time.time() - t0, 2)
        return row


def phase_row(pre: dict, post: dict, phase: str) -> dict:
    """One evals.jsonl row from the evaluations before and after a substitution: ``pre/<column>``,
    ``post/<column>``, the unsuffixed columns of ``phase``, ``phase`` itself; ``eval_seconds`` is their sum."""
    cols = [k for k in pre if k not in ("step", "eval_seconds")]
    return {"step": pre["step"], **{k: (pre if phase == "pre" else post)[k] for k in cols}, "phase": phase,
            **{f"pre/{k}": pre[k] for k in cols}, **{f"post/{k}": post[k] for k in cols},
            "eval_seconds": round(pre["eval_seconds"] + post["eval_seconds"], 2)}


class AfterSubstitution(TrainerCallback):
    """Placed after PR1S (train.make_callbacks): completes the recorder's pending row at a substitution step
    with the evaluation of the substituted weights (RunRecorder.after_substitution)."""

    def __init__(self, recorder: RunRecorder):
        self.recorder = recorder

    def on_step_end(self, args, state, control, model=None, **kw):
        if state.is_world_process_zero:
            self.recorder.after_substitution(model, kw["processing_class"], state.global_step)
