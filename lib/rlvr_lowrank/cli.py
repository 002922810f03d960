"""Command line: ``python -m rlvr_lowrank <command>``.

Commands
  world       write the task splits and facts to data/tasks/ (deterministic)
  pretrain    pretrain the tiny base model into data/models/tiny-base/ and measure it
  train       one GRPO run: --profile P --experiment E --seed S
  train-all   every experiment x seed of a profile, two runs at a time (cached, resumable)
  notebook    execute one notebook with papermill for a profile
  reproduce   execute every notebook of the pipeline for a profile (cached)
  claims      gather C0-C4 into reports/<profile>/claims.json and claims.md
  readme      rewrite the generated blocks of README.md
  analyze     rank-1 / heavy-tail / alignment diagnostics of your own BASE and RL checkpoints
  substitute  BASE + rank-1 (or another variant) of ΔW, written as a Hugging Face model directory
  export      a run directory of this project as a Hugging Face model directory
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import sys
import time
from pathlib import Path

from . import io, paths, profiles

PIPELINE = ["00_base_model", "01_rank1_dominance", "02_reward_overfitting", "03_knowledge_loss", "04_heavy_tails",
            "05_alignment", "06_linear_dynamics", "07_claims"]  # notebooks run by `reproduce`, in order


READS_REPORTS = {"07_claims"}  # notebooks whose inputs are reports/<profile>/*.json rather than runs
# library modules no notebook imports (the command line, the README writer): editing them keeps executed
# notebooks cached; every other module of lib/rlvr_lowrank is part of each notebook's fingerprint
NOT_NOTEBOOK_INPUTS = {"cli.py", "readme.py", "__main__.py"}


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
    the shipped base model's metrics and the DONE markers of the runs it reads (_experiments_read)."""
    h = hashlib.sha256()
    h.update((paths.NOTEBOOKS / f"{stem}.ipynb").read_bytes())
    h.update(io.config_hash(params).encode())
    for src in sorted((paths.ROOT / "lib" / "rlvr_lowrank").glob("*.py")):
        if src.name not in NOT_NOTEBOOK_INPUTS:
            h.update(src.read_bytes())
    for f in (paths.TINY_BASE / "metrics.json", paths.CONFIGS / f"{profile}.yaml"):
        if f.exists():
            h.update(f.read_bytes())
    if stem in READS_REPORTS:  # the claims notebook reads the other notebooks' outputs, not runs
        for f in sorted((paths.REPORTS / profile).glob("*.json")):
            if f.name not in ("claims.json", TIMING):
                h.update(f.name.encode() + f.read_bytes())
    runs = paths.RUNS / profile
    for experiment in sorted(_experiments_read({**_notebook_defaults(stem), **params}, profile)):
        for done in sorted((runs / experiment).glob("seed*/DONE")):
            h.update(str(done.relative_to(runs)).encode() + done.read_bytes())
    return h.hexdigest()[:16]


