"""Fake finished run directories for the claims tests: the files runs.py reads, with known contents."""
from pathlib import Path

import numpy as np
import torch

from rlvr_lowrank import fileio, models
from rlvr_lowrank.analysis import targets
from rlvr_lowrank.training import config as training_config


def _merged(dst: dict, src: dict) -> dict:
    out = dict(dst)
    for k, v in src.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def write_run(run: Path, metrics: list[dict] | None = None, evals: list[dict] | None = None,
              config: dict | None = None, trajectory: dict[int, dict[str, tuple]] | None = None,
              done: bool = True) -> Path:
    """A run directory with config.yaml, metrics.jsonl, evals.jsonl, optional trajectory/ files in the
    recorder's format (``<name>|U``, ``|S``, ``|V``, ``|Wsv`` per step) and a DONE marker. config.yaml is the
    smoke profile's resolved ``full`` run (as a real run writes it, so typed readers accept it) with ``config``
    deep-merged over it."""
    run = Path(run)
    resolved = training_config.resolve("smoke", "full", 0).to_dict()
    fileio.write_yaml(run / "config.yaml", _merged(resolved, {"experiment": "fake", **(config or {})}))
    for rec in metrics or []:
        fileio.append_jsonl(run / "metrics.jsonl", rec)
    for rec in evals or []:
        fileio.append_jsonl(run / "evals.jsonl", rec)
    for step, factors in (trajectory or {}).items():
        tensors = {}
        for name, (U, S, V) in factors.items():
            tensors[f"{name}|U"] = torch.as_tensor(np.asarray(U, dtype=np.float32))
            tensors[f"{name}|S"] = torch.as_tensor(np.asarray(S, dtype=np.float32))
            tensors[f"{name}|V"] = torch.as_tensor(np.asarray(V, dtype=np.float32))
            tensors[f"{name}|Wsv"] = torch.as_tensor(np.asarray(S, dtype=np.float32))
        fileio.save_tensors(run / "trajectory" / f"step-{step:05d}.safetensors", tensors)
    if done:  # the keys a complete DONE marker must have (integrity.DONE_KEYS)
        fileio.write_json(run / "DONE", {"config_hash": "fake", "steps": len(metrics or []),
                                         "weights_sha256": "0" * 64})
    return run


def reward_curve(rewards: list[float]) -> list[dict]:
    """metrics.jsonl rows for steps 1..len(rewards)."""
    return [{"step": i + 1, "reward": r} for i, r in enumerate(rewards)]


def perturbed_tiny_run(path: Path, seed: int, base_hash: str) -> Path:
    """A finished fake run of the shipped tiny base: final weights = base + a small seeded update on the
    target matrices; ``base_hash`` is the base-model identity it records (runs.same_base compares them)."""
    base, _ = models.load_model()
    g = torch.Generator().manual_seed(seed)
    final = {n: t + 0.02 * torch.randn(t.shape, generator=g) if n in targets.target_names(base.state_dict()) else t
             for n, t in base.state_dict().items()}
    run = write_run(path, config={"model": "data/models/tiny-base", "identity": {"base_model": base_hash}})
    fileio.save_tensors(run / "final" / "model.safetensors",
                        {n: t.clone() for n, t in final.items() if n != "lm_head.weight"})
    return run
