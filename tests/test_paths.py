"""Where figures and reports go: tracked figures/<p>/ and reports/<p>/ only for the pipeline or untracked
profiles; interactive runs of a tracked profile write a scratch directory and say so."""
import subprocess
import sys

import pytest

from rlvr_lowrank import paths


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.delenv(paths.WRITE_TRACKED_ENV, raising=False)
    monkeypatch.setenv(paths.SCRATCH_ENV, str(tmp_path / "scratch"))
    monkeypatch.setattr(paths, "_noted", set())
    return tmp_path / "scratch"


def test_tracked_profile_interactive_goes_to_scratch(scratch, capsys):
    assert not paths.writes_tracked("tiny")
    assert paths.figure_dir("tiny") == scratch / "tiny" / "figures"
    assert paths.report_dir("tiny") == scratch / "tiny" / "reports"
    assert (scratch / "tiny" / "figures").is_dir() and (scratch / "tiny" / "reports").is_dir()
    out = capsys.readouterr().out
    assert out.count("\n") == 2  # one line per kind
    assert "make reproduce PROFILE=tiny" in out and "figures/tiny/ is tracked" in out
    paths.figure_dir("tiny")
    assert capsys.readouterr().out == ""  # the note is printed once per process


def test_untracked_profile_writes_in_place(scratch, capsys):
    assert paths.writes_tracked("smoke")
    assert paths.figure_dir("smoke") == paths.FIGURES / "smoke"
    assert paths.report_dir("smoke") == paths.REPORTS / "smoke"
    assert capsys.readouterr().out == ""
    assert not scratch.exists()


def test_pipeline_writes_tracked(scratch, monkeypatch, capsys):
    monkeypatch.setattr(paths, "FIGURES", scratch.parent / "figures")  # never touch the real tracked dirs
    monkeypatch.setattr(paths, "REPORTS", scratch.parent / "reports")
    with paths.tracked_outputs():
        assert paths.writes_tracked("tiny")
        assert paths.figure_dir("tiny") == scratch.parent / "figures" / "tiny"
        assert paths.report_dir("smollm2") == scratch.parent / "reports" / "smollm2"
    assert not paths.writes_tracked("tiny")  # restored on exit
    assert paths.figure_dir("tiny") == scratch / "tiny" / "figures"
    assert "[paths]" in capsys.readouterr().out


def test_tracked_outputs_restores_previous_value(monkeypatch):
    monkeypatch.setenv(paths.WRITE_TRACKED_ENV, "0")
    with paths.tracked_outputs():
        assert paths.writes_tracked("tiny")
    assert paths.writes_tracked("tiny") is False
    import os
    assert os.environ[paths.WRITE_TRACKED_ENV] == "0"


def test_child_process_inherits_the_rule(scratch, tmp_path):
    """papermill's kernel is a child process: it sees what the pipeline set."""
    code = "from rlvr_lowrank import paths; print(paths.figure_dir('tiny'))"
    env_py = [sys.executable, "-c", code]
    import os
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT / "lib")}
    with paths.tracked_outputs():
        child_env = {**env, **{paths.WRITE_TRACKED_ENV: os.environ[paths.WRITE_TRACKED_ENV]}}
    out = subprocess.run(env_py, env={**child_env, paths.SCRATCH_ENV: str(scratch)}, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == str(paths.FIGURES / "tiny")
    out = subprocess.run(env_py, env={**env, paths.SCRATCH_ENV: str(scratch)}, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip().splitlines()[-1] == str(scratch / "tiny" / "figures")


def test_report_source_prefers_this_sessions_copy(scratch, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", scratch.parent / "reports")
    (scratch.parent / "reports" / "tiny").mkdir(parents=True)
    (scratch.parent / "reports" / "tiny" / "c1.json").write_text("{}")
    assert paths.report_source("tiny", "c1.json") == scratch.parent / "reports" / "tiny" / "c1.json"
    (paths.report_dir("tiny") / "c1.json").write_text("{}")
    assert paths.report_source("tiny", "c1.json") == scratch / "tiny" / "reports" / "c1.json"


def test_scratch_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", "runs/scratch/tiny/figures/x.png"], cwd=paths.ROOT)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0