def _notebook_defaults(stem: str) -> dict:
    """The parameters cell's default values (literals only; others are skipped)."""
    import ast

    import papermill

    out = {}
    for name, spec in papermill.inspect_notebook(str(paths.NOTEBOOKS / f"{stem}.ipynb")).items():
        try:
            out[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            pass
    return out


def _experiments_read(params: dict, profile: str) -> set[str]:
    """The profile's experiments a notebook reads: every experiment name among its parameter values
    (FULL, PR1S, ARMS, SWEEP, ...), so finishing an unrelated run does not invalidate its cached output."""
    names = set(profiles.load(profile).get("experiments", {}))
    found, stack = set(), list(params.values())
    while stack:
        v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend(v)
        elif isinstance(v, str) and v in names:
            found.add(v)
    return found


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
    if not force and _is_cached(stem, profile, fp):
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


@dataclasses.dataclass
class Job:
    """One subprocess of the pipeline: a training run or a notebook, started once its ``deps`` finished."""
    name: str
    argv: list
    log: Path
    deps: frozenset = frozenset()
    env: dict | None = None
    experiment: str | None = None   # training jobs: the experiment it trains (what notebooks depend on)


def run_jobs(jobs: list[Job], workers: int = 2) -> list[str]:
    """Run ``jobs`` as subprocesses, ``workers`` at a time; whenever a slot is free, the first job in list
    order whose dependencies finished starts. After a failure no new job starts and the running ones
    finish; on an interrupt (Ctrl-C) or error the running ones are terminated (training resumes from its
    last checkpoint next time). Returns the names of the failed jobs (their logs say why)."""
    import subprocess

    names = {j.name for j in jobs}
    for job in jobs:
        if job.deps - names:
            raise ValueError(f"job {job.name} depends on {sorted(job.deps - names)}, which no job produces")
    pending, running, finished, failed = list(jobs), {}, set(), []
    try:
        while pending or running:
            for job in list(pending):
                if failed or len(running) >= max(1, workers):
                    break
                if job.deps <= finished:
                    pending.remove(job)
                    job.log.parent.mkdir(parents=True, exist_ok=True)
                    fh = open(job.log, "w")
                    proc = subprocess.Popen(job.argv, stdout=fh, stderr=subprocess.STDOUT,
                                            env={**os.environ, **(job.env or {})})
                    running[job.name] = (job, proc, fh, time.time())
            if failed:
                pending.clear()
            if not running:
                if pending:
                    raise ValueError(f"jobs {[j.name for j in pending]} wait on each other")
                break
            time.sleep(0.2)
            for name, (job, proc, fh, t0) in list(running.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                fh.close()
                del running[name]
                status = "done" if rc == 0 else f"FAILED (exit {rc}); see {_rel(job.log)}"
                print(f"[{name}] {status} in {time.time() - t0:.0f} s", flush=True)
                if rc == 0:
                    finished.add(name)
                else:
                    failed.append(name)
    finally:
        for job, proc, fh, _ in running.values():   # only left on an exception or interrupt
            proc.terminate()
            proc.wait()
            fh.close()
    return failed


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(paths.ROOT))
    except ValueError:
        return str(path)


def _training_jobs(profile: str, experiments: list[str] | None = None,
                   readers: dict[str, float] | None = None) -> tuple[list[Job], int]:
    """One ``python -m rlvr_lowrank train`` job per experiment x seed without ``DONE``. Order: highest
    ``readers`` weight first (see reproduce: runs that let notebooks start soonest), then LoRA runs (the
    slowest: peft wraps every target module), otherwise config order."""
    from . import train

    prof = profiles.load(profile)
    names = experiments or list(prof.get("experiments", {}))
    unknown = sorted(set(names) - set(prof.get("experiments", {})))
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown} for profile {profile!r}; defined: {sorted(prof['experiments'])}")
    readers = readers or {}
    names = sorted(names, key=lambda e: (-readers.get(e, 0), not (prof["experiments"][e] or {}).get("lora")))  # stable sort
    todo = [(e, s) for e in names for s in prof["seeds"] if not train.is_done(paths.run_dir(profile, e, s))]
    logs = paths.RUNS / profile / "logs"
    jobs = [Job(f"train {e} seed {s}", [sys.executable, "-m", "rlvr_lowrank", "train", "--profile", profile,
                                        "--experiment", e, "--seed", str(s)], logs / f"{e}-seed{s}.log",
                experiment=e)
            for e, s in todo]
    return jobs, len(names) * len(prof["seeds"]) - len(todo)


def train_all(profile: str, jobs: int = 2, experiments: list[str] | None = None) -> list[Path]:
    """Train every experiment x seed of a profile that has no ``DONE`` yet, ``jobs`` runs at a time.

    Each run is its own ``python -m rlvr_lowrank train`` process (the profile pins one torch thread
    per run, so two runs keep both cores of a 2-core machine busy; one process per run also keeps a
    crash from taking the others down). Output goes to ``runs/<profile>/logs/<experiment>-seed<k>.log``;
    finished runs are reused and interrupted ones resume (train.train), so this is safe to re-run.
    """
    todo, cached = _training_jobs(profile, experiments)
    print(f"[train] profile {profile}: {cached} run(s) cached, {len(todo)} to train with {jobs} process(es)", flush=True)
    failed = run_jobs(todo, workers=jobs)
    if failed:
        raise RuntimeError(f"training failed for {failed}; logs in {_rel(paths.RUNS / profile / 'logs')}; "
                           "re-running resumes from the last checkpoint")
    prof = profiles.load(profile)
    names = experiments or list(prof.get("experiments", {}))
    return [paths.run_dir(profile, e, s) for e in names for s in prof["seeds"]]


