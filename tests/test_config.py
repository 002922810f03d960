"""Typed experiment configs: defaults in one place, unknown keys refused with the valid ones, CLI values
checked before anything is written."""
import subprocess
import sys

import pytest

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.training import config, runs


def _profile(tmp_path, monkeypatch, edit):
    prof = fileio.read_yaml(paths.CONFIGS / "smoke.yaml")
    edit(prof)
    fileio.write_yaml(tmp_path / "smoke.yaml", prof)
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)


def test_resolved_config_has_every_default_once():
    cfg = config.resolve("tiny", "pr1s_trunc_k10", 0)
    assert cfg.pr1s == config.Pr1s(every=10, variant="trunc", optimizer_state="keep")
    assert cfg.trajectory == config.Trajectory(every=5, k=2, factor_dtype="float16")
    assert cfg.eval.every == 15 and cfg.rl_train_size == 40 and cfg.lora is None
    # config.yaml round trip
    assert config.from_dict(fileio.yaml.safe_load(fileio.yaml.safe_dump(cfg.to_dict()))) == cfg


def test_misspelled_profile_keys_are_refused_with_the_valid_ones(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, lambda p: p.update(checkpoint_evry=3))
    with pytest.raises(config.ConfigError,
                       match=r"unknown key\(s\) \['checkpoint_evry'\]; valid keys: .*checkpoint_every"):
        config.resolve("smoke", "full", 0)


def test_misspelled_experiment_section_is_refused(tmp_path, monkeypatch):
    _profile(tmp_path, monkeypatch, lambda p: p["experiments"].update(bad={"trian": {"learning_rate": 1e-4}}))
    with pytest.raises(config.ConfigError, match=r"experiments.bad: unknown key\(s\) \['trian'\]"):
        config.load_profile("smoke")


def test_misspelled_section_field_is_refused():
    with pytest.raises(config.ConfigError, match=r"pr1s: unknown key\(s\) \['evry'\]; valid keys: every, variant"):
        config.resolve("smoke", "full", 0, {"pr1s": {"evry": 2}})
    with pytest.raises(config.ConfigError, match="trajectory: unknown key"):
        config.resolve("smoke", "full", 0, {"trajectory": {"kk": 2}})


@pytest.mark.parametrize("seed", [-1, 2**31, 1.5, True, "0"])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(config.ConfigError, match="seed must be an integer"):
        config.resolve("smoke", "full", seed)


@pytest.mark.parametrize("name", ["../configs/smoke", "/etc/passwd", ".hidden", "smoke/x"])
def test_a_profile_must_be_a_name_not_a_path(name):
    with pytest.raises(config.ConfigError, match="not a path"):
        config.load_profile(name)


def test_cli_refuses_a_negative_seed_before_writing_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "rlvr_lowrank", "train", "--profile", "smoke", "--seed", "-1"],
                         capture_output=True, text=True,
                         env={**__import__("os").environ, "RLVR_RUNS_DIR": str(tmp_path)})
    assert out.returncode != 0 and "seed must be an integer" in out.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("text", ["", "[1, 2", "just a string"])
def test_an_empty_or_bad_run_config_is_a_clear_error(tmp_path, text):
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises((runs.RunError, ValueError), match="config.yaml"):
        runs.read_config(tmp_path)


def test_an_experiment_may_have_its_own_seeds_without_changing_its_config(tmp_path, monkeypatch):
    before = config.resolve("smoke", "mix_full", 0)
    _profile(tmp_path, monkeypatch, lambda p: p["experiments"]["mix_full"].update(seeds=[0, 7]))
    assert config.seeds_of("smoke", "mix_full") == [0, 7] and config.seeds_of("smoke", "full") == [0]
    assert config.resolve("smoke", "mix_full", 0).hash == before.hash


def test_a_run_config_reads_back_typed_with_its_header(tmp_path):
    """claims.run_config.typed_config: the config.yaml a run writes (resolved config + config_hash, identity,
    run_hash) reads back as the same Experiment; an unknown key is an error naming it."""
    from rlvr_lowrank.claims import run_config

    cfg = config.resolve("smoke", "pr1s_trunc_k10", 0)
    runs.write_header(tmp_path, cfg)
    back = run_config.typed_config(tmp_path)
    assert back == cfg and back.pr1s.every == cfg.pr1s.every > 0
    stored = fileio.read_yaml(tmp_path / "config.yaml")
    fileio.write_yaml(tmp_path / "config.yaml", {**stored, "pr1s_every": 3})
    with pytest.raises(config.ConfigError, match="pr1s_every"):
        run_config.typed_config(tmp_path)
