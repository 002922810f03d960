"""Notebook parameters fail loudly when misspelled; unknown profiles are refused."""
import shutil

import pytest

from rlvr_lowrank import cli, paths


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

    monkeypatch.setattr(subprocess, "call", no_training)
    assert cli.train_all("smoke", jobs=2, experiments=["full"]) == runs
    with pytest.raises(ValueError, match=r"unknown experiment\(s\) \['nope'\]"):
        cli.train_all("smoke", experiments=["nope"])
