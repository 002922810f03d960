"""Subcommands for a user's own checkpoints: ``analyze``, ``substitute``, ``export``.

cli.py registers them with ``checkpoints_cli.add_commands(sub)`` and hands the parsed arguments of these
commands to ``checkpoints_cli.run(args)`` (``args.command in checkpoints_cli.COMMANDS``).

    python -m rlvr_lowrank analyze BASE RL [RL ...] --out DIR [--targets default|alpharl|REGEX] [--k 8]
                                   [--svd auto|exact|fast] [--esd fp64|fp32|none] [--force] [--quiet]
    python -m rlvr_lowrank substitute BASE RL --variant normmatch|trunc|rank-k|residual|random --out DIR
                                   [--k K] [--normmatch] [--svd auto|exact|fast] [--targets ...] [--seed S]
    python -m rlvr_lowrank export RUN --out DIR [--dtype bf16|fp16|fp32] [--max-shard-size 2GB]
    python -m rlvr_lowrank evaluate-math MODEL --data FILE.jsonl --out SCORES.json [--samples N] [--temperature T]
                                   [--max-new-tokens N] [--limit N]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

COMMANDS = ("analyze", "substitute", "export", "evaluate-math")

_TARGETS_HELP = ("target matrices: 'default' (q/k/v/o/gate/up/down_proj, the project's selection), 'alpharl' "
                 "(AlphaRL's scope: every 2-D weight under self_attn/mlp of the decoder layers, MoE routers "
                 "included) or a regular expression searched in the tensor name")
_SVD_HELP = ("top-k SVD solver: auto (default; certified block subspace iteration, falls back to the exact SVD "
             "when it cannot certify 1e-4), exact (AlphaRL's full thin SVD), fast")


def add_commands(sub: "argparse._SubParsersAction") -> None:
    """Register analyze / substitute / export on the subparsers of the main command line."""
    p = sub.add_parser("analyze", help="rank-1, heavy-tail and alignment diagnostics of BASE vs RL checkpoint(s)")
    p.add_argument("base", help="base model: HF directory (safetensors, single or sharded) or .gguf file")
    p.add_argument("rl", nargs="+", help="RL checkpoint(s), in training order: HF directories, .gguf files or "
                                         "PEFT LoRA adapter directories (merged onto BASE on the fly)")
    p.add_argument("--out", type=Path, required=True, help="output directory (analysis.json, analysis.md, figures/)")
    p.add_argument("--targets", default="default", help=_TARGETS_HELP)
    p.add_argument("--k", type=int, default=8, help="singular values of ΔW per matrix (default 8)")
    p.add_argument("--svd", default="auto", choices=("auto", "exact", "fast"), help=_SVD_HELP)
    p.add_argument("--esd", default="fp64", choices=("fp64", "fp32", "none"),
                   help="heavy-tail fits: fp64 Gram (default, WeightWatcher-equivalent), fp32 (faster), none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("substitute", help="write BASE + rank-1 (or other variant) of ΔW as a HF model directory")
    p.add_argument("base")
    p.add_argument("rl", help="RL checkpoint (HF directory or PEFT LoRA adapter directory)")
    p.add_argument("--variant", required=True, choices=("normmatch", "trunc", "rank-k", "residual", "random"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--k", type=int, default=1, help="rank for --variant rank-k")
    p.add_argument("--normmatch", action="store_true", help="rank-k rescaled to ‖ΔW‖_F (AlphaRL's rank-k)")
    p.add_argument("--svd", default="auto", choices=("auto", "exact", "fast"), help=_SVD_HELP)
    p.add_argument("--targets", default="default", help=_TARGETS_HELP)
    p.add_argument("--seed", type=int, default=0, help="seed of the random variant and of the fast solver")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")

    p = sub.add_parser("export", help="a run directory (or any checkpoint) of this project as a HF model directory")
    p.add_argument("run", help="runs/<profile>/<experiment>/seed<k>, a checkpoints/step-N directory or a HF dir")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"))
    p.add_argument("--max-shard-size", default=None, help="shard when larger, e.g. 2GB (default: one file)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--quiet", action="store_true")


    p = sub.add_parser("evaluate-math", help="greedy accuracy and pass@k of a model directory on a MATH-style JSONL")
    p.add_argument("model", help="HF model directory (safetensors), e.g. one that substitute or export wrote")
    p.add_argument("--data", type=Path, required=True, help="JSONL written by prepare-math")
    p.add_argument("--out", type=Path, required=True, help="scores file (JSON) that the recovery command reads")
    p.add_argument("--samples", type=int, default=0, help="sampled completions per problem for pass@k (0: greedy only)")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=1024)
    p.add_argument("--limit", type=int, default=None, help="score the first N problems")
    p.add_argument("--batch-size", type=int, default=16, help="prompts per generate call")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled completions")


def run(args: argparse.Namespace) -> int:
    """Execute one of COMMANDS; a CheckpointError becomes a one-line message and exit status 2."""
    # function-level: cli imports this module for every command (training subprocesses included); the
    # checkpoint code and its figures are loaded only when one of these commands runs
    from .readers import CheckpointError

    try:
        if args.command == "analyze":
            from .pair_analysis import analyze

            res = analyze(args.base, args.rl, args.out, k=args.k, svd=args.svd, targets=args.targets, esd=args.esd,
                          seed=args.seed, force=args.force, quiet=args.quiet)
            s = res["summary"][-1]
            print(f"{res['n_matrices']} matrices: AlphaRL ratio {s['alpharl_ratio']:.4f}, pooled e1 "
                  f"{s['e1_pooled']:.4f}, {s['n_unchanged']} unchanged, {s['n_at_noise']} at storage noise; "
                  f"wrote {args.out}/analysis.md")
        elif args.command == "substitute":
            from .substitute import substitute

            print(substitute(args.base, args.rl, args.out, variant=args.variant, k=args.k, normmatch=args.normmatch,
                             svd=args.svd, targets=args.targets, seed=args.seed, force=args.force, quiet=args.quiet))
        elif args.command == "export":
            from .writer import export, parse_size

            print(export(args.run, args.out, dtype=args.dtype, max_shard_bytes=parse_size(args.max_shard_size),
                         force=args.force, progress=not args.quiet))
        elif args.command == "evaluate-math":
            from ..models import ModelLoadError
            from .math_eval import evaluate_model

            try:
                r = evaluate_model(args.model, args.data, args.out, samples=args.samples,
                                   temperature=args.temperature, max_new_tokens=args.max_new_tokens, limit=args.limit,
                                   batch_size=args.batch_size, seed=args.seed)
            except (ValueError, OSError, ModelLoadError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            passes = ", ".join(f"pass@{k} {v:.3f}" for k, v in r.get("pass_at", {}).items())
            print(f"{r['n']} problems: greedy accuracy {r['greedy_accuracy']:.3f}{', ' + passes if passes else ''} "
                  f"({r['verifier']}); wrote {args.out}")
        else:
            raise ValueError(f"not a checkpoints command: {args.command}")
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
