"""Executing the declared pipeline (pipeline.py): train what the notebooks read, run them, report.

``python -m rlvr_lowrank reproduce --profile tiny`` (what ``make reproduce`` calls). Caching: a run is
reused when its DONE exists and its config hash is the current one (a run made with another config is
refused, naming it); an executed notebook is reused when its fingerprint (the notebook's cells, its
parameters, the library, the profile, the DONE markers of the runs it reads) is unchanged. An executed
notebook is written without progress bars, widgets, warnings or absolute paths (notebook_outputs).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import papermill

from .. import claims, fileio, layout, paths
from ..claims.notebooks import experiments_read, notebook, parameters, stems
from ..training import config, precision, runs
from . import jobs, notebook_outputs, readme

# ----------------------------------------------------------------------------------------------

TIMING = "timing.json"   # reports/<profile>/timing.json: written by reproduce, read by no notebook


def checked_parameters(stem: str, profile: str) -> dict:
    """:func:`parameters`, refusing a name the notebook's parameters cell does not define (papermill only warns)."""
    params = parameters(stem, profile)
    path = paths.NOTEBOOKS / f"{stem}.ipynb"
    known = set(papermill.inspect_notebook(str(path)))
    unknown = sorted(set(params) - known)
    if unknown:
        raise config.ConfigError(f"parameter(s) {unknown} for {path.name} under profile {profile!r} do not exist "
                                 f"in its parameters cell ({sorted(known)}); fix notebooks: in configs/{profile}.yaml")
    return params


def worker_call(call: list) -> None:
    """One request of a training worker (``jobs.serve``): ``["train", profile, experiment, seed]``, what the
    ``train`` command would do, optionally with a fifth element, the overrides of ``train.train`` (tests)."""
    from ..training import train
    if call[0] != "train" or len(call) not in (4, 5):
        raise ValueError(f"a worker runs ['train', profile, experiment, seed(, overrides)], got {call!r}")
    overrides = call[4] if len(call) == 5 else None
    print(train.train(call[1], call[2], config.check_seed(int(call[3])), overrides), flush=True)


def notebook_source_hash(path: Path) -> str:
    """Hash of what a notebook runs and shows as text: each cell's type and source, in order. Stored outputs,
    execution counts and metadata are left out, so cleaning or re-executing the outputs kept in
    ``notebooks/`` leaves every fingerprint as it was."""
    cells = [[c.get("cell_type"), "".join(c.get("source", ""))] for c in fileio.read_json(path).get("cells", [])]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def fingerprint(stem: str, profile: str, params: dict) -> str:
    """Hash of everything an executed notebook depends on: the notebook's cells (notebook_source_hash), its
    parameters, the library, the shipped base model's metrics, the profile, and the DONE markers of the runs
    it reads (declared arms)."""
    h = hashlib.sha256()
    h.update(notebook_source_hash(paths.NOTEBOOKS / f"{stem}.ipynb").encode())
    h.update(fileio.config_hash(params).encode())
    for src in sorted(layout.notebook_input_files()):  # all but the pipeline package and the command lines
        h.update(str(src.relative_to(paths.ROOT)).encode() + src.read_bytes())
    for f in (paths.TINY_BASE / "metrics.json", paths.CONFIGS / f"{profile}.yaml"):
        if f.exists():
            h.update(f.read_bytes())
    if notebook(stem).reads_reports:  # the claims notebook reads the other notebooks' outputs, not runs
        for f in sorted((paths.REPORTS / profile).glob("*.json")):
            if f.name not in ("claims.json", TIMING):
                h.update(f.name.encode() + f.read_bytes())
    for experiment in experiments_read(stem, profile):
        for seed in config.seeds_of(profile, experiment):
            done = runs.run_dir(profile, experiment, seed) / "DONE"
            if done.exists():
                h.update(f"{experiment}/seed{seed}".encode() + done.read_bytes())
    return h.hexdigest()[:16]


def _executed(stem: str, profile: str) -> tuple[Path, Path]:
    out_dir = paths.REPORTS / profile / "executed"
    return out_dir / f"{stem}.ipynb", out_dir / f".{stem}.fingerprint"


def is_cached(stem: str, profile: str, fp: str) -> bool:
    out, stamp = _executed(stem, profile)
    return out.exists() and stamp.exists() and stamp.read_text().strip() == fp


