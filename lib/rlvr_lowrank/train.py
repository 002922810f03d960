"""GRPO training through TRL's ``GRPOTrainer``, writing the run directory of design §5.

``python -m rlvr_lowrank train --profile tiny --experiment full --seed 0``

A run is fully described by its *resolved config* (profile defaults + experiment overrides + seed);
its hash names the cache entry:

    runs/<profile>/<experiment>/seed<k>/
        config.yaml            resolved config, with ``config_hash``
        metrics.jsonl          one line per optimizer step: reward, reward_std, step_time, ...
        evals.jsonl            one line per eval step: greedy test acc, greedy train-subset acc,
                               knowledge and skill acc
        substitutions.jsonl    PR1S only: energy removed at each substitution
        trajectory/            rank-k factors of ΔW_t every N steps (trajectory.py)
        checkpoints/step-XXXXX/model.safetensors
        trainer/               TRL's own resumable checkpoints (optimizer, RNG); deleted at the end
        DONE                   written last

A run with ``DONE`` and the same hash is reused; a run without ``DONE`` resumes from its last
trainer checkpoint; a run whose hash differs is refused (delete it or change the experiment name).
"""
from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path

from . import io, paths, profiles, tasks

# CPU settings done right (trl_grpo.md §6, §12): no bf16/fp16, no gradient checkpointing.
CPU_FIXED = dict(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, report_to="none",
                 dataloader_num_workers=0, disable_dropout=True, logging_steps=1, remove_unused_columns=False)


class RunError(RuntimeError):
    """A run directory that cannot be used as it is; the message says what to do."""


def resolve_config(profile: str, experiment: str, seed: int, overrides: dict | None = None) -> dict:
    """Profile ``train`` defaults, deep-merged with ``experiments.<experiment>`` and ``overrides``."""
    prof = profiles.load(profile)
    experiments = prof.get("experiments", {})
    if experiment not in experiments:
        raise ValueError(f"unknown experiment {experiment!r} for profile {profile!r}; "
                         f"defined in configs/{profile}.yaml: {sorted(experiments)}")
    cfg = {"profile": profile, "experiment": experiment, "seed": int(seed), "model": prof["model"],
           "train": copy.deepcopy(prof["train"]), "eval": copy.deepcopy(prof.get("eval", {})),
           "pr1s": None, "trajectory": copy.deepcopy(prof.get("trajectory")),
           "checkpoint_every": prof.get("checkpoint_every", 0), "tasks": ["math"], "lora": None}
    _deep_update(cfg, copy.deepcopy(experiments[experiment] or {}))
    _deep_update(cfg, copy.deepcopy(overrides or {}))
    _validate(cfg)
    return cfg


def _deep_update(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def _validate(cfg: dict) -> None:
    t = cfg["train"]
    if t["per_device_train_batch_size"] % t["num_generations"]:
        raise ValueError("per_device_train_batch_size counts completions and must be a multiple of num_generations "
                         f"(got {t['per_device_train_batch_size']} and {t['num_generations']})")
    tasks.check_task_mix(cfg["tasks"])
    if cfg["pr1s"]:
        every = cfg["pr1s"].get("every")
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"pr1s.every must be a positive integer, got {every!r}")
        if cfg["pr1s"].get("variant", "trunc") not in ("trunc", "normmatch"):
            raise ValueError(f"pr1s.variant must be 'trunc' or 'normmatch', got {cfg['pr1s'].get('variant')!r}")


def model_dir(cfg: dict) -> Path:
    p = Path(cfg["model"])
    return p if p.is_absolute() else paths.ROOT / p


def train_dataset(cfg: dict):
    """The RL training prompts: the small rl_train split of each task in the mix (seen for many epochs)."""
    from datasets import Dataset

    rows = []
    for task in cfg["tasks"]:
        for it in tasks.load_items(task, "rl_train"):
            rows.append({"prompt": it.prompt, "answer": it.answer, "task": it.task})
    return Dataset.from_list(rows)


