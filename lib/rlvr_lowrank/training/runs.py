"""The run-directory contract: where a run lives, when it counts as finished, and how it is read.

Reading never trains: a run that is missing, unfinished or made with another config is an error that
names the command that makes it (training is ``train.py``'s job, and the pipeline trains what the
notebooks read before they run). A run directory::

    runs/<profile>/<experiment>/seed<k>/
        config.yaml            the resolved config (config.Experiment.to_dict()) with its ``config_hash``, and the
                               run's ``identity`` (see :func:`identity`) and ``run_hash``
        metrics.jsonl          one line per optimizer step: reward, reward_std, step_time, ...
        evals.jsonl            one line per eval step: greedy test, train-subset, knowledge and skill accuracy;
                               sampled_train_acc / sampled_test_acc under the training's decoding (sampled_eval);
                               at a PR1S substitution step also pre/<column> and post/<column>, ``phase`` naming
                               the unsuffixed one (config.Eval.pr1s_phase; run_recorder.RunRecorder)
        prompt_counts.json     how many times each training prompt was seen (prompt_counts; prompts_seen/ while
                               it trains)
        substitutions.jsonl    PR1S only: what each substitution removed
        trajectory/            rank-k factors of ΔW_t and of its increments every N steps (trajectory.py)
        checkpoints/step-XXXXX/model.safetensors
        trainer/               TRL's resumable checkpoints (optimizer, RNG); deleted once the run is done
        final/model.safetensors
        DONE                   written last: the run hash, config hash, steps, seconds, checksum of the final weights
        .lock                  pid of the process training it (while it trains)
"""
from __future__ import annotations

import copy
import functools
import os
import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import fileio, layout, models, paths
from . import config, integrity, precision


class RunError(RuntimeError):
    """A run directory that cannot be used as it is; the message says what to do."""


def run_dir(profile: str, experiment: str, seed: int) -> Path:
    """runs/<profile>/<experiment>/seed<k>/ (RLVR_RUNS_DIR moves runs/ elsewhere)."""
    return paths.RUNS / profile / experiment / f"seed{seed}"


def train_command(profile, experiment, seed) -> str:
    """The command that trains (or resumes) one run."""
    return shlex.join(["python", "-m", "rlvr_lowrank", "train", "--profile", str(profile),
                       "--experiment", str(experiment), "--seed", str(seed)])


def model_dir(cfg: config.Experiment | dict) -> Path:
    """The base model directory of a run config (relative paths are relative to the repository)."""
    p = Path(cfg.model if isinstance(cfg, config.Experiment) else cfg["model"])
    return p if p.is_absolute() else paths.ROOT / p


def read_config(run: Path) -> dict:
    """config.yaml of a run directory, as a mapping."""
    path = Path(run) / "config.yaml"
    cfg = fileio.read_yaml(path)
    if not isinstance(cfg, dict):
        raise RunError(f"{path} is empty or not a YAML mapping; delete {run} and re-train it")
    return cfg


def is_done(run: Path) -> bool:
    """A run is done when its DONE marker is a complete JSON object (an empty or torn one is not)."""
    return integrity.read_done(Path(run) / "DONE") is not None


def require_done(run: Path) -> Path:
    """Refuse to read a run that did not finish: a half-written run is never read as a result."""
    run = Path(run)
    if not is_done(run):
        cfg = fileio.read_yaml(run / "config.yaml") if (run / "config.yaml").exists() else None
        cfg = cfg if isinstance(cfg, dict) else {}
        cmd = train_command(cfg.get("profile", "<profile>"), cfg.get("experiment", "<experiment>"),
                            cfg.get("seed", "<seed>"))
        why = "" if not (run / "DONE").exists() else f" ({integrity.done_problem(run / 'DONE')})"
        raise RunError(f"{run} has no DONE marker{why} (missing or interrupted run); run `{cmd}` to finish it")
    return run


# ----------------------------------------------------------------------------------------------
# Identity: what determines a run's result
# ----------------------------------------------------------------------------------------------

def _stat_key(files) -> tuple:
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(files))


@functools.lru_cache(maxsize=32)
def _model_fingerprint(directory: str, stat_key: tuple) -> str:  # stat_key: recomputed when a file changes
    path = Path(directory)
    return integrity.files_fingerprint([path]) if path.is_file() else integrity.directory_fingerprint(path)


@functools.lru_cache(maxsize=8)
def _data_fingerprint(stat_key: tuple) -> str:
    return integrity.files_fingerprint([Path(f) for f, _, _ in stat_key])


@functools.lru_cache(maxsize=8)
def _code_fingerprint(stat_key: tuple) -> str:
    return integrity.code_fingerprint(layout.result_modules())


def base_model_path(cfg: config.Experiment) -> Path:
    """The file or directory holding the base weights (the GGUF file for ``smollm2-gguf``)."""
    return models.smollm2_gguf_path() if cfg.model == config.SMOLLM2_MODEL else model_dir(cfg)


