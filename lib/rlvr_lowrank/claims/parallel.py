"""Scoring many models in a few processes, with the numbers one process would give.

The claim notebooks build and score dozens of models (C0: every variant of every seed's update; C2:
five models per seed on three axes). On SmolLM2 that is most of ``make reproduce``'s time, and each model
is independent of the others, so :func:`map_tasks` spreads them over ``processes`` worker processes.

Why the numbers do not depend on ``processes``: every task is a pure function of its arguments (a model
is rebuilt from the run's files in the process that scores it; the random-direction control is seeded per
matrix), and each worker runs with the parent's torch thread count, so a worker does the same
floating-point operations in the same order as the parent would. The tests compare both paths.

Choices: workers are *spawned* (a fork of a kernel holding torch's thread pool can deadlock); tasks and
results travel between these processes with multiprocessing's own pickling, as every process pool does
(nothing is ever unpickled from a file); a worker keeps the last run it loaded (:func:`run_pair`), so
tasks of one run that land on one worker load it once. Spawned workers re-import the caller's main
module: from a notebook nothing is needed, a script calling with ``processes`` > 1 needs the usual
``if __name__ == "__main__":`` guard.
"""
from __future__ import annotations

import functools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

import torch

from ..training import runs


@functools.lru_cache(maxsize=1)
def run_pair(run):
    """runs.load_run_pair, keeping the last run loaded in this process (the next task is usually of the same run).
    Callers must not modify the returned models (rank1.build_substituted_model copies the base)."""
    return runs.load_run_pair(run)


def _start_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def map_tasks(fn: Callable, tasks: Sequence[tuple], processes: int = 1) -> list:
    """``[fn(*task) for task in tasks]``, in order; with ``processes`` > 1 computed by that many spawned
    processes, each with this process's torch thread count. ``fn`` must be importable (a module-level
    function of the library), its arguments and results picklable.

    The workers are capped so that processes x threads <= the CPU count (more would oversubscribe the
    cores, and OpenMP threads waiting on each other then run many times slower): in a kernel with one
    torch thread (the pipeline's) ``processes`` workers start; with all cores' threads, none do and the
    tasks run here, with the same numbers."""
    tasks = list(tasks)
    threads = torch.get_num_threads()
    processes = min(processes, len(tasks), max(1, (os.cpu_count() or 1) // threads))
    try:
        if processes <= 1:
            return [fn(*task) for task in tasks]
        with ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(threads,)) as pool:
            return list(pool.map(_call, [(fn, task) for task in tasks]))
    finally:
        run_pair.cache_clear()  # the models of the last run are not kept alive after the scoring


def _call(fn_and_task: tuple):
    fn, task = fn_and_task
    return fn(*task)