def _eval_sets(cfg: dict) -> dict:
    e = cfg["eval"]
    test = tasks.load_items("math", "test")
    n = e.get("n_math_test", len(test))
    return {
        "math_test": test[:: max(1, len(test) // n)][:n],
        "math_train": tasks.load_items("math", "rl_train")[: e.get("n_math_train", 100)],
        "facts": tasks.load_items("fact")[: e.get("n_facts", 160)],
        "skill_test": tasks.load_items("skill", "test")[: e.get("n_skill", 300)],
        "skill_train": tasks.load_items("skill", "rl_train")[: e.get("n_skill", 96)],
    }


def _make_callbacks(cfg: dict, run: Path, base_state: dict, eval_sets: dict, quiet: bool):
    from transformers import TrainerCallback

    from . import evaluate

    class RunRecorder(TrainerCallback):
        """metrics.jsonl from TRL's logs, evals.jsonl at a fixed cadence, safetensors checkpoints."""

        def __init__(self):
            self.t_last = None

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "reward" not in logs:
                return
            row = {"step": state.global_step}
            for k in ("reward", "reward_std", "step_time", "loss", "grad_norm", "entropy", "frac_reward_zero_std",
                      "completions/mean_length", "completions/clipped_ratio", "kl", "learning_rate"):
                if k in logs:
                    row[k] = logs[k]
            for k, v in logs.items():
                if k.startswith("rewards/") and k.endswith("/mean"):
                    row[k] = v
            io.append_jsonl(run / "metrics.jsonl", row)

        def on_step_end(self, args, state, control, model=None, **kw):
            step = state.global_step
            every = cfg["eval"].get("every", 0)
            if every and (step % every == 0 or step == state.max_steps):
                self._evaluate(model, kw["processing_class"], step)
            ck = cfg.get("checkpoint_every", 0)
            if ck and (step % ck == 0 or step == state.max_steps):
                io.save_tensors(run / "checkpoints" / f"step-{step:05d}" / "model.safetensors", unique_tensors(model))

        def on_train_begin(self, args, state, control, model=None, **kw):
            if state.global_step == 0 and cfg["eval"].get("every", 0) and not (run / "evals.jsonl").exists():
                self._evaluate(model, kw["processing_class"], 0)

        def _evaluate(self, model, tok, step):
            t0 = time.time()
            row = {"step": step}
            row["test_acc"] = evaluate.greedy_accuracy(model, tok, eval_sets["math_test"]).accuracy
            row["train_acc"] = evaluate.greedy_accuracy(model, tok, eval_sets["math_train"]).accuracy
            row["fact_acc"] = evaluate.greedy_accuracy(model, tok, eval_sets["facts"]).accuracy
            row["skill_acc"] = evaluate.greedy_accuracy(model, tok, eval_sets["skill_test"]).accuracy
            if "skill" in cfg["tasks"]:
                row["skill_train_acc"] = evaluate.greedy_accuracy(model, tok, eval_sets["skill_train"]).accuracy
            row["eval_seconds"] = round(time.time() - t0, 2)
            io.append_jsonl(run / "evals.jsonl", row)

    callbacks = [RunRecorder()]
    if cfg["pr1s"]:
        from .rank1 import PeriodicRank1Callback

        p = cfg["pr1s"]
        callbacks.append(PeriodicRank1Callback(base_state=base_state, every=p["every"], variant=p.get("variant", "trunc"),
                                               optimizer_state=p.get("optimizer_state", "keep"),
                                               log_path=run / "substitutions.jsonl"))
    if cfg.get("trajectory"):
        from .trajectory import TrajectoryRecorder

        tr = cfg["trajectory"]
        callbacks.append(TrajectoryRecorder(base_state=base_state, out_dir=run / "trajectory", every=tr["every"],
                                            k=tr.get("k", 4)))
    return callbacks


def unique_tensors(model) -> dict:
    """The state dict without aliases (tied lm_head/embeddings are stored once, as safetensors requires)."""
    seen, out = set(), {}
    for k, v in model.state_dict().items():
        if v.data_ptr() in seen:
            continue
        seen.add(v.data_ptr())
        out[k] = v
    return out


def _latest_trainer_checkpoint(run: Path) -> Path | None:
    ckpts = sorted((run / "trainer").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    return ckpts[-1] if ckpts else None


def _truncate_logs(run: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from (they will be redone)."""
    for name in ("metrics.jsonl", "evals.jsonl", "substitutions.jsonl"):
        rows = [r for r in io.read_jsonl(run / name) if r.get("step", 0) <= step]
        if (run / name).exists():
            io.write_text(run / name, "".join(io.json.dumps(r, sort_keys=True) + "\n" for r in rows))


def train(profile: str, experiment: str, seed: int, overrides: dict | None = None, quiet: bool | None = None) -> Path:
    """Run (or reuse, or resume) one GRPO training run; returns its run directory."""
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from . import models

    cfg = resolve_config(profile, experiment, seed, overrides)
    h = io.config_hash(cfg)
    run = paths.run_dir(profile, experiment, seed)
    quiet = (profile == "smoke") if quiet is None else quiet
    if (run / "config.yaml").exists():
        old = io.read_yaml(run / "config.yaml")
        if old.get("config_hash") != h:
            raise RunError(f"{run} holds a run with another config (hash {old.get('config_hash')} != {h}); "
                           "delete that directory or use another experiment name")
        if (run / "DONE").exists():
            return run
    run.mkdir(parents=True, exist_ok=True)
    io.write_yaml(run / "config.yaml", {**cfg, "config_hash": h})

    torch.set_num_threads(cfg["train"].get("threads", torch.get_num_threads()))
    torch.manual_seed(seed)
    model, tok = models.load_model(model_dir(cfg))
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    peft_config = None
    if cfg.get("lora"):
        from peft import LoraConfig

        peft_config = LoraConfig(**cfg["lora"])
    tr = dict(cfg["train"])
    tr.pop("threads", None)
    args = GRPOConfig(output_dir=str(run / "trainer"), seed=seed, data_seed=seed, disable_tqdm=quiet,
                      save_strategy="steps" if cfg.get("checkpoint_every") else "no",
                      save_steps=cfg.get("checkpoint_every") or 500, save_only_model=False, save_total_limit=1,
                      log_level="error" if quiet else "passive", **CPU_FIXED, **tr)
    reward = tasks.math_reward if cfg["tasks"] == ["math"] else tasks.task_reward
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=train_dataset(cfg),
                          processing_class=tok, peft_config=peft_config,
                          callbacks=_make_callbacks(cfg, run, base_state, _eval_sets(cfg), quiet))
    if quiet:  # smoke mode: no per-step log dicts on stdout (keeps nbval outputs small and stable)
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    resume = _latest_trainer_checkpoint(run)
    if resume is not None:
        _truncate_logs(run, int(resume.name.split("-")[1]))
    else:
        for name in ("metrics.jsonl", "evals.jsonl", "substitutions.jsonl"):
            (run / name).unlink(missing_ok=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    final = trainer.model
    if cfg.get("lora"):
        final = final.merge_and_unload()
    io.save_tensors(run / "final" / "model.safetensors", unique_tensors(final))
    shutil.rmtree(run / "trainer", ignore_errors=True)  # resumable state is no longer needed
    io.write_json(run / "DONE", {"config_hash": h, "seconds": round(time.time() - t0, 1),
                                 "steps": trainer.state.global_step})
    return run


def is_done(run: Path) -> bool:
    return (Path(run) / "DONE").exists()


def require_done(run: Path) -> Path:
    """Refuse to read a run that did not finish (design §5: never read a half-written run as a result)."""
    run = Path(run)
    if not is_done(run):
        cfg = io.read_yaml(run / "config.yaml") if (run / "config.yaml").exists() else {}
        cmd = (f"python -m rlvr_lowrank train --profile {cfg.get('profile', '<profile>')} "
               f"--experiment {cfg.get('experiment', '<experiment>')} --seed {cfg.get('seed', '<seed>')}")
        raise RunError(f"{run} has no DONE marker (missing or interrupted run); run `{cmd}` to finish it")
    return run