def identity(cfg: config.Experiment) -> dict:
    """What determines a run's result, each as a hash: the resolved config, the content of the base model
    (weights, config, tokenizer), the task data files, and the source of the library modules whose change
    alters training (layout.result_modules: what training imports; not, say, figures.plots). Cached per process
    while no file changes."""
    base = base_model_path(cfg)
    base_files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
    data_dir = paths.DATA / "real" if cfg.model == config.SMOLLM2_MODEL else paths.TASKS_DIR  # chat_tasks.REAL_DATA
    data_files = sorted(data_dir.glob("*.jsonl"))
    code_files = [layout.modules()[m] for m in layout.result_modules()]
    ident = {"config": cfg.hash,
             "base_model": _model_fingerprint(str(base), _stat_key(base_files))[:16],
             "data": _data_fingerprint(_stat_key(data_files))[:16],
             "code": _code_fingerprint(_stat_key(code_files))[:16]}
    if cfg.train.get("precision") == "bf16":
        # what it computes in on this machine: bf16, or fp32 where the CPU has no native bf16 (a fallback
        # run is a different result); only for runs that ask for bf16, so other runs keep their identity
        ident["precision"] = precision.effective_precision("bf16", warn=lambda m: None)
    return ident


IDENTITY_MEANING = {"config": "the resolved config (configs/<profile>.yaml)", "base_model": "the base model's files",
                    "data": "the task data (data/tasks/; data/real/ for SmolLM2)",
                    "code": "the training code (layout.result_modules)",
                    "precision": "the precision it computes in on this machine (precision.effective_precision)"}


HEADER_KEYS = config.HEADER_KEYS  # what config.yaml holds besides the resolved config


def run_hash(ident: dict) -> str:
    return fileio.config_hash(ident)


def write_header(run: Path, cfg: config.Experiment) -> dict:
    """config.yaml of a new run: the resolved config, its hash, the run's identity and its hash."""
    ident = identity(cfg)
    fileio.write_yaml(Path(run) / "config.yaml", {**cfg.to_dict(), "config_hash": cfg.hash, "identity": ident,
                                              "run_hash": run_hash(ident)})
    return ident


def identity_problem(run: Path, cfg: config.Experiment) -> str | None:
    """None when the run on disk was made from exactly what ``cfg`` would train now; else what changed."""
    stored = read_config(run)
    current = identity(cfg)
    old = stored.get("identity")
    if not isinstance(old, dict):
        return (f"{run} has no recorded identity (config hash {stored.get('config_hash')}): it was made by an "
                "older version of this project")
    changed = [k for k in current if old.get(k) != current[k]]
    written = {k: v for k, v in stored.items() if k not in HEADER_KEYS}
    if not changed and written != cfg.to_dict():
        edited = sorted(k for k in set(written) | set(cfg.to_dict()) if written.get(k) != cfg.to_dict().get(k))
        return f"{run}/config.yaml was edited after the run was made (keys {edited} differ from its recorded identity)"
    if not changed:
        return None
    return f"{run} was made from other inputs: " + "; ".join(
        f"{IDENTITY_MEANING[k]} changed ({old.get(k)} -> {current[k]})" for k in changed)


def recorded_hashes(profile: str, experiments) -> dict[str, str]:
    """{"<experiment>/seed<k>": run hash from its DONE} for every finished run of ``experiments``."""
    out = {}
    for e in experiments:
        for s in config.seeds_of(profile, e):
            done = integrity.read_done(run_dir(profile, e, s) / "DONE")
            if done is not None:
                out[f"{e}/seed{s}"] = done.get("run_hash")
    return out


def stale_hashes(profile: str, recorded: dict[str, str]) -> list[str]:
    """The entries of ``recorded`` (see recorded_hashes) whose run hash is not what the current config, base
    model, data and training code would give: the result was computed from runs that are now stale. Needs
    no run directory (the identity is computed from the inputs)."""
    stale = []
    for key, recorded_hash in recorded.items():
        experiment, seed = key.rsplit("/seed", 1)
        try:
            current = run_hash(identity(config.resolve(profile, experiment, int(seed))))
        except config.ConfigError:
            current = None  # the experiment or seed no longer exists
        if current != recorded_hash:
            stale.append(key)
    return stale


def require_run(profile: str, experiment: str, seed: int) -> Path:
    """The directory of a finished run made from the current config, base model, data and training code;
    never trains. Otherwise a RunError says what is missing or what changed, and the command that remakes it.
    """
    cfg = config.resolve(profile, experiment, seed)
    run = run_dir(profile, experiment, seed)
    cmd = train_command(profile, experiment, seed)
    if not (run / "config.yaml").exists():
        raise RunError(f"run {run} does not exist; train it with `{cmd}` "
                       f"(or the whole profile: `python -m rlvr_lowrank train-all --profile {profile}`)")
    problem = identity_problem(run, cfg)
    if problem:
        raise RunError(f"{problem}; move it aside or delete it and run `{cmd}` "
                       f"(or `python -m rlvr_lowrank train-all --profile {profile} --replace-stale`)")
    return require_done(run)


