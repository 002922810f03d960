"""Claim C2 and the rank-1 LoRA arm: the LoRA merge (B·A·scale, exactly rank 1, never counted twice), the C2
statistics (per-task recovery, paired deltas, verdicts) and C2's bad inputs."""
import numpy as np
import pandas as pd
import pytest
import torch

from rlvr_lowrank import claims, config, io, models, paths, rank1, tasks, train

ALL_TARGETS = list(rank1.TARGET_SUFFIXES)


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
    assert set(rank1.target_names(base_state)) <= set(eff)
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
    assert n_checked == len(rank1.target_names(base_state))  # 4 layers x 7 matrices


def test_effective_state_matches_peft_merge_and_never_counts_an_update_twice():
    model, _, _ = _lora_model(r=1, seed=1)
    eff = {k: v.clone() for k, v in models.effective_state_dict(model).items()}
    model.merge_adapter()  # merged in place: base_layer.weight now already holds W0 + B·A·scale
    eff_after_merge = models.effective_state_dict(model)
    merged = model.merge_and_unload().state_dict()  # peft, the reference implementation
    for name in rank1.target_names(merged):
        torch.testing.assert_close(eff[name], merged[name], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(eff_after_merge[name], merged[name], rtol=1e-5, atol=1e-6)


def test_lora_smoke_run_merges_a_rank_1_update_into_every_target_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "RUNS", tmp_path)
    run = train.train("smoke", "lora_r1", seed=0)
    base = io.load_tensors(paths.TINY_BASE / "model.safetensors")
    final = io.load_tensors(run / "final" / "model.safetensors")
    assert set(final) == set(base)  # merged under the base names: no lora_A/lora_B/base_layer keys
    targets = set(rank1.target_names(base))
    for name, w in final.items():
        if name in targets:
            s = torch.linalg.svdvals(w - base[name])
            assert s[0] > 0 and s[1] <= 1e-4 * s[0], name
        else:
            torch.testing.assert_close(w, base[name], rtol=0, atol=0)  # LoRA trains only the adapters
    ck = io.load_tensors(run / "checkpoints" / "step-00006" / "model.safetensors")
    torch.testing.assert_close(ck[sorted(targets)[0]], final[sorted(targets)[0]])
    assert len(io.read_jsonl(run / "evals.jsonl")) == 3


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


def _scores(rows):
    return pd.DataFrame(rows, columns=["seed", "model", "math_acc", "skill_acc"])


def test_per_task_recovery_known_values():
    scores = _scores([(0, "base", 0.2, 0.8), (0, "full", 0.8, 0.9), (0, "normmatch", 0.5, 0.8),
                      (1, "base", 0.0, 0.5), (1, "full", 0.5, 0.5), (1, "normmatch", 0.6, 0.7)])
    rec = claims.per_task_recovery(scores).set_index(["seed", "model", "task"])
    assert rec.loc[(0, "normmatch", "math"), "recovery"] == pytest.approx(0.5)
    assert rec.loc[(0, "normmatch", "skill"), "recovery"] == pytest.approx(0.0)
    assert rec.loc[(0, "full", "skill"), "gain"] == pytest.approx(0.1)
    assert rec.loc[(1, "normmatch", "math"), "recovery"] == pytest.approx(1.2)  # can exceed 1
    assert np.isnan(rec.loc[(1, "normmatch", "skill"), "recovery"])  # zero gain: nothing to recover
    assert rec.loc[(1, "base", "math"), "recovery"] == 0 and rec.loc[(1, "full", "math"), "recovery"] == 1
    with pytest.raises(ValueError, match=r"seed 0.*\['full'\]"):
        claims.per_task_recovery(scores[scores.model != "full"])


def test_paired_deltas_are_per_seed_differences():
    scores = _scores([(0, "base", 0.2, 0.8), (0, "full", 0.8, 0.9), (1, "base", 0.1, 0.6), (1, "full", 0.5, 0.5)])
    d = claims.paired_deltas(scores).set_index(["model", "axis", "measure"])
    assert d.loc[("full", "math", "acc"), "mean"] == pytest.approx(((0.8 - 0.2) + (0.5 - 0.1)) / 2)
    assert d.loc[("full", "skill", "acc"), "mean"] == pytest.approx(0.0)
    assert d.loc[("full", "skill", "acc"), "ci_lo"] == pytest.approx(-0.1)
    assert d.loc[("full", "skill", "acc"), "ci_hi"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="reference model 'base'"):
        claims.paired_deltas(scores[scores.model != "base"])


def test_c2_verdicts():
    keep = [0.95, 0.9, 1.0]
    v = claims.verdict_c2(keep, [0.2, 0.3, 0.25], [0.0, 0.01, -0.01])
    assert v["verdict"] == claims.HOLDS and v["loses"] == ["knowledge probe"]
    assert claims.verdict_c2(keep, [0.0, 0.01, 0.0], [0.01, 0.0, 0.02])["verdict"] == claims.FAILS  # nothing lost
    assert claims.verdict_c2([0.2, 0.3, 0.1], [0.2, 0.3, 0.25], [0, 0, 0])["verdict"] == claims.FAILS  # math lost
    assert claims.verdict_c2(keep[:2], [0.2, 0.3], [0, 0])["verdict"] == claims.INCONCLUSIVE  # too few seeds
    r2 = claims.verdict_c2(keep, [0, 0, 0], [0, 0, 0], keep, [0.1, 0.2, 0.0], [0.1, 0.15, 0.12])["reading2"]
    assert r2["verdict"] == claims.HOLDS
    r2 = claims.verdict_c2(keep, [0, 0, 0], [0, 0, 0], keep, [0.9, 1.0, 0.95], [0.1, 0.15, 0.12])["reading2"]
    assert r2["verdict"] == claims.FAILS  # the skill gain is kept too
    r2 = claims.verdict_c2(keep, [0, 0, 0], [0, 0, 0], keep, [0.1, 0.2, 0.0], [0.05, -0.05, 0.0])["reading2"]
    assert r2["verdict"] == claims.INCONCLUSIVE and "did not raise" in r2["why"]


def test_top_direction_cosines_known_angles():
    torch.manual_seed(0)
    base = {"model.layers.0.mlp.up_proj.weight": torch.randn(16, 8)}
    u = torch.nn.functional.normalize(torch.randn(16), dim=0)
    w = torch.nn.functional.normalize(torch.randn(16), dim=0)
    w = torch.nn.functional.normalize(w - (w @ u) * u, dim=0)  # orthogonal to u
    v = torch.nn.functional.normalize(torch.randn(8), dim=0)
    theta = 0.3
    u_rot = np.cos(theta) * u + np.sin(theta) * w
    name = "model.layers.0.mlp.up_proj.weight"
    a = {name: base[name] + 2.0 * torch.outer(u, v)}
    b = {name: base[name] - 0.5 * torch.outer(u_rot, v)}  # sign flip must not matter
    row = claims.top_direction_cosines(base, a, b).iloc[0]
    assert row["cos_u"] == pytest.approx(np.cos(theta), abs=1e-5)
    assert row["cos_v"] == pytest.approx(1.0, abs=1e-5)
    assert row["baseline_u"] == pytest.approx(np.sqrt(2 / (np.pi * 16)))


def test_c2_scores_refuses_a_probe_the_tokenizer_cannot_encode():
    base, tok = models.load_model(paths.TINY_BASE)
    bad = [tasks.Item("fact", "test", "F:café>", "teal", 0)]
    with pytest.raises(ValueError, match="cannot encode"):
        claims.c2_scores(base, tok, {"fact": bad})
