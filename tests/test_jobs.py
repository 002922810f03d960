"""The two-lane job queue of make reproduce: dependencies, failures, cycles."""
import sys

import pytest

from rlvr_lowrank.pipeline import jobs


def _job(tmp_path, name, code, deps=()):
    return jobs.Job(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", frozenset(deps))


def test_run_jobs_starts_a_job_only_after_its_dependencies(tmp_path):
    order = tmp_path / "order.txt"
    append = f"open({str(order)!r}, 'a').write('{{}}\\n')"
    queue = [_job(tmp_path, "late", append.format("late") + f"; assert 'early' in open({str(order)!r}).read()",
                  ["early"]),
             _job(tmp_path, "early", "import time; time.sleep(0.5); " + append.format("early")),
             _job(tmp_path, "free", append.format("free"))]
    assert jobs.run_jobs(queue, workers=2) == []
    lines = order.read_text().split()
    assert sorted(lines) == ["early", "free", "late"] and lines.index("early") < lines.index("late")


def test_run_jobs_stops_starting_jobs_after_a_failure(tmp_path):
    marker = tmp_path / "ran"
    queue = [_job(tmp_path, "bad", "raise SystemExit(3)"),
             _job(tmp_path, "after", f"open({str(marker)!r}, 'w')", ["bad"]),
             _job(tmp_path, "other", f"open({str(marker)!r}, 'w')")]
    assert jobs.run_jobs(queue, workers=1) == ["bad"]
    assert not marker.exists()  # neither the dependent job nor the queued independent one started
    assert (tmp_path / "bad.log").exists()


def test_run_jobs_refuses_a_dependency_no_job_produces(tmp_path):
    with pytest.raises(ValueError, match="no job produces"):
        jobs.run_jobs([_job(tmp_path, "a", "pass", ["ghost"])])


def test_run_jobs_refuses_jobs_that_wait_on_each_other(tmp_path):
    with pytest.raises(ValueError, match="wait on each other"):
        jobs.run_jobs([_job(tmp_path, "a", "pass", ["b"]), _job(tmp_path, "b", "pass", ["a"])])
    assert not (tmp_path / "a.log").exists()   # nothing started


FAKE_WORKER = """
import os, sys
from rlvr_lowrank.pipeline import jobs

def dispatch(call):
    print(f"pid {os.getpid()} runs {call}")  # into the job's log
    os.write(2, b"fd-level stderr too\\n")
    if call[0] == "fail":
        raise RuntimeError("this job fails")

jobs.serve(dispatch)
"""


def test_worker_jobs_share_one_process_log_separately_and_a_failure_stops_the_worker(tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "WORKER_ARGV", [sys.executable, "-c", FAKE_WORKER])

    def call_job(name, call, deps=()):
        return jobs.Job(name, ["unused"], tmp_path / f"{name}.log", frozenset(deps), call=call)

    queue = [call_job("a", ["ok", 1]), call_job("b", ["ok", 2], ["a"]), call_job("c", ["fail"], ["b"]),
             call_job("d", ["ok", 3], ["c"])]
    assert jobs.run_jobs(queue, workers=1) == ["c"]
    logs = {n: (tmp_path / f"{n}.log").read_text() for n in "abc"}
    pids = {n: logs[n].split()[1] for n in "abc"}
    assert pids["a"] == pids["b"] == pids["c"]  # one worker process ran them one after the other
    assert "['ok', 1]" in logs["a"] and "['ok', 2]" in logs["b"] and "['ok', 1]" not in logs["b"]
    assert all("fd-level stderr too" in text for text in logs.values())
    assert "RuntimeError: this job fails" in logs["c"]  # the traceback is in the failed job's log
    assert not (tmp_path / "d.log").exists()


@pytest.mark.slow
def test_a_run_trained_by_a_worker_after_another_run_equals_one_trained_in_its_own_process(tmp_path, monkeypatch):
    """The worker's premise: training runs one after another in one process changes no result (every run
    seeds itself; TRL keeps no state between trainers that would alter the next run)."""
    import os
    import subprocess

    from rlvr_lowrank import paths
    from rlvr_lowrank.training import integrity

    short = {"train": {"max_steps": 2}, "eval": {"every": 0}, "trajectory": {"every": 2}}  # seconds, not minutes
    worker_jobs = [jobs.Job(f"train {e}", ["unused"], tmp_path / f"{e}.log", call=["train", "smoke", e, 0, short])
                   for e in ("full", "pr1s_trunc_k10")]
    monkeypatch.setenv("RLVR_RUNS_DIR", str(tmp_path / "worker"))  # the worker process inherits it
    assert jobs.run_jobs(worker_jobs, workers=1) == []
    monkeypatch.delenv("RLVR_RUNS_DIR")
    alone = {**os.environ, "RLVR_RUNS_DIR": str(tmp_path / "alone")}
    code = f"from rlvr_lowrank.training import train; train.train('smoke', 'pr1s_trunc_k10', 0, {short!r})"
    subprocess.run([sys.executable, "-c", code], env=alone, check=True, capture_output=True)
    done = {where: integrity.read_done(tmp_path / where / "smoke" / "pr1s_trunc_k10" / "seed0" / "DONE")
            for where in ("worker", "alone")}
    assert done["worker"]["weights_sha256"] == done["alone"]["weights_sha256"]
    assert paths.RUNS != tmp_path  # this process's own runs directory was not touched


def test_priority_order_puts_the_jobs_more_jobs_wait_on_first_and_keeps_ties_in_given_order(tmp_path):
    # the smollm2 shape: notebook "one" reads only run "f", "three" reads "f" and "p", "claims" reads both
    # notebooks, "spectra" reads nothing; under the old rule "one" went ahead of the still queued "p"
    queue = [_job(tmp_path, "f", "pass"), _job(tmp_path, "p", "pass"),
             _job(tmp_path, "one", "pass", ["f"]), _job(tmp_path, "three", "pass", ["f", "p"]),
             _job(tmp_path, "claims", "pass", ["one", "three"]), _job(tmp_path, "spectra", "pass")]
    assert [j.name for j in jobs.priority_order(queue)] == ["f", "p", "one", "three", "claims", "spectra"]
    reordered = [queue[i] for i in (5, 4, 3, 2, 1, 0)]   # the given order only breaks ties
    assert [j.name for j in jobs.priority_order(reordered)] == ["f", "p", "three", "one", "spectra", "claims"]
    chain = [_job(tmp_path, "c", "pass", ["b"]), _job(tmp_path, "b", "pass", ["a"]), _job(tmp_path, "a", "pass")]
    assert [j.name for j in jobs.priority_order(chain)] == ["a", "b", "c"]   # counted through other jobs too
    cycle = [_job(tmp_path, "x", "pass", ["y"]), _job(tmp_path, "y", "pass", ["x"])]
    assert {j.name for j in jobs.priority_order(cycle)} == {"x", "y"}   # terminates; run_jobs reports the cycle


def test_run_jobs_starts_a_waited_on_run_before_a_ready_notebook_that_nothing_else_needs(tmp_path):
    order = tmp_path / "order.txt"
    append = f"open({str(order)!r}, 'a').write('{{}}\\n')"
    queue = [_job(tmp_path, "f", append.format("f")),
             _job(tmp_path, "one", append.format("one"), ["f"]),          # ready once f is done
             _job(tmp_path, "p", append.format("p")),                      # listed after it, but waited on
             _job(tmp_path, "three", append.format("three"), ["f", "p"])]
    assert jobs.run_jobs(queue, workers=1) == []
    assert order.read_text().split() == ["f", "p", "one", "three"]
