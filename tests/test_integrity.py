"""Integrity checks on real trainer checkpoints, DONE markers and content fingerprints."""
import json
import shutil
import sys
from pathlib import Path

import pytest

from rlvr_lowrank import layout, paths
from rlvr_lowrank.training import integrity


@pytest.fixture(scope="module")
def real_trainer_dir(tmp_path_factory):
    """checkpoint-1 and checkpoint-2 written by a real 2-step TRL GRPOTrainer run on the tiny model."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank import models
    from rlvr_lowrank.world import rewards, tasks

    out = tmp_path_factory.mktemp("trainer")
    torch.manual_seed(0)
    model, tok = models.load_model(paths.TINY_BASE)
    items = tasks.load_items("math", "rl_train")[:4]
    ds = Dataset.from_list([{"prompt": it.prompt, "answer": it.answer} for it in items])
    args = GRPOConfig(output_dir=str(out), max_steps=2, per_device_train_batch_size=4, num_generations=4,
                      max_completion_length=16, learning_rate=5e-5, use_cpu=True, bf16=False, report_to="none",
                      logging_steps=1, save_strategy="steps", save_steps=1, disable_tqdm=True, beta=0.0, seed=0)
    GRPOTrainer(model=model, reward_funcs=rewards.math_reward, args=args, train_dataset=ds,
                processing_class=tok).train()
    assert (out / "checkpoint-1").is_dir() and (out / "checkpoint-2").is_dir()
    return out


@pytest.fixture
def trainer_dir(real_trainer_dir, tmp_path):
    d = tmp_path / "trainer"
    shutil.copytree(real_trainer_dir, d)
    return d


def _truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])


def test_real_trl_checkpoints_are_complete(trainer_dir):
    assert integrity.checkpoint_problem(trainer_dir / "checkpoint-1") is None
    assert integrity.checkpoint_problem(trainer_dir / "checkpoint-2") is None
    assert integrity.newest_complete_checkpoint(trainer_dir, log=pytest.fail) == trainer_dir / "checkpoint-2"


@pytest.mark.parametrize("damage,reason", [
    (lambda d: (d / "trainer_state.json").unlink(), "trainer_state.json is missing"),
    (lambda d: (d / "trainer_state.json").write_text('{"global_step": 2, "log_hi'),
     "trainer_state.json is not valid JSON"),
    (lambda d: (d / "trainer_state.json").write_text('{"global_step": 1}'), "global_step 1, the directory name says 2"),
    (lambda d: _truncate(d / "model.safetensors", -100), "model.safetensors is .* bytes but its header describes"),
    (lambda d: _truncate(d / "model.safetensors", 1000), "model.safetensors is truncated"),
    (lambda d: _truncate(d / "model.safetensors", 4), "shorter than a safetensors header"),
    (lambda d: (d / "model.safetensors").write_bytes(b"\x10" + b"\0" * 7 + b"not a json header"),
     "not a readable safetensors"),
    (lambda d: (d / "model.safetensors").unlink(), "no model weights"),
    (lambda d: (d / "optimizer.pt").unlink(), "optimizer.pt is missing"),
    (lambda d: (d / "optimizer.pt").write_bytes(b""), "optimizer.pt is empty"),
    (lambda d: _truncate(d / "optimizer.pt", -10), "optimizer.pt is not a complete torch.save archive"),
    (lambda d: (d / "scheduler.pt").unlink(), "scheduler.pt is missing"),
    (lambda d: (d / "rng_state.pth").unlink(), "rng_state.pth is missing"),
])
def test_damaged_checkpoint_is_reported_with_the_reason(trainer_dir, damage, reason):
    ckpt = trainer_dir / "checkpoint-2"
    damage(ckpt)
    problem = integrity.checkpoint_problem(ckpt)
    assert problem is not None and __import__("re").search(reason, problem), problem


def test_damaged_newest_checkpoint_is_moved_aside_and_the_older_one_chosen(trainer_dir):
    (trainer_dir / "checkpoint-2" / "trainer_state.json").unlink()
    messages = []
    chosen = integrity.newest_complete_checkpoint(trainer_dir, log=messages.append)
    assert chosen == trainer_dir / "checkpoint-1"
    aside = [p for p in trainer_dir.iterdir() if p.name.startswith("incomplete-checkpoint-2-")]
    assert len(aside) == 1 and not (trainer_dir / "checkpoint-2").exists()
    assert (aside[0] / "model.safetensors").is_file()  # moved, not deleted
    assert len(messages) == 1 and "checkpoint-2" in messages[0] and "trainer_state.json is missing" in messages[0]
    # a second look finds the same checkpoint and moves nothing (no loop, no repeated messages)
    assert integrity.newest_complete_checkpoint(trainer_dir, log=messages.append) == chosen and len(messages) == 1
    # transformers' own resume logic ignores the moved-aside directory as well
    from transformers.trainer_utils import get_last_checkpoint

    assert Path(get_last_checkpoint(str(trainer_dir))) == chosen
    assert sorted(p.name for p in trainer_dir.glob("checkpoint-*")) == ["checkpoint-1"]


def test_no_complete_checkpoint_gives_none_and_moves_all_damaged_aside(trainer_dir):
    _truncate(trainer_dir / "checkpoint-1" / "model.safetensors", 2_000_000)
    (trainer_dir / "checkpoint-2" / "optimizer.pt").unlink()
    messages = []
    assert integrity.newest_complete_checkpoint(trainer_dir, log=messages.append) is None
    assert len(messages) == 2 and not list(trainer_dir.glob("checkpoint-*"))
    assert len(list(trainer_dir.glob("incomplete-checkpoint-*"))) == 2


def test_missing_trainer_dir_has_no_checkpoint(tmp_path):
    assert integrity.newest_complete_checkpoint(tmp_path / "absent") is None


def test_lora_adapter_checkpoint_is_recognised(trainer_dir):
    ckpt = trainer_dir / "checkpoint-2"
    (ckpt / "model.safetensors").rename(ckpt / "adapter_model.safetensors")
    assert integrity.checkpoint_problem(ckpt) == "adapter_config.json is missing or not valid JSON (FileNotFoundError)"
    (ckpt / "adapter_config.json").write_text('{"r": 8}')
    assert integrity.checkpoint_problem(ckpt) is None


# --- DONE markers --------------------------------------------------------------------------------

GOOD_DONE = {"config_hash": "abc123", "steps": 6, "weights_sha256": "f" * 64, "seconds": 1.0, "processes": 1}


@pytest.mark.parametrize("text,reason", [
    ("", "is empty"), ("  \n", "is empty"), ('{"config_hash": "abc", "st', "not valid JSON"), ("[1, 2]", "JSON list"),
    ('{"config_hash": "abc", "steps": 6}', "lacks the key"), (json.dumps({**GOOD_DONE, "steps": "6"}), "steps='6'"),
])
def test_empty_or_torn_done_marker_is_not_done(tmp_path, text, reason):
    (tmp_path / "DONE").write_text(text)
    assert integrity.read_done(tmp_path / "DONE") is None
    assert reason in integrity.done_problem(tmp_path / "DONE")


def test_complete_done_marker_is_read(tmp_path):
    (tmp_path / "DONE").write_text(json.dumps(GOOD_DONE))
    assert integrity.read_done(tmp_path / "DONE") == GOOD_DONE and integrity.done_problem(tmp_path / "DONE") is None
    assert integrity.read_done(tmp_path / "absent") is None


# --- fingerprints --------------------------------------------------------------------------------

def test_model_fingerprint_follows_content_not_location_or_docs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(paths.TINY_BASE, a)
    shutil.copytree(paths.TINY_BASE, b)
    fp = integrity.directory_fingerprint(a)
    assert len(fp) == 64 and fp == integrity.directory_fingerprint(b)
    (b / "MODEL_CARD.md").write_text("edited")  # not read by loading
    (b / "metrics.json").write_text("{}")
    assert integrity.directory_fingerprint(b) == fp
    w = bytearray((b / "model.safetensors").read_bytes())
    w[-3] ^= 1  # one bit of one weight, past the first 1 MiB chunk
    (b / "model.safetensors").write_bytes(bytes(w))
    assert integrity.directory_fingerprint(b) != fp
    shutil.copy(a / "model.safetensors", b / "model.safetensors")
    assert integrity.directory_fingerprint(b) == fp
    (b / "tokenizer.json").write_text((a / "tokenizer.json").read_text().replace('"q"', '"Q2"'))
    assert integrity.directory_fingerprint(b) != fp


def test_model_fingerprint_refuses_a_directory_without_weights(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        integrity.directory_fingerprint(tmp_path / "absent")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="holds no weights"):
        integrity.directory_fingerprint(tmp_path)


def test_files_fingerprint_follows_content_not_order_or_directory(tmp_path):
    src = sorted(paths.TASKS_DIR.glob("*.jsonl"))
    assert len(src) >= 3
    fp = integrity.files_fingerprint(src)
    assert fp == integrity.files_fingerprint(reversed(src))
    copies = []
    for p in src:
        shutil.copy(p, tmp_path / p.name)
        copies.append(tmp_path / p.name)
    assert integrity.files_fingerprint(copies) == fp
    copies[0].write_text(copies[0].read_text().replace('"answer": "', '"answer": "1', 1))
    assert integrity.files_fingerprint(copies) != fp
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        integrity.files_fingerprint([tmp_path / "nope.jsonl"])
    (tmp_path / "sub").mkdir()
    shutil.copy(src[0], tmp_path / "sub" / src[0].name)
    with pytest.raises(ValueError, match="several files named"):
        integrity.files_fingerprint([src[0], tmp_path / "sub" / src[0].name])


def test_code_fingerprint_changes_with_the_source(tmp_path, monkeypatch):
    pkg = tmp_path / "fpdemo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "step.py").write_text("LR = 1e-5\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    fp = integrity.code_fingerprint(["fpdemo.step"])
    assert fp == integrity.code_fingerprint(["fpdemo.step"])
    (pkg / "step.py").write_text("LR = 2e-5\n")
    assert integrity.code_fingerprint(["fpdemo.step"]) != fp
    assert "fpdemo.step" not in sys.modules  # found, never imported
    with pytest.raises(ModuleNotFoundError, match="fpdemo.nothing"):
        integrity.code_fingerprint(["fpdemo.nothing"])


def test_code_fingerprint_of_the_result_modules():
    fp = integrity.code_fingerprint()
    assert fp == integrity.code_fingerprint(layout.result_modules())
    assert fp != integrity.code_fingerprint([m for m in layout.result_modules() if m != "rlvr_lowrank.world.rewards"])


def test_result_modules_are_what_training_imports():
    result = set(layout.result_modules())
    # what a training run executes: the trainer, the verifiers, the models, PR1S's algebra, the packages' __init__
    assert {"rlvr_lowrank.training.train", "rlvr_lowrank.world.rewards", "rlvr_lowrank.world.tasks",
            "rlvr_lowrank.models", "rlvr_lowrank.models.loading", "rlvr_lowrank.analysis.rank1",
            "rlvr_lowrank.training.pr1s", "rlvr_lowrank.training.precision", "rlvr_lowrank"} <= result
    # what only reads finished runs or schedules them
    for outside in ("rlvr_lowrank.claims", "rlvr_lowrank.pipeline.reproduce", "rlvr_lowrank.figures.plots",
                    "rlvr_lowrank.checkpoints.readers", "rlvr_lowrank.cli", "rlvr_lowrank.analysis.dynamics"):
        assert not any(m == outside or m.startswith(outside + ".") for m in result), outside
    assert result <= set(layout.modules())


def test_the_import_scan_resolves_relative_imports_of_modules_and_packages():
    assert "rlvr_lowrank.world.tasks" in layout.imports("rlvr_lowrank.world.rewards")
    assert "rlvr_lowrank.models" in layout.imports("rlvr_lowrank.training.runs")   # a package (its __init__)
    assert "rlvr_lowrank.analysis.targets" in layout.imports("rlvr_lowrank.checkpoints.opening")
    # function-level imports count for the closure, not for the module-level graph
    assert "rlvr_lowrank.training.train" in layout.imports("rlvr_lowrank.pipeline.reproduce")
    assert "rlvr_lowrank.training.train" not in layout.imports("rlvr_lowrank.pipeline.reproduce",
                                                               module_level_only=True)