def run_notebook(stem: str, profile: str, force: bool = False, log_output: bool = False) -> Path:
    """Execute ``notebooks/<stem>.ipynb`` into ``reports/<profile>/executed/`` (never in place).

    Skipped when the executed copy exists with the same fingerprint. The output is written to a
    temporary file and renamed only on success; a failed run leaves ``<stem>.failed.ipynb``.
    The runs it reads must be trained (runs.require_run inside the notebook says which are not).
    The kernel runs with progress bars off (notebook_outputs.quiet_kernels) and the executed copy is
    cleaned (notebook_outputs.sanitize) before it is renamed; the warnings taken out are printed here.
    """
    params = checked_parameters(stem, profile)
    out, stamp = _executed(stem, profile)
    fp = fingerprint(stem, profile, params)
    if not force and is_cached(stem, profile, fp):
        print(f"[reproduce] {stem}: up to date (cached)")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    failed = out.with_name(f"{stem}.failed.ipynb")
    running = out.with_name(f".{stem}.running.ipynb")
    t0 = time.time()
    print(f"[reproduce] {stem}: executing with profile {profile} ...", flush=True)
    try:
        with paths.tracked_outputs(), notebook_outputs.quiet_kernels():
            papermill.execute_notebook(
                str(paths.NOTEBOOKS / f"{stem}.ipynb"), str(running), parameters=params, kernel_name="python3",
                cwd=str(paths.NOTEBOOKS), progress_bar=False, log_output=log_output, execution_timeout=3600,
            )
    except BaseException:
        if running.exists():
            running.replace(failed)  # keep the failed notebook (error banner) for inspection
            print(f"[reproduce] {stem}: FAILED; see {jobs._rel(failed)}", file=sys.stderr)
        raise
    removed = notebook_outputs.sanitize_file(running)
    for line in removed:
        if "Warning:" in line:
            print(f"[reproduce] {stem}: {line}", flush=True)  # kept in the notebook's log, not in the notebook
    if removed:
        print(f"[reproduce] {stem}: {len(removed)} progress/warning/widget item(s) left out of the executed copy")
    running.replace(out)
    failed.unlink(missing_ok=True)
    fileio.write_text(stamp, fp + "\n")
    print(f"[reproduce] {stem}: done in {time.time() - t0:.0f} s -> {jobs._rel(out)}")
    return out


def stale_runs(profile: str, names: list[str]) -> dict[Path, str]:
    """Runs on disk made from other inputs than the profile would use now, with what changed."""
    stale = {}
    for e in names:
        for s in config.seeds_of(profile, e):
            run = runs.run_dir(profile, e, s)
            if (run / "config.yaml").exists():
                problem = runs.identity_problem(run, config.resolve(profile, e, s))
                if problem:
                    stale[run] = problem
    return stale