@contextmanager
def lock(run: Path):
    """Hold ``<run>/.lock`` while training: two writers would corrupt a run. A lock left by a dead
    process (an interrupted run) is taken over, and the run resumes."""
    path = Path(run) / ".lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            break
        except FileExistsError:
            try:
                pid = int(path.read_text().strip() or 0)
                os.kill(pid, 0)  # raises if no such process
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            except PermissionError:
                pass  # alive, owned by someone else
            raise RunError(f"{run} is being trained by another process (pid {pid}); wait for it or stop it")
    else:
        raise RunError(f"could not take {path}")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def run_curves(run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics, evals) of a finished run as DataFrames, one row per step."""
    run = require_done(run)
    return pd.DataFrame(fileio.read_jsonl(run / "metrics.jsonl")), pd.DataFrame(fileio.read_jsonl(run / "evals.jsonl"))


def final_weights(run) -> dict:
    """The final weights of a finished run (tensors by name)."""
    return fileio.load_tensors(require_done(run) / "final" / "model.safetensors")


def load_base(run):
    """(base model, tokenizer) a finished run was trained from: the shipped tiny model (or a local one), or
    SmolLM2 from its GGUF (models.load_smollm2: the cached dequantized copy, rebuilt when missing)."""
    cfg = read_config(require_done(run))
    if cfg.get("model") == config.SMOLLM2_MODEL:
        return models.load_smollm2()
    return models.load_model(model_dir(cfg))


def same_base(run_dirs) -> bool:
    """Whether finished runs were all trained from one base model (same recorded base-model hash): a
    notebook then scores the base once for all of them (greedy decoding of one model is deterministic)."""
    hashes = {(read_config(r).get("identity") or {}).get("base_model") for r in run_dirs}
    return len(hashes) == 1 and None not in hashes


def load_run_pair(run):
    """(base model, tokenizer, trained model) of a finished run; the trained model is its final weights."""
    base, tok = load_base(run)
    trained = copy.deepcopy(base)
    missing, unexpected = trained.load_state_dict(final_weights(run), strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise RunError(f"{run}/final/model.safetensors does not match the base architecture "
                       f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return base, tok, trained


@dataclass
class Trajectory:
    """A run's recorded trajectory (trajectory.TrajectoryRecorder), as arrays indexed by step."""
    steps: np.ndarray  # [T]
    U: dict[str, np.ndarray]  # name -> [T, m, k]
    S: dict[str, np.ndarray]  # name -> [T, k]
    V: dict[str, np.ndarray]  # name -> [T, n, k]
    Wsv: dict[str, np.ndarray] | None  # name -> [T, min(m, n)] (None: recorded with trajectory.spectrum false)
    dF: dict[str, np.ndarray] | None = None  # name -> [T]: ‖ΔW_t‖_F (None: recorded before the recorder kept it)
    # the increment ΔW_t − ΔW_prev since the previous record (None: recorded before the recorder kept it); an
    # all-zero entry (incS = 0) is no increment: step 0, or the first record after a resume
    incU: dict[str, np.ndarray] | None = None  # name -> [T, m, k]
    incS: dict[str, np.ndarray] | None = None  # name -> [T, k]
    incV: dict[str, np.ndarray] | None = None  # name -> [T, n, k]
    incF: dict[str, np.ndarray] | None = None  # name -> [T]: ‖ΔW_t − ΔW_prev‖_F
    WF: dict[str, np.ndarray] | None = None  # name -> [T]: ‖W_t‖_F (from Wsv when the spectrum was stored)

    @property
    def names(self) -> list[str]:
        return list(self.U)


def load_trajectory(run) -> Trajectory:
    """``<run>/trajectory/`` of a finished run as float32 arrays indexed by step."""
    run = require_done(run)
    files = sorted((run / "trajectory").glob("step-*.safetensors"))
    if not files:
        raise RunError(f"{run / 'trajectory'} has no step-*.safetensors; "
                       "was the run trained with a trajectory: config?")
    steps, per_step = [], []
    for f in files:
        steps.append(int(f.stem.split("-")[1]))
        per_step.append(fileio.load_tensors(f))
    names = list(dict.fromkeys(key.split("|")[0] for key in per_step[0]))

    def stack(part):
        return {n: np.stack([d[f"{n}|{part}"].float().numpy() for d in per_step]) for n in names}

    def has(part):
        return all(f"{n}|{part}" in d for d in per_step for n in names)

    dF = {n: v[:, 0] for n, v in stack("dF").items()} if has("dF") else None
    inc = {}
    if all(has(p) for p in ("incU", "incS", "incV", "incF")):
        inc = {"incU": stack("incU"), "incS": stack("incS"), "incV": stack("incV"),
               "incF": {n: v[:, 0] for n, v in stack("incF").items()}}
    wsv = stack("Wsv") if has("Wsv") else None
    wf = ({n: np.sqrt(np.sum(v.astype(float) ** 2, axis=1)) for n, v in wsv.items()} if wsv is not None
          else {n: v[:, 0] for n, v in stack("WF").items()} if has("WF") else None)
    return Trajectory(np.asarray(steps), stack("U"), stack("S"), stack("V"), wsv, dF, **inc, WF=wf)
