"""A small queue of subprocesses with dependencies: the two lanes of ``make reproduce``.

Why hand-written and not Snakemake or doit: the queue must start, whenever a lane frees up, the first
job *in priority order* whose dependencies finished, so that a notebook whose runs are done jumps ahead
of training runs still queued; doit has no priorities, and Snakemake would bring a second description
of the pipeline (a Snakefile) plus a large dependency tree for about sixty lines of scheduling. What
to run and in which order is declared in pipeline.py; caching is decided there too (fingerprints).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

from . import paths


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
