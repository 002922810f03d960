"""The rank-1 LoRA arm: merge = B·A·scale, exactly rank 1, never counted twice; bad LoRA settings
refused. (C2's statistics are tested in tests/test_claims_c2.py.)"""
import pytest
import torch

from rlvr_lowrank import fileio, models, paths
from rlvr_lowrank.analysis import targets
from rlvr_lowrank.training import config, train

ALL_TARGETS = list(targets.TARGET_SUFFIXES)


def _lora_model(r=1, alpha=32, seed=0):
    from peft import LoraConfig, get_peft_model

    base, tok = models.load_model(paths.TINY_BASE)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=ALL_TARGETS))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # peft initialises B = 0 (a zero update); give every adapter a non-zero one
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_A" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model, base_state, tok


def test_lora_update_is_B_A_scale_and_rank_1():
    model, base_state, _ = _lora_model(r=1, alpha=32)
    eff = models.effective_state_dict(model)
    assert set(targets.target_names(base_state)) <= set(eff)
    n_checked = 0
    for name, module in model.get_base_model().named_modules():
        if not hasattr(module, "lora_A"):
            continue
        A, B = module.lora_A["default"].weight, module.lora_B["default"].weight
        expected = (B @ A) * (32 / 1)  # scale = lora_alpha / r
        dW = eff[f"{name}.weight"] - base_state[f"{name}.weight"]
        torch.testing.assert_close(dW, expected, rtol=1e-5, atol=1e-6)
        s = torch.linalg.svdvals(dW)
        assert s[1] <= 1e-5 * s[0], name
        n_checked += 1
    assert n_checked == len(targets.target_names(base_state))  # 4 layers x 7 matrices


def test_effective_state_matches_peft_merge_and_never_counts_an_update_twice():
    model, _, _ = _lora_model(r=1, seed=1)
    eff = {k: v.clone() for k, v in models.effective_state_dict(model).items()}
    model.merge_adapter()  # merged in place: base_layer.weight now already holds W0 + B·A·scale
    eff_after_merge = models.effective_state_dict(model)
    merged = model.merge_and_unload().state_dict()  # peft, the reference implementation
    for name in targets.target_names(merged):
        torch.testing.assert_close(eff[name], merged[name], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(eff_after_merge[name], merged[name], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_lora_smoke_run_merges_a_rank_1_update_into_every_target_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path)
    run = train.train("smoke", "lora_r1", seed=0)
    base = fileio.load_tensors(paths.TINY_BASE / "model.safetensors")
    final = fileio.load_tensors(run / "final" / "model.safetensors")
    assert set(final) == set(base)  # merged under the base names: no lora_A/lora_B/base_layer keys
    target_set = set(targets.target_names(base))
    for name, w in final.items():
        if name in target_set:
            s = torch.linalg.svdvals(w - base[name])
            assert s[0] > 0 and s[1] <= 1e-4 * s[0], name
        else:
            torch.testing.assert_close(w, base[name], rtol=0, atol=0)  # LoRA trains only the adapters
    ck = fileio.load_tensors(run / "checkpoints" / "step-00006" / "model.safetensors")
    torch.testing.assert_close(ck[sorted(target_set)[0]], final[sorted(target_set)[0]])
    assert len(fileio.read_jsonl(run / "evals.jsonl")) == 3


def test_bad_lora_settings_are_refused():
    base, _ = models.load_model(paths.TINY_BASE)
    with pytest.raises(ValueError, match=r"\['qkv_proj'\] match no Linear module.*q_proj"):
        train.check_lora_targets(base, config.Lora(r=1, lora_alpha=32, target_modules=["q_proj", "qkv_proj"]))
    with pytest.raises(ValueError, match="must list"):
        config.resolve("smoke", "lora_r1", 0, {"lora": {"target_modules": []}})
    with pytest.raises(ValueError, match="cannot be combined"):
        config.resolve("smoke", "lora_r1", 0, {"pr1s": {"every": 2}})
    with pytest.raises(ValueError, match="no verifier"):
        config.resolve("smoke", "full", 0, {"tasks": ["math", "poetry"]})
