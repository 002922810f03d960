"""Notebook parameters fail loudly when misspelled; unknown profiles are refused."""
import shutil

import pytest

from rlvr_lowrank import cli, io, paths


@pytest.fixture
def nb_dir(tmp_path, monkeypatch):
    (tmp_path / "params").mkdir()
    shutil.copy(paths.NOTEBOOKS / "00_base_model.ipynb", tmp_path / "00_base_model.ipynb")
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path)
    return tmp_path


def test_known_parameters_pass_through(nb_dir):
    (nb_dir / "params" / "00_base_model.tiny.yaml").write_text("PROFILE: tiny\nN_MATH: 600\n")
    assert cli.notebook_parameters("00_base_model", "tiny") == {"PROFILE": "tiny", "N_MATH": 600}


def test_misspelled_parameter_is_an_error_not_a_warning(nb_dir):
    (nb_dir / "params" / "00_base_model.tiny.yaml").write_text("PROFILE: tiny\nN_MAHT: 600\n")
    with pytest.raises(ValueError, match="N_MAHT"):
        cli.notebook_parameters("00_base_model", "tiny")


def test_missing_params_file_for_a_real_profile_is_an_error(nb_dir):
    with pytest.raises(FileNotFoundError, match="no parameters for profile"):
        cli.notebook_parameters("00_base_model", "tiny")
    assert cli.notebook_parameters("00_base_model", "smoke") == {"PROFILE": "smoke"}


def test_reproduce_refuses_an_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile"):
        cli.reproduce("paper-xl")


def test_every_shipped_params_file_names_existing_parameters():
    for f in sorted((paths.NOTEBOOKS / "params").glob("*.yaml")):
        stem, profile = f.name.split(".")[:2]
        cli.notebook_parameters(stem, profile)


def test_train_all_trains_missing_runs_once_then_reuses_them(tmp_path, monkeypatch):
    import subprocess

    from rlvr_lowrank import paths

    monkeypatch.setattr(paths, "RUNS", tmp_path)
    monkeypatch.setenv("RLVR_RUNS_DIR", str(tmp_path))  # the child processes write there too
    runs = cli.train_all("smoke", jobs=1, experiments=["full"])
    assert [r.name for r in runs] == ["seed0"] and (runs[0] / "DONE").exists()
    assert (tmp_path / "smoke" / "logs" / "full-seed0.log").exists()

    def no_training(*a, **k):
        raise AssertionError("a finished run must not be trained again")

    monkeypatch.setattr(subprocess, "Popen", no_training)
    assert cli.train_all("smoke", jobs=2, experiments=["full"]) == runs
    with pytest.raises(ValueError, match=r"unknown experiment\(s\) \['nope'\]"):
        cli.train_all("smoke", experiments=["nope"])


def _job(tmp_path, name, code, deps=()):
    import sys

    return cli.Job(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", frozenset(deps))


def test_run_jobs_starts_a_job_only_after_its_dependencies(tmp_path):
    order = tmp_path / "order.txt"
    append = f"open({str(order)!r}, 'a').write('{{}}\\n')"
    jobs = [_job(tmp_path, "late", append.format("late") + f"; assert 'early' in open({str(order)!r}).read()", ["early"]),
            _job(tmp_path, "early", "import time; time.sleep(0.5); " + append.format("early")),
            _job(tmp_path, "free", append.format("free"))]
    assert cli.run_jobs(jobs, workers=2) == []
    lines = order.read_text().split()
    assert sorted(lines) == ["early", "free", "late"] and lines.index("early") < lines.index("late")


def test_run_jobs_stops_starting_jobs_after_a_failure(tmp_path):
    marker = tmp_path / "ran"
    jobs = [_job(tmp_path, "bad", "raise SystemExit(3)"),
            _job(tmp_path, "after", f"open({str(marker)!r}, 'w')", ["bad"]),
            _job(tmp_path, "other", f"open({str(marker)!r}, 'w')")]
    assert cli.run_jobs(jobs, workers=1) == ["bad"]
    assert not marker.exists()  # neither the dependent job nor the queued independent one started
    assert (tmp_path / "bad.log").exists()


def test_run_jobs_refuses_a_dependency_no_job_produces(tmp_path):
    with pytest.raises(ValueError, match="no job produces"):
        cli.run_jobs([_job(tmp_path, "a", "pass", ["ghost"])])


def test_write_timing_keeps_cold_and_warm_records(tmp_path, monkeypatch):
    from rlvr_lowrank import readme

    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    rec = dict(total_s=900.0, setup_s=60.0, pipeline_s=840.0, jobs_wall_s=830.0, runs_trained=21, runs_cached=0,
               notebooks_executed=8, notebooks_cached=0, processes=2, cpu_count=2)
    cli.write_timing("tiny", rec)
    cli.write_timing("tiny", {**rec, "total_s": 300.0, "runs_trained": 1, "runs_cached": 20})   # partial: neither
    cli.write_timing("tiny", {**rec, "total_s": 2.0, "runs_trained": 0, "runs_cached": 21, "notebooks_executed": 0,
                              "notebooks_cached": 8})
    t = io.read_json(tmp_path / "tiny" / "timing.json")
    assert t["cold"]["total_s"] == 900.0 and t["warm"]["total_s"] == 2.0 and t["last"]["total_s"] == 2.0
    text = readme.timing_block()
    assert "**15.0 min**" in text and "21 GRPO runs" in text and "**2 s**" in text


def test_timing_file_is_not_an_input_of_the_claims_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    (tmp_path / "smoke").mkdir()
    io.write_json(tmp_path / "smoke" / "c0.json", {"x": 1})
    params = cli.notebook_parameters("07_claims", "smoke")
    before = cli._fingerprint("07_claims", "smoke", params)
    cli.write_timing("smoke", dict(total_s=1.0, setup_s=0.0, pipeline_s=1.0, jobs_wall_s=1.0, runs_trained=0,
                                   runs_cached=1, notebooks_executed=0, notebooks_cached=1, processes=2, cpu_count=2))
    assert cli._fingerprint("07_claims", "smoke", params) == before
    io.write_json(tmp_path / "smoke" / "c0.json", {"x": 2})
    assert cli._fingerprint("07_claims", "smoke", params) != before


def test_run_jobs_refuses_jobs_that_wait_on_each_other(tmp_path):
    with pytest.raises(ValueError, match="wait on each other"):
        cli.run_jobs([_job(tmp_path, "a", "pass", ["b"]), _job(tmp_path, "b", "pass", ["a"])])
    assert not (tmp_path / "a.log").exists()   # nothing started


def test_notebook_fingerprint_covers_the_library_modules_notebooks_import():
    import ast

    imported = set()
    for nb in paths.NOTEBOOKS.glob("*.ipynb"):
        for cell in io.read_json(nb)["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            try:
                tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlvr_lowrank"):
                    imported |= {a.name for a in node.names} | {node.module.split(".")[-1]}
    assert not imported & {n.removesuffix(".py") for n in cli.NOT_NOTEBOOK_INPUTS}, imported
    assert {"claims", "spectra"} <= imported   # the scan sees the notebooks' imports
