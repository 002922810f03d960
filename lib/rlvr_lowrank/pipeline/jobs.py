"""A small queue of subprocesses with dependencies: the two lanes of ``make reproduce``.

Whenever a lane frees up, the queue starts the first job *in priority order* whose dependencies finished.
The priority is the number of jobs that wait on a job, directly or through others (ties keep the order
the jobs were given in): training runs go before the notebooks that read them, and the runs that more
notebooks read go first, so the last run starts as early as it can and no lane idles while a notebook
waits for it. (The earlier rule, "a notebook whose runs are done goes before queued training", let
notebook 01 of the smollm2 profile, which reads only the Full RL runs, run ahead of the last PR1S seed;
one lane then idled for most of a training run until that seed finished and notebook 03 could start.)
This needs no estimate of how long a job takes: it depends only on the declared dependencies.

Why hand-written and not Snakemake or doit: doit has no priorities, and Snakemake would bring a second
description of the pipeline (a Snakefile) plus a large dependency tree for about sixty lines of
scheduling. What to run is declared in pipeline.py; caching is decided there too (fingerprints).
"""
from __future__ import annotations

import dataclasses
import json
import os
import select
import subprocess
import sys
import time
import traceback
from pathlib import Path

from .. import paths

# A persistent worker runs jobs that have a ``call`` in its own process, one after the other, instead of one
# new Python process per job: each ``python -m rlvr_lowrank train`` process spent a sizeable share of a tiny
# run just importing torch, transformers and TRL. Worker jobs give the same results as subprocess jobs (every run
# seeds itself; the test compares the weights' checksums).
WORKER_ARGV = [sys.executable, "-m", "rlvr_lowrank", "worker"]


@dataclasses.dataclass
class Job:
    """One subprocess of the pipeline: a training run or a notebook, started once its ``deps`` finished."""
    name: str
    argv: list
    log: Path
    deps: frozenset = frozenset()
    env: dict | None = None
    experiment: str | None = None   # training jobs: the experiment it trains (what notebooks depend on)
    call: list | None = None        # run it in a persistent worker instead: ["train", profile, experiment, seed]


class Worker:
    """A ``python -m rlvr_lowrank worker`` process: one JSON request per line on its stdin, one reply per
    line on its stdout; each job's own output goes to the job's log, as for a subprocess job."""

    def __init__(self):
        self.proc = subprocess.Popen(WORKER_ARGV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def start(self, job: Job) -> None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        self.proc.stdin.write(json.dumps({"call": job.call, "log": str(job.log)}) + "\n")
        self.proc.stdin.flush()

    def poll(self) -> int | None:
        """None while the job runs; 0 when it finished, 1 when it failed (or the worker died)."""
        if self.proc.poll() is not None:
            return 1
        ready, _, _ = select.select([self.proc.stdout], [], [], 0)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return 0 if line and json.loads(line).get("ok") else 1

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait()


def run_jobs(jobs: list[Job], workers: int = 2) -> list[str]:
    """Run ``jobs`` as subprocesses, ``workers`` at a time; whenever a slot is free, the first job in
    priority order (``priority_order``) whose dependencies finished starts. After a failure no new job
    starts and the running ones finish; on an interrupt (Ctrl-C) or error the running ones are terminated
    (training resumes from its last checkpoint next time). Returns the names of the failed jobs (their logs say why)."""
    names = {j.name for j in jobs}
    for job in jobs:
        if job.deps - names:
            raise ValueError(f"job {job.name} depends on {sorted(job.deps - names)}, which no job produces")
    pending, running, finished, failed = priority_order(jobs), {}, set(), []
    idle: list[Worker] = []
    try:
        while pending or running:
            for job in list(pending):
                if failed or len(running) >= max(1, workers):
                    break
                if job.deps <= finished:
                    pending.remove(job)
                    if job.call is not None:
                        worker = idle.pop() if idle else Worker()
                        worker.start(job)
                        running[job.name] = (job, worker, None, time.time())
                        continue
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
                del running[name]
                if fh is not None:
                    fh.close()
                elif rc == 0:
                    idle.append(proc)  # a worker that finished its job takes the next one
                else:
                    proc.stop()
                status = "done" if rc == 0 else f"FAILED (exit {rc}); see {_rel(job.log)}"
                print(f"[{name}] {status} in {time.time() - t0:.0f} s", flush=True)
                if rc == 0:
                    finished.add(name)
                else:
                    failed.append(name)
    finally:
        for job, proc, fh, _ in running.values():   # only left on an exception or interrupt
            if fh is None:
                proc.stop()
                continue
            proc.terminate()
            proc.wait()
            fh.close()
        for worker in idle:
            worker.stop()
    return failed


def priority_order(jobs: list[Job]) -> list[Job]:
    """``jobs`` sorted by how many jobs wait on each, directly or through others (most first); a stable
    sort, so jobs with as many waiting on them keep their given order. Dependency cycles are tolerated
    here (run_jobs reports them)."""
    waiting_on: dict[str, set] = {}   # job -> the jobs that list it as a dependency
    for job in jobs:
        for dep in job.deps:
            waiting_on.setdefault(dep, set()).add(job.name)

    def waiting(name: str) -> int:
        seen, stack = set(), [name]
        while stack:
            for later in waiting_on.get(stack.pop(), ()):
                if later not in seen:
                    seen.add(later)
                    stack.append(later)
        return len(seen - {name})

    counts = {job.name: waiting(job.name) for job in jobs}
    return sorted(jobs, key=lambda job: -counts[job.name])


@dataclasses.dataclass
class _Redirected:
    """fd 1 and 2 of this process pointed at a log file for one job (C extensions and tqdm write to the fds)."""
    log: str

    def __enter__(self):
        sys.stdout.flush(), sys.stderr.flush()
        self.saved = os.dup(1), os.dup(2)
        fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.dup2(fd, 1), os.dup2(fd, 2)
        os.close(fd)

    def __exit__(self, *exc):
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(self.saved[0], 1), os.dup2(self.saved[1], 2)
        os.close(self.saved[0]), os.close(self.saved[1])


def serve(dispatch) -> None:
    """The worker's loop (``python -m rlvr_lowrank worker``): read a request per line from stdin, run
    ``dispatch(call)`` with its output in the job's log, reply ``{"ok": …}`` on the original stdout. After a
    failed job the worker exits (a half-failed process is not reused)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    for line in sys.stdin:
        request = json.loads(line)
        ok = True
        with _Redirected(request["log"]):
            try:
                dispatch(request["call"])
            except BaseException:  # noqa: BLE001 -- the job's log gets the traceback, the parent a failure
                traceback.print_exc()
                ok = False
        replies.write(json.dumps({"ok": ok}) + "\n")
        if not ok:
            return


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(paths.ROOT))
    except ValueError:
        return str(path)
