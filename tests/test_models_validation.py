"""load_model refuses model directories that would load as something silently different."""
import json
import os
import shutil
import stat

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlvr_lowrank import models, paths


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "m"
    shutil.copytree(paths.TINY_BASE, d)
    return d


def _edit_weights(d, fn):
    tensors = load_file(str(d / "model.safetensors"))
    fn(tensors)
    save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})


def _edit_json(path, fn):
    obj = json.loads(path.read_text())
    fn(obj)
    path.write_text(json.dumps(obj))


def test_shipped_base_model_passes_every_check():
    model, tok = models.load_model(paths.TINY_BASE)
    assert len(tok) == model.get_input_embeddings().weight.shape[0]


@pytest.mark.parametrize("value,kind", [(float("nan"), "1 NaN"), (float("inf"), "1 Inf")])
def test_nan_or_inf_weight_is_refused_naming_the_tensor(model_dir, value, kind):
    name = "model.layers.1.mlp.up_proj.weight"
    _edit_weights(model_dir, lambda t: t[name].view(-1).__setitem__(7, value))
    with pytest.raises(models.ModelLoadError, match=rf"tensor '{name}' in .*model.safetensors has .*{kind}"):
        models.load_model(model_dir)


def test_config_with_fewer_layers_than_the_weights_is_refused_naming_tensors(model_dir):
    _edit_json(model_dir / "config.json", lambda c: c.update(num_hidden_layers=2))
    with pytest.raises(models.ModelLoadError, match=r"has no place for.*model\.layers\.[23]\..*fewer layers"):
        models.load_model(model_dir)


def test_config_with_more_layers_than_the_weights_is_refused_naming_tensors(model_dir):
    _edit_json(model_dir / "config.json", lambda c: c.update(num_hidden_layers=5))
    with pytest.raises(models.ModelLoadError, match=r"lacks .*model\.layers\.4\."):
        models.load_model(model_dir)


def test_extra_tensor_in_the_weights_is_refused_naming_it(model_dir):
    _edit_weights(model_dir, lambda t: t.update({"model.extra_probe.weight": torch.zeros(3, 3)}))
    with pytest.raises(models.ModelLoadError, match=r"model\.extra_probe\.weight"):
        models.load_model(model_dir)


def test_stored_lm_head_that_differs_from_the_tied_embedding_is_refused(model_dir):
    _edit_weights(model_dir, lambda t: t.update({"lm_head.weight": t["model.embed_tokens.weight"] + 1.0}))
    with pytest.raises(models.ModelLoadError, match="ties lm_head"):
        models.load_model(model_dir)


def test_tokenizer_with_a_removed_token_is_refused(model_dir):
    _edit_json(model_dir / "tokenizer.json", lambda t: t["model"]["vocab"].pop("q"))
    with pytest.raises(models.ModelLoadError, match=r"task character 'q' is unknown"):
        models.load_model(model_dir)


def test_tokenizer_with_swapped_ids_is_refused(model_dir):
    def swap(t):
        v = t["model"]["vocab"]
        v["a"], v["b"] = v["b"], v["a"]
    _edit_json(model_dir / "tokenizer.json", swap)
    with pytest.raises(models.ModelLoadError, match=r"not the character tokenizer.*'a': \d+ \(expected \d+\)"):
        models.load_model(model_dir)


def test_tokenizer_whose_ids_exceed_the_embedding_is_refused(model_dir):
    _edit_json(model_dir / "tokenizer.json", lambda t: t["model"]["vocab"].update(z=60))
    with pytest.raises(models.ModelLoadError, match=r"largest id 60.*does not belong"):
        models.load_model(model_dir)


def test_special_id_disagreeing_with_the_config_is_refused(model_dir):
    _edit_json(model_dir / "config.json", lambda c: c.update(pad_token_id=3))
    with pytest.raises(models.ModelLoadError, match=r"PAD id differs between tokenizer \(0\) and model config \(3\)"):
        models.load_model(model_dir)


def test_alphabet_round_trip_is_checked_for_any_tokenizer():
    tok = models.build_tokenizer()

    class Model:  # the minimum check_tokenizer_matches reads, with a vocabulary that is not the project's
        config = type("C", (), {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0})()

        def get_input_embeddings(self):
            return torch.nn.Embedding(64, 2)

    models.check_tokenizer_matches(Model(), tok, "x")
    with pytest.raises(models.ModelLoadError, match=r"task character 'É' is unknown"):
        models.check_tokenizer_matches(Model(), tok, "x", alphabet="abcÉ")


@pytest.mark.parametrize("name", ["tokenizer.json", "config.json", "tokenizer_config.json", "generation_config.json"])
def test_non_json_file_is_reported_by_name(model_dir, name):
    (model_dir / name).write_text("this is not JSON {")
    with pytest.raises(models.ModelLoadError, match=rf"{name} is not valid JSON"):
        models.load_model(model_dir)


def test_non_json_tokenizer_is_reported_by_load_tokenizer_too(model_dir):
    (model_dir / "tokenizer.json").write_text("")
    with pytest.raises(models.ModelLoadError, match=r"tokenizer\.json is not valid JSON"):
        models.load_tokenizer(model_dir)


def test_tokenizer_json_of_the_wrong_structure_names_the_directory(model_dir):
    (model_dir / "tokenizer.json").write_text('{"version": "1.0"}')
    with pytest.raises(models.ModelLoadError, match=r"cannot load the tokenizer in .*m \(tokenizer\.json"):
        models.load_tokenizer(model_dir)


def test_saved_model_directory_is_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        tok = models.build_tokenizer()
        models.save_model(models.build_tiny_model(tok), tok, tmp_path / "saved")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "saved").st_mode) == 0o755
