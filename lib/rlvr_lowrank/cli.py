"""Command line: ``python -m rlvr_lowrank <command>`` (``python -m rlvr_lowrank <command> --help`` for options).

Commands
  world       write the task splits and facts to data/tasks/ (deterministic)
  pretrain    pretrain the tiny base model into data/models/tiny-base/ and measure it
  train       one GRPO run: --profile P --experiment E --seed S (reused when finished, resumed when interrupted)
  train-all   every experiment x seed of a profile, two runs at a time (cached, resumable)
  notebook    execute one notebook with papermill for a profile
  reproduce   train what the profile's notebooks read, execute them, write the claims report (cached)
  claims      gather C0-C4 into reports/<profile>/claims.json and claims.md
  figures     redraw a profile's figures from reports/<profile>/figure_data/ (no runs; names what is missing)
  readme      rewrite the generated blocks of README.md
  analyze     rank-1 / heavy-tail / alignment diagnostics of your own BASE and RL checkpoints
  substitute  BASE + rank-1 (or another variant) of ΔW, written as a Hugging Face model directory
  export      a run directory of this project as a Hugging Face model directory
  worker      (internal) run the pipeline's training jobs in one process: requests on stdin (jobs.serve)
  smollm2-base  measure SmolLM2-135M-Instruct before RL: task difficulty, knowledge filter, word skill
  smollm2-lr    the learning-rate window of GRPO on SmolLM2 (probe runs, one seed each)
  smollm2-task  choose the real-model task on base metrics (reports/smollm2/task_variants.json)
  smollm2-explore  exploration runs on seeds the final runs never use (reports/smollm2/exploration.json)
  preregister   write reports/<profile>/preregistration.json before a profile's final runs
  smollm2-bf16  the learning curve of the bf16 path beside fp32 on SmolLM2 (one seed)
  time-test   `make test` in a clean clone of HEAD: time, peak memory, disk -> reports/test_timing.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import paths
from .checkpoints import cli as checkpoints_cli
from .claims import notebooks
from .training import config

# Each command imports the modules it runs inside its branch of main(): ``make reproduce`` starts one
# process per training run, and importing papermill, the claims package and the pretraining code into
# each of them cost about 2 s per process on 2 cores.


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
    p.add_argument("--dry-run", action="store_true",
                   help="resolve and print the run and its launch command; load nothing")
    p = sub.add_parser("train-all", help="train every experiment x seed of a profile (cached, resumable)")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2: one per core)")
    p.add_argument("--experiments", nargs="*", default=None)
    p.add_argument("--replace-stale", action="store_true",
                   help="move runs made from other inputs (config, base model, data, training code) aside and "
                        "retrain them")
    p = sub.add_parser("notebook", help="execute one notebook with papermill")
    p.add_argument("stem", choices=[nb.stem for nb in notebooks.NOTEBOOKS])
    p.add_argument("--profile", default="tiny")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("claims", help="write reports/<profile>/claims.json and claims.md")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--allow-stale", action="store_true",
                   help="re-judge results whose runs have changed (or were not recorded) instead of refusing them; "
                        "the report marks them stale")
    p = sub.add_parser("figures", help="redraw figures/<profile>/ from reports/<profile>/figure_data/ (or the claims' "
                                       "results where a figure's data file is missing), without runs")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--reports", type=Path, default=None, help="read this directory instead of reports/<profile>/")
    p.add_argument("--out", type=Path, default=None, help="write here instead of figures/<profile>/")
    p.add_argument("--strict", action="store_true", help="exit with status 1 when a figure's data is missing")
    sub.add_parser("readme", help="rewrite the generated blocks of README.md from pipeline outputs")
    p = sub.add_parser("reproduce", help="execute the whole pipeline for a profile")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--force", action="store_true")
    p.add_argument("--jobs", type=int, default=2, help="subprocesses at a time (default 2: one per core)")
    p.add_argument("--replace-stale", action="store_true",
                   help="move runs made from other inputs (config, base model, data, training code) aside and "
                        "retrain them")
    p.add_argument("--started-at", type=float, default=None,
                   help="epoch seconds when set-up began (make reproduce passes it; the total time then includes it)")
    sub.add_parser("worker", help="(internal) serve training jobs of make reproduce / train-all (jobs.serve)")
    p = sub.add_parser("smollm2-base", help="measure SmolLM2 before RL (reports/smollm2/base_metrics.json, "
                                            "data/real/knowledge.jsonl)")
    p.add_argument("--max-operand", type=int, default=20)
    p.add_argument("--op", default="+", choices=["+", "-", "*"])
    p.add_argument("--also-operands", type=int, nargs="*", default=[15],
                   help="also measure these operand ranges (1..n) at the training temperature")
    p.add_argument("--also-temperatures", type=float, nargs="*", default=[0.5],
                   help="pass@k is also measured at these (the acceptance reads the profile's train.temperature)")
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("smollm2-bf16",
                       help="train full_bf16 (seed 0) beside full and write reports/smollm2/bf16_curve.json")
    p.add_argument("--jobs", type=int, default=2)
    p = sub.add_parser("smollm2-lr", help="train the smollm2 lr_probe_* runs and write reports/smollm2/lr_window.json")
    p.add_argument("--jobs", type=int, default=2)
    p = sub.add_parser("smollm2-explore", help="train the smollm2 explore_lr_* runs and apply the exploration rules")
    p.add_argument("--jobs", type=int, default=2)
    p = sub.add_parser("preregister", help="write reports/<profile>/preregistration.json and print its sha256")
    p.add_argument("--profile", required=True)
    p.add_argument("--replace", action="store_true", help="replace a different existing registration")
    p = sub.add_parser("smollm2-task", help="measure the base on each task variant and choose one by the fixed rule "
                                            "(reports/smollm2/task_variants.json)")
    p.add_argument("--threads", type=int, default=2)
    p = sub.add_parser("time-test", help="run `make test` in a clean clone of HEAD and record its time, peak memory "
                                         "and disk (reports/test_timing.json, quoted by the README)")
    p.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    checkpoints_cli.add_commands(sub)  # analyze / substitute / export / evaluate-math (a user's own checkpoints)
    p = sub.add_parser("prepare-math", help="write a training/test JSONL from a local copy of a public math dataset")
    p.add_argument("--format", required=True, choices=("math500", "math", "gsm8k"),
                   help="the dataset's own format: HuggingFaceH4/MATH-500, MATH (Hendrycks et al.), openai/gsm8k")
    p.add_argument("--input", type=Path, required=True, help="the dataset file (.jsonl, .json or .parquet)")
    p.add_argument("--out", type=Path, required=True, help="the JSONL to write (e.g. data/math/train.jsonl)")
    p.add_argument("--limit", type=int, default=None, help="keep the first N usable rows")
    p = sub.add_parser("gpu-check", help="one check of the GPU path: PR1S under DDP in bf16, 2 paper-profile steps")
    p.add_argument("--part", required=True, choices=("ddp", "paper"))
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--work", type=Path, default=Path("build/gpu-check"), help="scratch directory (runs, models)")
    p = sub.add_parser("recovery", help="recovery of the RL gain by model variants, from evaluate-math scores files")
    p.add_argument("--base", type=Path, required=True, help="scores file of the base model")
    p.add_argument("--rl", type=Path, nargs="+", required=True, help="scores files of the RL models, one per seed")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FILE[,FILE...]",
                   help="scores files of a variant, one per RL model in the same order (repeatable)")
    p.add_argument("--metric", default="greedy", choices=("greedy", "pass@1"))
    p.add_argument("--out", type=Path, default=None, help="also write the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in checkpoints_cli.COMMANDS:
        return checkpoints_cli.run(args)
    if getattr(args, "jobs", 1) < 1:
        raise SystemExit(f"--jobs must be at least 1, got {args.jobs}")
    if hasattr(args, "profile"):
        config.load_profile(args.profile)  # a bad profile name fails before anything is written
    if args.command in ("reproduce", "notebook", "claims", "smollm2-base", "smollm2-lr", "smollm2-bf16", "smollm2-task",
                        "smollm2-explore", "preregister"):
        # the pipeline writes the tracked figures/ and reports/ (interactive runs write a scratch directory);
        # notebook subprocesses and their kernels inherit this
        os.environ[paths.WRITE_TRACKED_ENV] = "1"
    if args.command == "world":
        from .world import tasks
        for path in tasks.write_world():
            print(path.relative_to(paths.ROOT))
    elif args.command == "pretrain":
        from .models import pretrain
        cfg = pretrain.PretrainConfig(seed=args.seed)
        if args.steps is not None:
            cfg.steps = args.steps
        metrics = pretrain.main(cfg, out_dir=args.out, probe=not args.no_probe)
        print(json.dumps(metrics["targets_met"], indent=2))
    elif args.command == "train":
        from .training import train
        config.check_seed(args.seed)
        print(train.dry_run(args.profile, args.experiment, args.seed) if args.dry_run
              else train.train(args.profile, args.experiment, args.seed))
    elif args.command == "train-all":
        from .pipeline import reproduce
        reproduce.train_all(args.profile, processes=args.jobs, experiments=args.experiments,
                            replace_stale=args.replace_stale)
    elif args.command == "notebook":
        from .pipeline import reproduce
        reproduce.run_notebook(args.stem, args.profile, force=args.force)
    elif args.command == "reproduce":
        from .pipeline import reproduce
        reproduce.reproduce(args.profile, force=args.force, processes=args.jobs, started_at=args.started_at,
                            replace_stale=args.replace_stale)
    elif args.command == "claims":
        from . import claims
        print(claims.results_table(claims.build_report(args.profile, allow_stale=args.allow_stale)))
    elif args.command == "figures":
        from .figures import figure_data
        done = figure_data.redraw(args.profile, report_dir=args.reports, figure_dir=args.out)
        for name, source in done["drawn"]:
            print(f"drew {name} from {source}")
        for name, why in done["missing"]:
            print(f"missing {name}: {why}")
        return 1 if args.strict and done["missing"] else 0
    elif args.command == "worker":
        from .pipeline import jobs, reproduce
        jobs.serve(reproduce.worker_call)
    elif args.command == "smollm2-base":
        from .pipeline import real_model
        print(json.dumps(real_model.base_command(args.threads, args.also_temperatures, args.max_operand, args.op,
                                                 args.also_operands), indent=2))
    elif args.command == "smollm2-explore":
        from .pipeline import exploration
        print(json.dumps(exploration.explore(args.jobs), indent=2))
    elif args.command == "preregister":
        from .claims import preregistration
        path, sha = preregistration.write(args.profile, replace=args.replace)
        print(f"wrote {path.relative_to(paths.ROOT)}; pin it in configs/{args.profile}.yaml:\n"
              f"{preregistration.KEY}: {{file: {path.relative_to(paths.ROOT)}, sha256: {sha}}}")
    elif args.command == "smollm2-task":
        from .pipeline import task_choice
        print(json.dumps(task_choice.command(args.threads), indent=2))
    elif args.command == "smollm2-lr":
        from .pipeline import real_model
        print(json.dumps(real_model.lr_window_command(args.jobs), indent=2))
    elif args.command == "smollm2-bf16":
        from .pipeline import real_model
        print(json.dumps(real_model.bf16_curve_command(args.jobs), indent=2))
    elif args.command == "time-test":
        from .pipeline import test_timing
        test_timing.command(args.keep)
    elif args.command == "prepare-math":
        from .world import math_data
        math_data.prepare(args.input, args.format, args.out, limit=args.limit)
    elif args.command == "gpu-check":
        if "RLVR_RUNS_DIR" not in os.environ:  # a scratch runs directory: nothing under runs/ is touched
            paths.RUNS = (args.work / "runs").resolve()
        from .pipeline import gpu_check
        result = (gpu_check.paper_part(args.work, args.device) if args.part == "paper"
                  else gpu_check.ddp_part(args.device))
        print(json.dumps(result))
        return 0 if result.get("ok", True) else 1
    elif args.command == "recovery":
        from . import fileio
        from .claims import recovery_scores as recovery
        try:
            result = recovery.compute(args.base, args.rl, dict(map(recovery.parse_variant, args.variant)),
                                      metric=args.metric)
        except ValueError as e:
            raise SystemExit(f"recovery: {e}") from None
        if args.out:
            fileio.write_json(args.out, result)
        print(recovery.markdown(result))
    elif args.command == "readme":
        from .pipeline import readme
        print("README.md updated" if readme.update() else "README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
