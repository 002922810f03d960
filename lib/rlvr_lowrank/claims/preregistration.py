"""Pre-registration: what a profile's final runs are and how each claim will be decided, written down and
committed before those runs are trained.

``python -m rlvr_lowrank preregister --profile smollm2`` writes ``reports/<profile>/preregistration.json``:
the task (chat_task, the training set's prompts, the held-out and OOD sizes), the training settings
(learning rate, steps, batch, temperature, PR1S K and variant), the arms and their seeds, which weights the
deciding evaluation of a PR1S run uses (``eval.pr1s_phase``), every claim's operational test and
thresholds, and the hashes of the base-model task choice and the exploration it rests on. It prints the
file's sha256, which the profile then pins::

    preregistration: {file: reports/smollm2/preregistration.json, sha256: <sha256 of that file>}

The pin closes the loop both ways: the file records the hash of the profile's settings *without* the
``preregistration`` key (:func:`settings_hash`), and the profile records the hash of the file. The claims
report (report.build_report) refuses to judge when either no longer matches (:func:`problem`): the
profile's settings or the file changed after registration. A profile without the key is not pre-registered
and is judged as before.
"""
from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

from .. import fileio, paths
from ..training import config, runs

FILE = "preregistration.json"
KEY = "preregistration"  # the profile key that pins the file
INPUTS = ("task_variants.json", "exploration.json")  # the reports the choices rest on (hashed when present)


class PreregistrationError(RuntimeError):
    """A pre-registered profile whose file is missing, or whose settings or file changed after registration."""


def settings_hash(profile: str) -> str:
    """The hash of the profile's settings, without the pin (the file cannot contain its own hash)."""
    prof = {k: v for k, v in config.load_profile(profile).items() if k != KEY}
    return fileio.config_hash({**prof, "profile": profile})


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def claims_section() -> dict:
    """Every claim's paper statement, operational test and thresholds, as the code holds them now."""
    out = {}
    for cid in ("c0", "c1", "c2", "c3", "c4"):
        claim = importlib.import_module(f"{__package__}.{cid}").CLAIM
        out[claim.id] = {"test": claim.test, "thresholds": claim.thresholds}
    return out


def build(profile: str) -> dict:
    """The pre-registration of a profile's ``experiments`` (what ``make reproduce`` trains)."""
    prof = config.load_profile(profile)
    arms = prof.get("arms") or {}
    if not {"full", "pr1s"} <= set(arms):
        raise PreregistrationError(f"configs/{profile}.yaml needs arms: full and pr1s to be pre-registered")
    exps = {}
    for name in prof.get("experiments") or {}:
        seeds = config.seeds_of(profile, name)
        cfg = config.resolve(profile, name, seeds[0])
        exps[name] = {"seeds": seeds, "reward": cfg.reward or "the task verifier", "reward_p": cfg.reward_p,
                      "pr1s": cfg.pr1s and {"every": cfg.pr1s.every, "variant": cfg.pr1s.variant},
                      "run_hashes": {f"seed{s}": runs.run_hash(runs.identity(config.resolve(profile, name, s)))
                                     for s in seeds}}
    cfg = config.resolve(profile, arms["full"], config.seeds_of(profile, arms["full"])[0])
    task = {}
    if cfg.chat_task is not None:
        t = cfg.chat_task
        task = {"chat_task": {k: getattr(t, k) for k in t.__dataclass_fields__},
                "training_set": [it.prompt for it in t.items("rl_train")],
                "n_test": len(t.items("test")), "n_ood": len(t.ood_items())}
    train = {k: cfg.train.get(k) for k in ("learning_rate", "max_steps", "per_device_train_batch_size",
                                            "num_generations", "temperature", "max_completion_length", "loss_type",
                                            "beta", "sampler", "precision")}
    report_dir = paths.report_dir(profile)
    inputs = {name: file_sha256(report_dir / name) for name in INPUTS if (report_dir / name).exists()}
    return {"profile": profile, "settings_hash": settings_hash(profile), "arms": arms, "experiments": exps,
            "task": task, "train": train,
            "evaluation": {"every": cfg.eval.every, "pr1s_phase": cfg.eval.pr1s_phase,
                           "deciding_pr1s_weights": ("after" if cfg.eval.pr1s_phase == "post" else "before")
                           + " the substitution at an evaluation step that is also a substitution step",
                           "n_sampled_train": cfg.eval.n_sampled_train, "n_sampled_test": cfg.eval.n_sampled_test,
                           "samples_per_prompt": cfg.eval.samples_per_prompt},
            "trajectory_every": cfg.trajectory.every if cfg.trajectory else None,
            "claims": claims_section(), "inputs_sha256": inputs,
            "identity_note": "run hashes cover the resolved config, the base model, the task data and the training "
                             "code; a CPU without native bf16 computes a bf16 profile in fp32 (another identity)"}


def write(profile: str, replace: bool = False) -> tuple[Path, str]:
    """Write the file (refusing to replace a different one unless ``replace``); return (path, sha256)."""
    path = paths.report_dir(profile) / FILE
    doc = build(profile)
    if path.exists() and not replace and fileio.read_json(path) != doc:
        raise PreregistrationError(f"{path} exists and differs from what the profile registers now; a registration "
                                   "is replaced only on purpose (--replace), before any final run is trained")
    fileio.write_json(path, doc)
    return path, file_sha256(path)


def problem(profile: str) -> str | None:
    """None when the profile is not pre-registered or its registration still matches; else what changed."""
    pin = config.load_profile(profile).get(KEY)
    if pin is None:
        return None
    if not isinstance(pin, dict) or not {"file", "sha256"} <= set(pin):
        return f"configs/{profile}.yaml: {KEY}: must be {{file: <path>, sha256: <hex>}}, got {pin!r}"
    path = paths.ROOT / pin["file"]
    if not path.exists():
        return f"the pre-registration {pin['file']} pinned by configs/{profile}.yaml is missing"
    if file_sha256(path) != pin["sha256"]:
        return (f"{pin['file']} changed after registration (sha256 {file_sha256(path)[:12]}, "
                f"pinned {pin['sha256'][:12]})")
    recorded = fileio.read_json(path).get("settings_hash")
    if recorded != settings_hash(profile):
        return (f"configs/{profile}.yaml changed after registration (settings hash {settings_hash(profile)}, "
                f"registered {recorded})")
    return None