def reproduce(profile: str, force: bool = False, notebooks: list[str] | None = None, jobs: int = 2,
              started_at: float | None = None) -> None:
    """Train what the profile needs, execute its notebooks (``pipeline:`` in the profile, default PIPELINE),
    write the claims report when the pipeline has one, and print the total time.

    Training runs and notebooks share one queue of ``jobs`` subprocesses: a notebook starts as soon as
    every seed of the experiments it reads is trained (07_claims after the other notebooks), ahead of the
    runs still queued, and the runs most notebooks read train first; so notebooks overlap training, both
    cores stay busy to the end and the last jobs are short ones. Notebook kernels run with one torch
    thread (OMP_NUM_THREADS=1), whether or not another job runs beside them, so their numbers do not
    depend on ``jobs``.

    The times go to ``reports/<profile>/timing.json`` (write_timing); ``started_at`` (epoch seconds,
    passed by ``make reproduce``) makes the total include the set-up of .venv.
    """
    prof = profiles.load(profile)  # unknown profile -> clear error before anything runs
    t0 = time.time()
    stems = notebooks or prof.get("pipeline", PIPELINE)
    params = {stem: notebook_parameters(stem, profile) for stem in stems}  # a bad parameter fails before training
    reads = {stem: _experiments_read({**_notebook_defaults(stem), **params[stem]}, profile) for stem in stems}
    # weight of a run: sum over the notebooks reading it of 1 / (experiments that notebook reads), so the
    # runs that unlock notebooks soonest train first
    readers = {e: sum(1 / len(r) for r in reads.values() if e in r) for e in prof.get("experiments", {})}
    todo, cached = _training_jobs(profile, readers=readers) if prof.get("experiments") else ([], 0)
    print(f"[reproduce] profile {profile}: {cached} run(s) cached, {len(todo)} to train, "
          f"{len(stems)} notebook(s), {jobs} process(es)", flush=True)
    nb_jobs, logs = [], paths.RUNS / profile / "logs"
    for stem in stems:
        deps = {j.name for j in todo if j.experiment in reads[stem]}
        if stem in READS_REPORTS:
            deps |= {j.name for j in nb_jobs}
        if not force and not deps and _is_cached(stem, profile, _fingerprint(stem, profile, params[stem])):
            print(f"[reproduce] {stem}: up to date (cached)")
            continue
        argv = [sys.executable, "-m", "rlvr_lowrank", "notebook", stem, "--profile", profile] + (["--force"] if force else [])
        nb_jobs.append(Job(f"notebook {stem}", argv, logs / f"notebook-{stem}.log", frozenset(deps),
                           env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}))
    t_jobs = time.time()
    failed = run_jobs(nb_jobs + todo, workers=jobs)  # a notebook whose runs are done goes before further training
    t_jobs = time.time() - t_jobs
    if failed:
        raise RuntimeError(f"{failed} failed; logs in {_rel(logs)} (a failed notebook is kept as "
                           f"reports/{profile}/executed/<stem>.failed.ipynb); re-running resumes training and "
                           "reuses finished notebooks")
    if "07_claims" in stems:
        from . import claims

        report = claims.build_report(profile)  # reports/<profile>/claims.json + claims.md from the notebooks' c*.json
        print(claims.results_table(report))
    end = time.time()
    total = end - (started_at if started_at is not None and started_at <= t0 else t0)
    write_timing(profile, {"total_s": round(total, 1), "setup_s": round(total - (end - t0), 1),
                           "pipeline_s": round(end - t0, 1), "jobs_wall_s": round(t_jobs, 1),
                           "runs_trained": len(todo), "runs_cached": cached, "notebooks_executed": len(nb_jobs),
                           "notebooks_cached": len(stems) - len(nb_jobs), "processes": jobs,
                           "cpu_count": os.cpu_count()})
    if profile == "tiny":  # the README quotes the tiny profile: keep its generated blocks in step
        from . import readme

        print("[reproduce] README.md " + ("updated" if readme.update() else "already up to date"))
    print(f"[reproduce] profile {profile}: finished in {total:.0f} s"
          + (f" ({total - (end - t0):.0f} s of it setting up .venv)" if total - (end - t0) >= 1 else ""))


TIMING = "timing.json"   # reports/<profile>/timing.json: not an input of any notebook (see _fingerprint)


def write_timing(profile: str, record: dict) -> Path:
    """Keep the last ``reproduce``'s times under ``last``; also under ``cold`` when it trained every run
    from nothing (a fresh clone) and under ``warm`` when it found everything cached. The README quotes
    cold and warm (readme.timing_block)."""
    path = paths.REPORTS / profile / TIMING
    data = io.read_json(path) if path.exists() else {}
    data["last"] = record
    if record["runs_trained"] and not record["runs_cached"]:
        data["cold"] = record
    if not record["runs_trained"] and not record["notebooks_executed"]:
        data["warm"] = record
    path.parent.mkdir(parents=True, exist_ok=True)
    io.write_json(path, data)
    return path


def _is_cached(stem: str, profile: str, fingerprint: str) -> bool:
    out_dir = paths.REPORTS / profile / "executed"
    stamp = out_dir / f".{stem}.fingerprint"
    return (out_dir / f"{stem}.ipynb").exists() and stamp.exists() and stamp.read_text().strip() == fingerprint


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
    p.add_argument("--dry-run", action="store_true", help="resolve and print the run and its launch command; load nothing")
    p = sub.add_parser("train-all", help="train every experiment x seed of a profile (cached, resumable)")
    p.add_argument("--profile", default="tiny")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2: one per core)")
    p.add_argument("--experiments", nargs="*", default=None)
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
    p.add_argument("--jobs", type=int, default=2, help="subprocesses at a time (default 2: one per core)")
    p.add_argument("--started-at", type=float, default=None,
                   help="epoch seconds when set-up began (make reproduce passes it; the total time then includes it)")
    from . import checkpoints_cli
    checkpoints_cli.add_commands(sub)  # analyze / substitute / export (a user's own checkpoints)
    args = parser.parse_args(argv)
    if args.command in checkpoints_cli.COMMANDS:
        return checkpoints_cli.run(args)

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
        if args.dry_run:
            print(train.dry_run(args.profile, args.experiment, args.seed))
        else:
            print(train.train(args.profile, args.experiment, args.seed))
    elif args.command == "train-all":
        train_all(args.profile, jobs=args.jobs, experiments=args.experiments)
    elif args.command == "notebook":
        profiles.load(args.profile)
        run_notebook(args.stem, args.profile, force=args.force)
    elif args.command == "reproduce":
        reproduce(args.profile, force=args.force, jobs=args.jobs, started_at=args.started_at)
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
