"""Tokenizer round-trip, the shipped base model, and clear errors for bad model directories."""
import random
import shutil

import pytest
import torch

from rlvr_lowrank import fileio, models, paths
from rlvr_lowrank.training import config
from rlvr_lowrank.world import evaluate, tasks


@pytest.fixture(scope="module")
def base():
    return models.load_model(paths.TINY_BASE)


def test_tokenizer_round_trip_and_reload(tmp_path):
    tok = models.build_tokenizer()
    rng = random.Random(0)
    texts = ["".join(rng.choice(tasks.CHARSET) for _ in range(rng.randint(1, 60))) for _ in range(200)]
    for t in texts:
        ids = tok(t)["input_ids"]
        assert ids[0] == models.BOS_ID and len(ids) == len(t) + 1  # one token per character
        assert tok.decode(ids, skip_special_tokens=True) == t
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert [reloaded(t)["input_ids"] for t in texts] == [tok(t)["input_ids"] for t in texts]
    assert reloaded.eos_token_id == models.EOS_ID and reloaded.pad_token_id == models.PAD_ID


def test_unknown_characters_are_reported():
    tok = models.build_tokenizer()
    models.check_charset(tok, ["Q:12+34=", "F:bala>"])
    with pytest.raises(ValueError, match="cannot encode"):
        models.check_charset(tok, ["F:Éclair>"])


def test_shipped_base_model_matches_its_metrics(base):
    model, tok = base
    shipped = models.read_model_metrics()
    assert models.n_parameters(model) == shipped["n_parameters"]
    # Greedy decoding is deterministic: re-measure the whole math test split and the knowledge probe.
    math_acc = evaluate.greedy_accuracy(model, tok, tasks.load_items("math", "test")).accuracy
    fact_acc = evaluate.greedy_accuracy(model, tok, tasks.load_items("fact")).accuracy
    assert math_acc == pytest.approx(shipped["math_test_greedy"]["accuracy"], abs=0.02)
    assert fact_acc == pytest.approx(shipped["fact_greedy"]["accuracy"], abs=0.02)
    # Sampled pass@1 on a subset: within a binomial tolerance of the shipped full-split value.
    subset = tasks.load_items("math", "test")[::6]
    p1 = evaluate.sampled_pass_at_k(model, tok, subset, n_samples=8, ks=(1,), seed=1).pass_at_k[1]
    assert abs(p1 - shipped["math_test_sampled"]["pass_at_k"]["1"]) < 0.1


def test_missing_directory_names_the_fix(tmp_path):
    with pytest.raises(models.ModelLoadError, match="does not exist"):
        models.load_model(tmp_path / "nope")


def _copy_base(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(paths.TINY_BASE, d)
    return d


def test_corrupt_safetensors_names_the_file(tmp_path):
    d = _copy_base(tmp_path)
    (d / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(models.ModelLoadError, match="model.safetensors"):
        models.load_model(d)
    (d / "model.safetensors").unlink()
    with pytest.raises(models.ModelLoadError, match="safetensors only"):
        models.load_model(d)


def test_truncated_safetensors_is_refused(tmp_path):
    d = _copy_base(tmp_path)
    blob = (d / "model.safetensors").read_bytes()
    (d / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(models.ModelLoadError):
        models.load_model(d)


def test_wrong_shaped_weights_are_refused(tmp_path):
    d = _copy_base(tmp_path)
    tok = models.build_tokenizer()
    other = models.build_tiny_model(tok, hidden_size=64, intermediate_size=128)
    other.save_pretrained(tmp_path / "other")
    shutil.copy(tmp_path / "other" / "model.safetensors", d / "model.safetensors")
    with pytest.raises(models.ModelLoadError, match="do not match|lacks"):
        models.load_model(d)


def test_tokenizer_that_does_not_fit_the_model_is_refused(tmp_path, base):
    model, _ = base
    from transformers import AutoTokenizer

    d = _copy_base(tmp_path)
    tok = AutoTokenizer.from_pretrained(d)
    tok.add_tokens([f"<extra{i}>" for i in range(100)])
    tok.save_pretrained(d)
    with pytest.raises(models.ModelLoadError, match="does not belong"):
        models.load_model(d)


def test_unknown_profile_lists_the_available_ones():
    with pytest.raises(ValueError, match="available profiles: .*tiny"):
        config.load_profile("tinyy")
    assert config.load_profile("smoke")["model"] == "data/models/tiny-base"


def test_atomic_write_leaves_the_old_file_when_interrupted(tmp_path):
    target = tmp_path / "x.json"
    fileio.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert fileio.read_json(target) == {"a": 1}
    assert list(tmp_path.iterdir()) == [target]


def test_safetensors_roundtrip_and_corrupt_file(tmp_path):
    t = {"w": torch.randn(3, 4)}
    fileio.save_tensors(tmp_path / "t.safetensors", t)
    assert torch.equal(fileio.load_tensors(tmp_path / "t.safetensors")["w"], t["w"])
    (tmp_path / "bad.safetensors").write_bytes(b"nope")
    with pytest.raises(ValueError, match="bad.safetensors"):
        fileio.load_tensors(tmp_path / "bad.safetensors")
