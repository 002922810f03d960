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
            with ``skill_train_too``, ``skill_train`` (greedy accuracy of each is one column of evals.jsonl).
        eval_every (int, default 0): evaluation period in optimizer steps (also step 0 and the last step); 0: none.
        checkpoint_every (int, default 0): ``checkpoints/step-XXXXX/model.safetensors`` period; 0: none.
        skill_train_too (bool, default False): also score the skill's RL split (multi-task runs).
        sampler (str, default "generate"): how the greedy completions are made (evaluate.generate; "kv" gives
            the same completions faster).
    """

    def __init__(self, run: Path, eval_sets: dict, eval_every: int = 0, checkpoint_every: int = 0,
                 skill_train_too: bool = False, sampler: str = "generate"):
        self.run, self.eval_sets = Path(run), eval_sets
        self.eval_every, self.checkpoint_every, self.skill_train_too = eval_every, checkpoint_every, skill_train_too
        self.sampler = sampler

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
            self.evaluate(model, kw["processing_class"], step)
        if self.checkpoint_every and (step % self.checkpoint_every == 0 or last):
            fileio.save_tensors(self.run / "checkpoints" / f"step-{step:05d}" / "model.safetensors",
                            models.unique_tensors(model))

    def evaluate(self, model, tokenizer, step: int) -> dict:
        t0 = time.time()
        sets = ["math_test", "math_train", "facts", "skill_test"] + (["skill_train"] if self.skill_train_too else [])
        columns = {"math_test": "test_acc", "math_train": "train_acc", "facts": "fact_acc", "skill_test": "skill_acc",
                   "skill_train": "skill_train_acc"}
        row = {"step": step}
        for name in sets:
            row[columns[name]] = evaluate.greedy_accuracy(model, tokenizer, self.eval_sets[name],
                                                          sampler=self.sampler).accuracy
        row["eval_seconds"] = round(time.time() - t0, 2)
        fileio.append_jsonl(self.run / "evals.jsonl", row)
        return row
