"""End-to-end fault scenarios on the smoke profile: a run killed with SIGKILL resumes (and skips a
half-written checkpoint), a replaced base model or a changed profile never reuses old runs silently."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.pipeline import reproduce
from rlvr_lowrank.training import config, runs, train

pytestmark = pytest.mark.slow


def _train_cmd(experiment="pr1s_trunc_k10"):
    return [sys.executable, "-m", "rlvr_lowrank", "train", "--profile", "smoke", "--experiment", experiment,
            "--seed", "0"]


def test_kill_9_then_a_half_written_checkpoint_still_resumes_to_the_same_weights(tmp_path):
    env = {**os.environ, "RLVR_RUNS_DIR": str(tmp_path / "killed"), "OMP_NUM_THREADS": "1"}
    run = tmp_path / "killed" / "smoke" / "pr1s_trunc_k10" / "seed0"
    proc = subprocess.Popen(_train_cmd(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (run / "trainer" / "checkpoint-3" / "trainer_state.json").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not runs.is_done(run)
    # a crash during TRL's next save: checkpoint-5 exists but has no trainer_state.json
    partial = run / "trainer" / "checkpoint-5"
    shutil.copytree(run / "trainer" / "checkpoint-3", partial, dirs_exist_ok=True)
    (partial / "trainer_state.json").unlink()
    out = subprocess.run(_train_cmd(), env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "checkpoint-5 is incomplete" in out.stderr and "trainer_state.json" in out.stderr
    assert runs.is_done(run)
    assert [r["step"] for r in fileio.read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    # the same run without interruption ends with bit-identical weights
    env_ref = {**env, "RLVR_RUNS_DIR": str(tmp_path / "reference")}
    subprocess.run(_train_cmd(), env=env_ref, check=True, capture_output=True, timeout=600)
    ref = tmp_path / "reference" / "smoke" / "pr1s_trunc_k10" / "seed0"
    assert fileio.read_json(run / "DONE")["weights_sha256"] == fileio.read_json(ref / "DONE")["weights_sha256"]


@pytest.fixture
def own_base(tmp_path, monkeypatch):
    """A smoke-like profile whose base model is a copy the test may replace; runs under tmp_path."""
    base = tmp_path / "base"
    shutil.copytree(paths.TINY_BASE, base)
    configs = tmp_path / "configs"
    configs.mkdir()
    prof = fileio.read_yaml(paths.CONFIGS / "smoke.yaml")
    prof["model"] = str(base)
    fileio.write_yaml(configs / "smoke.yaml", prof)
    monkeypatch.setattr(paths, "CONFIGS", configs)
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")
    monkeypatch.setenv("RLVR_RUNS_DIR", str(tmp_path / "runs"))
    return base, configs / "smoke.yaml"


def _finished_run(experiment="full"):
    """A finished run directory as train writes it (header, DONE), without spending a training run."""
    cfg = config.resolve("smoke", experiment, 0)
    run = runs.run_dir("smoke", experiment, 0)
    run.mkdir(parents=True)
    ident = runs.write_header(run, cfg)
    fileio.write_json(run / "DONE", {"run_hash": runs.run_hash(ident), "config_hash": cfg.hash, "steps": 6,
                                 "weights_sha256": "0" * 64})
    return run


def test_a_replaced_base_model_is_named_and_never_reused(own_base):
    base, _ = own_base
    run = _finished_run()
    assert runs.require_run("smoke", "full", 0) == run
    weights = fileio.load_tensors(base / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 1e-3   # "pretrain again": same path, other weights
    fileio.save_tensors(base / "model.safetensors", weights, metadata={"format": "pt"})
    for call in (lambda: runs.require_run("smoke", "full", 0), lambda: train.train("smoke", "full", 0),
                 lambda: reproduce.train_all("smoke", processes=1, experiments=["full"])):
        with pytest.raises(runs.RunError, match="base model's files changed"):
            call()


def test_a_changed_profile_is_refused_then_replaced_on_request(own_base):
    _, profile_yaml = own_base
    run = _finished_run()
    prof = fileio.read_yaml(profile_yaml)
    prof["train"]["learning_rate"] = 1e-4
    fileio.write_yaml(profile_yaml, prof)
    with pytest.raises(runs.RunError, match="resolved config .* changed"):
        reproduce.train_all("smoke", processes=1, experiments=["full"])
    with pytest.raises(runs.RunError, match="resolved config .* changed"):
        runs.require_run("smoke", "full", 0)
    todo, cached = reproduce.training_jobs("smoke", ["full"], replace_stale=True)
    assert [j.name for j in todo] == ["train full seed 0"] and cached == 0
    assert not run.exists() and list(run.parent.glob("seed0.stale-*"))   # moved aside, not deleted


def test_a_hand_edited_config_yaml_is_not_reused(own_base):
    run = _finished_run()
    cfg = fileio.read_yaml(run / "config.yaml")
    cfg["train"]["learning_rate"] = 1e-3   # the identity lines kept as they were
    fileio.write_yaml(run / "config.yaml", cfg)
    with pytest.raises(runs.RunError, match=r"edited after the run was made \(keys \['train'\]"):
        runs.require_run("smoke", "full", 0)


def test_an_empty_done_is_not_done(own_base):
    run = _finished_run()
    (run / "DONE").write_text("")
    with pytest.raises(runs.RunError, match="empty"):
        runs.require_run("smoke", "full", 0)


def test_editing_plotting_code_keeps_the_runs(own_base, monkeypatch):
    _finished_run()
    before = runs.identity(config.resolve("smoke", "full", 0))
    plots = paths.ROOT / "lib" / "rlvr_lowrank" / "figures" / "plots.py"
    original = plots.read_bytes()
    try:
        plots.write_bytes(original + b"\n# an edit that changes no result\n")
        assert runs.identity(config.resolve("smoke", "full", 0)) == before
        runs.require_run("smoke", "full", 0)
    finally:
        plots.write_bytes(original)
    callbacks_py = paths.ROOT / "lib" / "rlvr_lowrank" / "training" / "pr1s.py"
    original = callbacks_py.read_bytes()
    try:
        callbacks_py.write_bytes(original + b"\n# an edit of training code\n")
        with pytest.raises(runs.RunError, match="training code .* changed"):
            runs.require_run("smoke", "full", 0)
    finally:
        callbacks_py.write_bytes(original)