def move_aside(run: Path) -> Path:
    """Rename a stale run to ``<run>.stale-<UTC time>`` (kept for inspection, never deleted)."""
    target = run.with_name(f"{run.name}.stale-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
    os.replace(run, target)
    return target


def training_jobs(profile: str, experiments: list[str] | None = None, readers: dict[str, float] | None = None,
                  replace_stale: bool = False) -> tuple[list[jobs.Job], int]:
    """One training job (run by a persistent worker, jobs.Worker) per experiment x seed that is not done;
    experiments named explicitly may be ``manual_experiments``. Order: highest
    ``readers`` weight first (runs that let notebooks start soonest), then LoRA runs (the slowest: peft
    wraps every target module), otherwise config order. A run made from other inputs (config, base model,
    data, training code) is refused, naming what changed, or with ``replace_stale`` moved aside and retrained."""
    prof = config.load_profile(profile)
    defined = prof.get("experiments") or {}
    names = experiments or list(defined)
    if experiments:  # named explicitly (train-all --experiments): manual_experiments may be trained too
        defined = {**(prof.get("manual_experiments") or {}), **defined}
    unknown = sorted(set(names) - set(defined))
    if unknown:
        raise config.ConfigError(f"unknown experiment(s) {unknown} for profile {profile!r}; defined: {sorted(defined)}")
    stale = stale_runs(profile, names)
    if stale and not replace_stale:
        first = next(iter(stale.values()))
        raise runs.RunError(f"{len(stale)} run(s) of profile {profile} are stale; the first: {first}. Re-run with "
                            "--replace-stale to move them aside and retrain them")
    for run, problem in stale.items():
        print(f"[train] {problem}; moved aside to {move_aside(run).name}", flush=True)
    readers = readers or {}
    names = sorted(names, key=lambda e: (-readers.get(e, 0), not (defined[e] or {}).get("lora")))  # stable sort
    every = [(e, s) for e in names for s in config.seeds_of(profile, e)]
    todo = [(e, s) for e, s in every if not runs.is_done(runs.run_dir(profile, e, s))]
    logs = paths.RUNS / profile / "logs"
    todo_jobs = [jobs.Job(f"train {e} seed {s}", [sys.executable, "-m", "rlvr_lowrank", "train", "--profile", profile,
                                                  "--experiment", e, "--seed", str(s)],
                          logs / f"{e}-seed{s}.log", experiment=e, call=["train", profile, e, s])
                 for e, s in todo]
    return todo_jobs, len(every) - len(todo)


def train_all(profile: str, processes: int = 2, experiments: list[str] | None = None,
              replace_stale: bool = False) -> list[Path]:
    """Train every experiment x seed of a profile that has no ``DONE`` yet, ``processes`` runs at a time.

    Runs are trained by ``processes`` persistent worker processes (jobs.Worker; the profile pins one torch
    thread per run, so two runs keep both cores of a 2-core machine busy); a worker whose run fails is
    stopped, so a crash takes no other run down. Output goes to ``runs/<profile>/logs/<experiment>-seed<k>.log``;
    finished runs are reused and interrupted ones resume, so this is safe to re-run.
    """
    todo, cached = training_jobs(profile, experiments, replace_stale=replace_stale)
    print(f"[train] profile {profile}: {cached} run(s) cached, {len(todo)} to train with {processes} process(es)",
          flush=True)
    failed = jobs.run_jobs(todo, workers=processes)
    if failed:
        raise RuntimeError(f"training failed for {failed}; logs in {jobs._rel(paths.RUNS / profile / 'logs')}; "
                           "re-running resumes from the last checkpoint")
    names = experiments or list(config.load_profile(profile).get("experiments") or {})
    return [runs.run_dir(profile, e, s) for e in names for s in config.seeds_of(profile, e)]


def reproduce(profile: str, force: bool = False, processes: int = 2, started_at: float | None = None,
              replace_stale: bool = False) -> None:
    """Train what the profile's notebooks read, execute them, write the claims report, print the total time.

    Training runs and notebooks share one queue of ``processes`` subprocesses (jobs.run_jobs): a notebook
    starts once every seed of the experiments it reads is trained (a notebook that reads reports, after the
    other notebooks); a job that more jobs wait on starts first (jobs.priority_order), so the runs go
    before the notebooks, the runs most notebooks read first, and no lane idles while a notebook waits for
    a run that is still queued.
    Notebook kernels run with one torch thread (OMP_NUM_THREADS=1), whether or not another job runs beside
    them, so their numbers do not depend on ``processes``.

    The times go to ``reports/<profile>/timing.json`` (write_timing); ``started_at`` (epoch seconds,
    passed by ``make reproduce``) makes the total include the set-up of .venv.
    """
    prof = config.load_profile(profile)  # unknown profile -> clear error before anything runs
    t0 = time.time()
    todo_stems = stems(profile)
    params = {stem: checked_parameters(stem, profile) for stem in todo_stems}  # a bad parameter fails before training
    reads = {stem: set(experiments_read(stem, profile)) for stem in todo_stems}
    # weight of a run: sum over the notebooks reading it of 1 / (experiments that notebook reads). It sets the
    # given order of the runs, which jobs.priority_order keeps among runs that as many jobs wait on
    readers = {e: sum(1 / len(r) for r in reads.values() if e in r) for e in prof.get("experiments") or {}}
    todo, cached = (training_jobs(profile, readers=readers, replace_stale=replace_stale)
                    if prof.get("experiments") else ([], 0))
    print(f"[reproduce] profile {profile}: {cached} run(s) cached, {len(todo)} to train, "
          f"{len(todo_stems)} notebook(s), {processes} process(es)", flush=True)
    nb_jobs, logs = [], paths.RUNS / profile / "logs"
    for stem in todo_stems:
        deps = {j.name for j in todo if j.experiment in reads[stem]}
        if notebook(stem).reads_reports:
            deps |= {j.name for j in nb_jobs}
        if not force and not deps and is_cached(stem, profile, fingerprint(stem, profile, params[stem])):
            print(f"[reproduce] {stem}: up to date (cached)")
            continue
        argv = ([sys.executable, "-m", "rlvr_lowrank", "notebook", stem, "--profile", profile]
                + (["--force"] if force else []))
        nb_jobs.append(jobs.Job(f"notebook {stem}", argv, logs / f"notebook-{stem}.log", frozenset(deps),
                                env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}))
    t_jobs = time.time()
    failed = jobs.run_jobs(todo + nb_jobs, workers=processes)  # in priority order: runs before their notebooks
    t_jobs = time.time() - t_jobs
    if failed:
        raise RuntimeError(f"{failed} failed; logs in {jobs._rel(logs)} (a failed notebook is kept as "
                           f"reports/{profile}/executed/<stem>.failed.ipynb); re-running resumes training and "
                           "reuses finished notebooks")
    if any(notebook(stem).claim for stem in todo_stems):
        with paths.tracked_outputs():
            # reports/<profile>/claims.json + claims.md from the notebooks' c*.json
            report = claims.build_report(profile)
        print(claims.results_table(report))
    end = time.time()
    total = end - (started_at if started_at is not None and started_at <= t0 else t0)
    write_timing(profile, {"total_s": round(total, 1), "setup_s": round(total - (end - t0), 1),
                           "pipeline_s": round(end - t0, 1), "jobs_wall_s": round(t_jobs, 1),
                           "runs_trained": len(todo), "runs_cached": cached, "notebooks_executed": len(nb_jobs),
                           "notebooks_cached": len(todo_stems) - len(nb_jobs), "processes": processes,
                           "cpu_count": os.cpu_count(), "cpu": cpu_record(),
                           "runs_seconds": recorded_run_seconds(profile, set().union(*reads.values()))})
    if profile == "tiny":  # the README quotes the tiny profile: keep its generated blocks in step
        print("[reproduce] README.md " + ("updated" if readme.update() else "already up to date"))
    print(f"[reproduce] profile {profile}: finished in {total:.0f} s"
          + (f" ({total - (end - t0):.0f} s of it setting up .venv)" if total - (end - t0) >= 1 else ""))


