"""The two-lane job queue of make reproduce: dependencies, failures, cycles."""
import sys

import pytest

from rlvr_lowrank import jobs


def _job(tmp_path, name, code, deps=()):
    return jobs.Job(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", frozenset(deps))


def test_run_jobs_starts_a_job_only_after_its_dependencies(tmp_path):
    order = tmp_path / "order.txt"
    append = f"open({str(order)!r}, 'a').write('{{}}\\n')"
    queue = [_job(tmp_path, "late", append.format("late") + f"; assert 'early' in open({str(order)!r}).read()", ["early"]),
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
