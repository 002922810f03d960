"""Command line: ``python -m rlvr_lowrank <command>``.

Commands
  world       write the task splits and facts to data/tasks/ (deterministic)
  pretrain    pretrain the tiny base model into data/models/tiny-base/ and measure it
  train       one GRPO run: --profile P --experiment E --seed S
  notebook    execute one notebook with papermill for a profile
  reproduce   execute every notebook of the pipeline for a profile (cached)
  claims      gather C0-C4 into reports/<profile>/claims.json and claims.md
  readme      rewrite the generated blocks of README.md
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

from . import io, paths, profiles

PIPELINE = ["00_base_model", "01_rank1_dominance", "02_reward_overfitting", "04_heavy_tails", "05_alignment"]  # notebooks run by `reproduce`, in order


def _params_file(stem: str, profile: str) -> Path:
    return paths.NOTEBOOKS / "params" / f"{stem}.{profile}.yaml"


def notebook_parameters(stem: str, profile: str) -> dict:
    """Parameters for a notebook under a profile; unknown names fail loudly (papermill only warns)."""
    import papermill

    nb = paths.NOTEBOOKS / f"{stem}.ipynb"
    if not nb.exists():
        raise FileNotFoundError(f"{nb} does not exist; notebooks: {sorted(p.stem for p in paths.NOTEBOOKS.glob('*.ipynb'))}")
    pfile = _params_file(stem, profile)
    params = io.read_yaml(pfile) if pfile.exists() else {}
    if profile != "smoke" and not pfile.exists():
        raise FileNotFoundError(f"{pfile} is missing: notebook {stem} has no parameters for profile {profile!r}")
    known = set(papermill.inspect_notebook(str(nb)).keys())
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{pfile}: parameter(s) {unknown} do not exist in {nb.name}; "
                         f"its parameters are {sorted(known)}")
    if "PROFILE" in known:
        params.setdefault("PROFILE", profile)
    return params


def _fingerprint(stem: str, profile: str, params: dict) -> str:
    """Hash of everything an executed notebook depends on: the notebook, its parameters, the library,
    the shipped base model's metrics and the run directories' DONE markers of the profile."""
    h = hashlib.sha256()
    h.update((paths.NOTEBOOKS / f"{stem}.ipynb").read_bytes())
    h.update(io.config_hash(params).encode())
    for src in sorted((paths.ROOT / "lib" / "rlvr_lowrank").glob("*.py")):
        h.update(src.read_bytes())
    for f in (paths.TINY_BASE / "metrics.json", paths.CONFIGS / f"{profile}.yaml"):
        if f.exists():
            h.update(f.read_bytes())
    runs = paths.RUNS / profile
    if runs.exists():
        for done in sorted(runs.glob("**/DONE")):
            h.update(str(done.relative_to(runs)).encode() + done.read_bytes())
    return h.hexdigest()[:16]


def run_notebook(stem: str, profile: str, force: bool = False, log_output: bool = False) -> Path:
    """Execute ``notebooks/<stem>.ipynb`` into ``reports/<profile>/executed/`` (never in place).

    Skipped when the executed copy exists with the same fingerprint. The output is written to a
    temporary file and renamed only on success; a failed run leaves ``<stem>.failed.ipynb``.
    """
    import papermill

    params = notebook_parameters(stem, profile)
    out_dir = paths.REPORTS / profile / "executed"
    out = out_dir / f"{stem}.ipynb"
    stamp = out_dir / f".{stem}.fingerprint"
    fp = _fingerprint(stem, profile, params)
    if not force and out.exists() and stamp.exists() and stamp.read_text().strip() == fp:
        print(f"[reproduce] {stem}: up to date (cached)")
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    failed = out_dir / f"{stem}.failed.ipynb"
    t0 = time.time()
    print(f"[reproduce] {stem}: executing with profile {profile} ...", flush=True)
    running = out_dir / f".{stem}.running.ipynb"
    try:
        papermill.execute_notebook(
            str(paths.NOTEBOOKS / f"{stem}.ipynb"), str(running), parameters=params, kernel_name="python3",
            cwd=str(paths.NOTEBOOKS), progress_bar=False, log_output=log_output, execution_timeout=3600,
        )
    except BaseException:
        if running.exists():
            running.replace(failed)  # keep the failed notebook (error banner) for inspection
            print(f"[reproduce] {stem}: FAILED; see {failed.relative_to(paths.ROOT)}", file=sys.stderr)
        raise
    running.replace(out)
    failed.unlink(missing_ok=True)
    io.write_text(stamp, fp + "\n")
    print(f"[reproduce] {stem}: done in {time.time() - t0:.0f} s -> {out.relative_to(paths.ROOT)}")
    return out


def reproduce(profile: str, force: bool = False, notebooks: list[str] | None = None) -> None:
    profiles.load(profile)  # unknown profile -> clear error before anything runs
    t0 = time.time()
    for stem in notebooks or PIPELINE:
        run_notebook(stem, profile, force=force)
    from . import claims

    report = claims.build_report(profile)  # reports/<profile>/claims.json + claims.md from the notebooks' c*.json
    print(claims.results_table(report))
    print(f"[reproduce] profile {profile}: finished in {time.time() - t0:.0f} s")


def main(argv: list[str] | None = None) -> int:
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
    p = sub.add_parser("notebook", help="execute one notebook with papermill")
    p.add_argument("stem")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--force", action="store_true")
    p = sub.add_parser("claims", help="write reports/<profile>/claims.json and claims.md")
    p.add_argument("--profile", default="tiny")
    sub.add_parser("readme", help="rewrite the generated blocks of README.md from pipeline outputs")
    p = sub.add_parser("reproduce", help="execute the whole pipeline for a profile")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "world":
        from . import tasks
        for path in tasks.write_world():
            print(path.relative_to(paths.ROOT))
    elif args.command == "pretrain":
        from . import pretrain
        cfg = pretrain.PretrainConfig(seed=args.seed)
        if args.steps is not None:
            cfg.steps = args.steps
        metrics = pretrain.main(cfg, out_dir=args.out, probe=not args.no_probe)
        print(io.json.dumps(metrics["targets_met"], indent=2))
    elif args.command == "train":
        from . import train
        print(train.train(args.profile, args.experiment, args.seed))
    elif args.command == "notebook":
        profiles.load(args.profile)
        run_notebook(args.stem, args.profile, force=args.force)
    elif args.command == "reproduce":
        reproduce(args.profile, force=args.force)
    elif args.command == "claims":
        from . import claims
        report = claims.build_report(args.profile)
        print(claims.results_table(report))
    elif args.command == "readme":
        from . import readme
        print("README.md updated" if readme.update() else "README.md already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
