"""The declared pipeline: notebook parameters come from the profile YAMLs and fail loudly when misspelled;
the smoke parameters are the notebooks' own defaults (nbval runs them as they are)."""
import ast

import papermill
import pytest

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.claims import notebooks
from rlvr_lowrank.pipeline import reproduce
from rlvr_lowrank.training import config


def _defaults(stem: str) -> dict:
    out = {}
    for name, spec in papermill.inspect_notebook(str(paths.NOTEBOOKS / f"{stem}.ipynb")).items():
        out[name] = ast.literal_eval(spec["default"])
    return out


def test_every_notebook_of_the_table_exists_and_every_notebook_is_in_the_table():
    on_disk = sorted(p.stem for p in paths.NOTEBOOKS.glob("*.ipynb"))
    assert on_disk == sorted(nb.stem for nb in notebooks.NOTEBOOKS)


@pytest.mark.parametrize("stem", [nb.stem for nb in notebooks.NOTEBOOKS
                                  if nb.reads or nb.stem in ("00_base_model", "07_claims")])
def test_smoke_parameters_are_the_notebook_defaults(stem):
    params = notebooks.parameters(stem, "smoke")
    defaults = _defaults(stem)
    assert {k: defaults[k] for k in params} == params


@pytest.mark.parametrize("profile", ["smoke", "tiny", "tiny-long", "smollm2", "paper-qwen2.5-math-1.5b"])
def test_every_profile_names_existing_parameters_and_experiments(profile):
    for stem in notebooks.stems(profile):
        reproduce.checked_parameters(stem, profile)
        for experiment in notebooks.experiments_read(stem, profile):
            assert experiment in config.load_profile(profile)["experiments"]


def test_tiny_reads_the_preregistered_arms():
    assert notebooks.parameters("02_reward_overfitting", "tiny") == {
        "PROFILE": "tiny", "SEEDS": [0, 1, 2, 3, 4], "FULL": "full", "PR1S": "pr1s_trunc_k10",
        "SWEEP": ["pr1s_trunc_k5", "pr1s_trunc_k20", "pr1s_normmatch_k10"], "NULL_ARM": "random_reward"}
    assert notebooks.parameters("04_heavy_tails", "tiny")["ARMS"] == ["full", "pr1s_trunc_k10"]
    assert notebooks.by_claim("C1").stem == "02_reward_overfitting"


def test_misspelled_parameter_is_an_error_not_a_warning(tmp_path, monkeypatch):
    prof = fileio.read_yaml(paths.CONFIGS / "smoke.yaml")
    prof["notebooks"]["00_base_model"]["N_MAHT"] = 600
    fileio.write_yaml(tmp_path / "smoke.yaml", prof)
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)
    with pytest.raises(config.ConfigError, match="N_MAHT"):
        reproduce.checked_parameters("00_base_model", "smoke")


def test_an_arm_naming_a_missing_experiment_is_refused(tmp_path, monkeypatch):
    prof = fileio.read_yaml(paths.CONFIGS / "smoke.yaml")
    prof["arms"]["pr1s"] = "pr1s_trunc_k99"
    fileio.write_yaml(tmp_path / "smoke.yaml", prof)
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)
    with pytest.raises(config.ConfigError, match=r"arms.pr1s names experiment\(s\) \['pr1s_trunc_k99'\]"):
        notebooks.parameters("02_reward_overfitting", "smoke")


def test_unknown_notebook_and_claim_are_named():
    with pytest.raises(ValueError, match="unknown notebook '09_nope'"):
        notebooks.notebook("09_nope")
    with pytest.raises(ValueError, match="no notebook decides claim 'C9'"):
        notebooks.by_claim("C9")


def test_a_profile_without_the_optional_arms_passes_their_empty_values():
    # smollm2 maps full, pr1s and the null arm: the sweep, LoRA and multi-task arms are left out, not refused
    assert set(notebooks.arms("smollm2")) == {"full", "pr1s", "null_arm"}
    assert notebooks.parameters("02_reward_overfitting", "smollm2")["SWEEP"] == []
    p3 = notebooks.parameters("03_knowledge_loss", "smollm2")
    assert p3["LORA"] is None and p3["MIX"] is None and p3["FULL"] == "full"
    assert notebooks.experiments_read("03_knowledge_loss", "smollm2") == ["full", "pr1s_trunc_k10"]
    assert set(notebooks.OPTIONAL_ARMS) == set(notebooks.ARM_PARAMETERS) - {"full", "pr1s"}


def test_a_missing_deciding_arm_is_still_refused(tmp_path, monkeypatch):
    prof = fileio.read_yaml(paths.CONFIGS / "smollm2.yaml")
    del prof["arms"]["pr1s"]
    fileio.write_yaml(tmp_path / "smollm2.yaml", prof)
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)
    with pytest.raises(config.ConfigError, match="reads arm 'pr1s'"):
        notebooks.experiments_read("02_reward_overfitting", "smollm2")
