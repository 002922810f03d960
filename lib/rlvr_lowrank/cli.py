"""Command line: ``python -m rlvr_lowrank <command>`` (``python -m rlvr_lowrank <command> --help`` for options).

Commands
  world       write the task splits and facts to data/tasks/ (deterministic)
  pretrain    pretrain the tiny base model into data/models/tiny-base/ and measure it
  train       one GRPO run: --profile P --experiment E --seed S (reused when finished, resumed when interrupted)
  train-all   every experiment x seed of a profile, two runs at a time (cached, resumable)
  notebook    execute one notebook with papermill for a profile
  reproduce   train what the profile's notebooks read, execute them, write the claims report (cached)
  claims      gather C0-C4 into reports/<profile>/claims.json and claims.md
  readme      rewrite the generated blocks of README.md
  analyze     rank-1 / heavy-tail / alignment diagnostics of your own BASE and RL checkpoints
  substitute  BASE + rank-1 (or another variant) of ΔW, written as a Hugging Face model directory
  export      a run directory of this project as a Hugging Face model directory
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import importlib

from . import checkpoints_cli, config, paths, pipeline


def _load(name: str):
    """The module that runs one command, imported only for that command: ``make reproduce`` starts one
    ``python -m rlvr_lowrank train`` process per run, and importing papermill, the claims package and
    the pretraining code into each of them cost about 2 s per process on 2 cores."""
    return importlib.import_module(f".{name}", __package__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rlvr_lowrank", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("world", help="write data/tasks/*.jsonl")
    p = sub.add_parser("pretrain", help="pretrain and measure the tiny base model")
    p.add_argument("--out", type=Path, default=paths.TINY_BASE)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--no-probe", action="store_true", help="skip the 100-step GRPO probe")
    p = sub.add_parser("train", help="one GRPO run (reused when finished, resumed when interrupted)")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--experiment", default="full")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dry-run", action="store_true", help="resolve and print the run and its launch command; load nothing")
    p = sub.add_parser("train-all", help="train every experiment x seed of a profile (cached, resumable)")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2: one per core)")
    p.add_argument("--experiments", nargs="*", default=None)
    p.add_argument("--replace-stale", action="store_true",
                   help="move runs made from other inputs (config, base model, data, training code) aside and retrain them")
    p = sub.add_parser("notebook", help="execute one notebook with papermill")
    p.add_argument("stem", choices=[nb.stem for nb in pipeline.NOTEBOOKS])
    p.add_argument("--profile", default="tiny")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("claims", help="write reports/<profile>/claims.json and claims.md")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--allow-stale", action="store_true",
                   help="re-judge results whose runs have changed (or were not recorded) instead of refusing them; "
                        "the report marks them stale")
    sub.add_parser("readme", help="rewrite the generated blocks of README.md from pipeline outputs")
    p = sub.add_parser("reproduce", help="execute the whole pipeline for a profile")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--force", action="store_true")
    p.add_argument("--jobs", type=int, default=2, help="subprocesses at a time (default 2: one per core)")
    p.add_argument("--replace-stale", action="store_true",
                   help="move runs made from other inputs (config, base model, data, training code) aside and retrain them")
    p.add_argument("--started-at", type=float, default=None,
                   help="epoch seconds when set-up began (make reproduce passes it; the total time then includes it)")
    checkpoints_cli.add_commands(sub)  # analyze / substitute / export (a user's own checkpoints)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in checkpoints_cli.COMMANDS:
        return checkpoints_cli.run(args)
    if getattr(args, "jobs", 1) < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    if hasattr(args, "profile"):
        config.load_profile(args.profile)  # a bad profile name fails before anything is written
    if args.command in ("reproduce", "notebook", "claims"):
        # the pipeline writes the tracked figures/ and reports/ (interactive runs write a scratch directory);
        # notebook subprocesses and their kernels inherit this
        os.environ[paths.WRITE_TRACKED_ENV] = "1"
    if args.command == "world":
        for path in _load("tasks").write_world():
            print(path.relative_to(paths.ROOT))
    elif args.command == "pretrain":
        pretrain = _load("pretrain")
        cfg = pretrain.PretrainConfig(seed=args.seed)
        if args.steps is not None:
            cfg.steps = args.steps
        metrics = pretrain.main(cfg, out_dir=args.out, probe=not args.no_probe)
        print(json.dumps(metrics["targets_met"], indent=2))
    elif args.command == "train":
        config.check_seed(args.seed)
        train = _load("train")
        print(train.dry_run(args.profile, args.experiment, args.seed) if args.dry_run
              else train.train(args.profile, args.experiment, args.seed))
    elif args.command == "train-all":
        _load("reproduce").train_all(args.profile, processes=args.jobs, experiments=args.experiments,
                            replace_stale=args.replace_stale)
    elif args.command == "notebook":
        _load("reproduce").run_notebook(args.stem, args.profile, force=args.force)
    elif args.command == "reproduce":
        _load("reproduce").reproduce(args.profile, force=args.force, processes=args.jobs, started_at=args.started_at,
                            replace_stale=args.replace_stale)
    elif args.command == "claims":
        claims = _load("claims")
        print(claims.results_table(claims.build_report(args.profile, allow_stale=args.allow_stale)))
    elif args.command == "readme":
        print("README.md updated" if _load("readme").update() else "README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