def recorded_run_seconds(profile: str, experiments) -> dict:
    """The training time each finished run's DONE marker records (seconds of its own wall clock, whichever
    ``reproduce`` trained it), summed over every seed of ``experiments``: with it a pipeline whose runs were
    cached still states what training them costs."""
    secs = [float(fileio.read_json(done).get("seconds") or 0.0)
            for e in sorted(experiments) for seed in config.seeds_of(profile, e)
            if (done := runs.run_dir(profile, e, seed) / "DONE").exists()]
    return {"n": len(secs), "sum_s": round(sum(secs), 1), "max_s": round(max(secs, default=0.0), 1)}


def cpu_record(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict:
    """The measuring CPU, for every recorded time: /proc/cpuinfo's first ``model name`` (None where the file
    is missing) and the bf16 flag that would make the bf16 path fast (``precision.cpu_bf16_feature``; None: the
    fp32 path, where a bf16 run falls back to fp32)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 None)
    return {"model": model, "bf16_feature": precision.cpu_bf16_feature(cpuinfo)}


def write_timing(profile: str, record: dict) -> Path:
    """Keep the last ``reproduce``'s times under ``last``; also under ``cold`` when it trained every run
    from nothing (a fresh clone) and under ``warm`` when it found everything cached (a new cold record
    drops the old warm one). The README quotes cold and warm."""
    path = paths.REPORTS / profile / TIMING
    data = fileio.read_json(path) if path.exists() else {}
    data["last"] = record
    if record["runs_trained"] and not record["runs_cached"]:
        data["cold"] = record
        data.pop("warm", None)  # a warm record of an earlier pipeline would quote the wrong number of runs
    if not record["runs_trained"] and not record["notebooks_executed"]:
        data["warm"] = record
    fileio.write_json(path, data)
    return path
