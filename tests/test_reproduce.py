"""Executing the pipeline: train-all trains missing runs once, refuses stale ones; timing records; fingerprints."""
import pytest

from rlvr_lowrank import fileio, layout, paths
from rlvr_lowrank.pipeline import readme, reproduce
from rlvr_lowrank.training import config, runs


def test_reproduce_refuses_an_unknown_profile():
    with pytest.raises(ValueError, match="unknown profile"):
        reproduce.reproduce("paper-xl")


@pytest.mark.slow
def test_train_all_trains_missing_runs_once_then_reuses_them(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setattr(paths, "RUNS", tmp_path)
    monkeypatch.setenv("RLVR_RUNS_DIR", str(tmp_path))  # the child processes write there too
    done = reproduce.train_all("smoke", processes=1, experiments=["full"])
    assert [r.name for r in done] == ["seed0"] and (done[0] / "DONE").exists()
    assert (tmp_path / "smoke" / "logs" / "full-seed0.log").exists()

    def no_training(*a, **k):
        raise AssertionError("a finished run must not be trained again")

    monkeypatch.setattr(subprocess, "Popen", no_training)
    assert reproduce.train_all("smoke", processes=2, experiments=["full"]) == done
    with pytest.raises(ValueError, match=r"unknown experiment\(s\) \['nope'\]"):
        reproduce.train_all("smoke", experiments=["nope"])


def test_write_timing_keeps_cold_and_warm_records(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    rec = dict(total_s=900.0, setup_s=60.0, pipeline_s=840.0, jobs_wall_s=830.0, runs_trained=21, runs_cached=0,
               notebooks_executed=8, notebooks_cached=0, processes=2, cpu_count=2)
    reproduce.write_timing("tiny", rec)
    reproduce.write_timing("tiny", {**rec, "total_s": 300.0, "runs_trained": 1, "runs_cached": 20})   # partial: neither
    reproduce.write_timing("tiny", {**rec, "total_s": 2.0, "runs_trained": 0, "runs_cached": 21,
                                    "notebooks_executed": 0, "notebooks_cached": 8})
    t = fileio.read_json(tmp_path / "tiny" / "timing.json")
    assert t["cold"]["total_s"] == 900.0 and t["warm"]["total_s"] == 2.0 and t["last"]["total_s"] == 2.0
    text = readme.timing_block()
    assert "**15.0 min**" in text and "21 GRPO runs" in text and "**2 s**" in text


def test_timing_file_is_not_an_input_of_the_claims_notebook(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    (tmp_path / "smoke").mkdir()
    fileio.write_json(tmp_path / "smoke" / "c0.json", {"x": 1})
    params = reproduce.checked_parameters("07_claims", "smoke")
    before = reproduce.fingerprint("07_claims", "smoke", params)
    reproduce.write_timing("smoke", dict(total_s=1.0, setup_s=0.0, pipeline_s=1.0, jobs_wall_s=1.0, runs_trained=0,
                                   runs_cached=1, notebooks_executed=0, notebooks_cached=1, processes=2, cpu_count=2))
    assert reproduce.fingerprint("07_claims", "smoke", params) == before
    fileio.write_json(tmp_path / "smoke" / "c0.json", {"x": 2})
    assert reproduce.fingerprint("07_claims", "smoke", params) != before


def test_notebook_fingerprint_covers_the_library_modules_notebooks_import():
    import ast

    imported = set()
    for nb in paths.NOTEBOOKS.glob("*.ipynb"):
        for cell in fileio.read_json(nb)["cells"]:
            if cell["cell_type"] != "code":
                continue
            src = "".join(cell["source"])
            try:
                tree = ast.parse("\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!"))))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlvr_lowrank"):
                    for a in node.names:
                        full = f"{node.module}.{a.name}"
                        imported.add(full if full in layout.modules() else node.module)
    assert all(layout.is_notebook_input(m) for m in imported), sorted(imported)
    # the scan sees the notebooks' imports
    assert {"rlvr_lowrank.claims.c2", "rlvr_lowrank.analysis.spectra", "rlvr_lowrank.figures.plots"} <= imported
    # and the pipeline package and the command lines are outside every notebook's fingerprint
    inputs = set(layout.notebook_input_files())
    assert layout.modules()["rlvr_lowrank.pipeline.reproduce"] not in inputs
    assert layout.modules()["rlvr_lowrank.claims.notebooks"] in inputs


@pytest.mark.slow
def test_train_all_refuses_a_run_made_with_another_config(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path)
    run = runs.run_dir("smoke", "full", 0)
    run.mkdir(parents=True)
    cfg = config.resolve("smoke", "full", 0)
    ident = {**runs.identity(cfg), "config": "0ld"}
    fileio.write_yaml(run / "config.yaml", {**cfg.to_dict(), "config_hash": "0ld", "identity": ident})
    fileio.write_json(run / "DONE", {"config_hash": "0ld", "steps": 6, "weights_sha256": "x"})
    with pytest.raises(runs.RunError, match=r"stale.*resolved config .*changed \(0ld ->"):
        reproduce.train_all("smoke", processes=1, experiments=["full"])
