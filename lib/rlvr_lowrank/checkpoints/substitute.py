"""The ``substitute`` command: a Hugging Face directory W_base + R(ΔW) for one BASE/RL pair, written one tensor
at a time (the variant maths is ``analysis.rank1``'s).

    python -m rlvr_lowrank substitute BASE RL --variant normmatch --out DIR
"""
from __future__ import annotations

import json
from pathlib import Path

from ..analysis.rank1 import matrix_seed, substitute_update
from .opening import checked_delta, iter_targets, open_pair, path_label, target_selector
from .readers import CheckpointError
from .writer import prepare_output, progress_bar, specs_of, write_hf_directory

SUBSTITUTE_VARIANTS = ("normmatch", "trunc", "rank-k", "residual", "random")


def substitute(base_path, rl_path, out, variant: str = "normmatch", k: int = 1, normmatch: bool = False,
               svd: str = "auto", targets: str = "default", seed: int = 0, force: bool = False,
               quiet: bool = False) -> Path:
    """A Hugging Face directory W_base + R(ΔW) on every target (rank1's variant maths, one tensor at a time),
    every other tensor at BASE (the AlphaRL convention). Same dtype per tensor, same shard files and index as
    the RL checkpoint; config from RL, tokenizer and generation config copied. Variants:
      normmatch  W_base + ‖ΔW‖_F u1 v1ᵀ          (AlphaRL's builder; with --svd exact it is AlphaRL's to fp32)
      trunc      W_base + σ1 u1 v1ᵀ
      rank-k     W_base + U_k S_k V_kᵀ  (rescaled to ‖ΔW‖_F with normmatch=True: AlphaRL's rank-k)
      residual   W_base + ΔW − σ1 u1 v1ᵀ
      random     W_base + ‖ΔW‖_F a bᵀ, a, b seeded random unit vectors
    A per-matrix record (‖ΔW‖_F, σ1, e1, energy removed, SVD route) goes to rlvr_lowrank_substitution.json.
    """
    if variant not in SUBSTITUTE_VARIANTS:
        raise CheckpointError(f"--variant {variant!r}; valid: {', '.join(SUBSTITUTE_VARIANTS)}")
    prepare_output(out, force)
    base, (rl,) = open_pair(base_path, [rl_path])
    if rl.kind == "gguf" or not rl.config:
        raise CheckpointError(f"{rl_path} has no config.json; substitute writes a Hugging Face directory and needs one")
    select = target_selector(targets)
    names = set(iter_targets(base, select))
    specs = specs_of(rl)
    diags = []

    def produce(name: str):
        if name not in names:
            return base.chunks(name)  # copied block by block: a 7B embedding never sits whole in memory
        W0 = base._get(name).float()
        dW = checked_delta(rl._get(name).float(), W0, name, base, rl)
        if variant == "rank-k":
            R, d = substitute_update(dW, "rankk", k=k, normmatch=normmatch, seed=matrix_seed(seed, name), method=svd)
        else:
            R, d = substitute_update(dW, variant, seed=matrix_seed(seed, name), method=svd)
        del dW
        diags.append({"name": name, **{k_: d[k_] for k_ in ("fro", "sigma1", "e1", "energy_removed", "svd")}})
        return W0.add_(R)

    bar = progress_bar(len(specs), f"substitute {variant}", not quiet)
    note = {"variant": variant, "k": k, "normmatch": normmatch, "svd": svd, "targets": targets, "seed": seed,
            "base": path_label(base_path), "rl": path_label(rl_path), "non_targets": "base"}
    try:
        write_hf_directory(out, specs, produce, rl.config, rl.side_dir or base.side_dir, layout=rl.weight_map,
                           force=force, on_tensor=lambda n: bar.update(1),
                           extra_files=lambda: {"rlvr_lowrank_substitution.json":
                                                json.dumps({**note, "matrices": diags}, indent=1) + "\n"})
    finally:
        bar.close()
        rl.close()
        base.close()
    return Path(out)
