"""analyze / substitute / export on checkpoint directories (the checkpoints package and its command lines).

Known answers come from planted updates (planted.write_planted_rl: ΔW = s·a bᵀ + noise on every target),
the substitution is checked against a re-implementation of AlphaRL's eval/svd.py + eval/upd_rank.py procedure
(both models loaded whole, full SVD, W_base + ‖ΔW‖_F u1 v1ᵀ on every 2-D self_attn/mlp weight, the rest at
base), and every written directory is reloaded with AutoModelForCausalLM.from_pretrained.
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rlvr_lowrank import paths  # noqa: E402
from rlvr_lowrank.analysis.targets import is_target  # noqa: E402
from rlvr_lowrank.checkpoints import foreign, opening, planted, readers, rounding, substitute, writer  # noqa: E402
from rlvr_lowrank.checkpoints import pair_analysis as pa  # noqa: E402
from rlvr_lowrank.cli import main  # noqa: E402

BASE = paths.TINY_BASE
SHARD = 200_000  # bytes: the tiny model (~4 MB in bf16) becomes a dozen shards


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpts")
    planted.write_planted_rl(BASE, d / "rl32", scale=0.05, noise=0.0)                       # exact rank 1, fp32
    planted.write_planted_rl(BASE, d / "rl32n", scale=0.05, noise=0.01)                     # rank 1 + noise, fp32
    planted.write_planted_rl(BASE, d / "rl32half", scale=0.025, noise=0.0)                  # same direction, half
    writer.export(BASE, d / "base16", dtype="bf16", max_shard_bytes=SHARD)                 # sharded bf16 base
    planted.write_planted_rl(d / "base16", d / "rl16", scale=0.05, noise=0.005, max_shard_bytes=SHARD)
    return d


def _load(d):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(d))


# ---------------------------------------------------------------------------------------------- analyze

def test_analyze_recovers_planted_rank1(work, tmp_path):
    res = pa.analyze(BASE, [work / "rl32"], tmp_path / "an", esd="none", quiet=True, figures=False)
    base = opening.open_checkpoint(BASE)
    assert res["n_matrices"] == 28  # 4 layers x 7 types
    for m in res["matrices"]:
        c = m["checkpoints"][0]
        fro_w = float(torch.linalg.vector_norm(base.get(m["name"]).float()))
        assert c["fro"] == pytest.approx(0.05 * fro_w, rel=1e-4)
        assert c["sigma"][0] == pytest.approx(0.05 * fro_w, rel=1e-4)
        assert c["e1"] == pytest.approx(1.0, abs=1e-4)
        assert c["stable_rank"] == pytest.approx(1.0, abs=1e-4)
        assert c["sigma"][1] < 1e-3 * c["sigma"][0]
    assert res["summary"][0]["e1_pooled"] == pytest.approx(1.0, abs=1e-4)


def test_analyze_noise_share_and_heavy_tails(work, tmp_path):
    res = pa.analyze(BASE, [work / "rl32n"], tmp_path / "an", quiet=True)
    for m in res["matrices"]:
        e1 = m["checkpoints"][0]["e1"]
        # expected 0.05² / (0.05² + 0.01²) = 0.9615, plus the noise's own top direction (<= ~2% here)
        assert 0.955 < e1 < 0.985, (m["name"], e1)
        sp = m["spectra"]
        assert set(sp) == {"base", "rl", "rl_shuffled", "delta", "delta_shuffled"}
        assert all(math.isfinite(sp[k]["alpha"]) or not sp[k]["reliable"] for k in sp)
    out = tmp_path / "an"
    assert (out / "analysis.json").exists() and "AlphaRL ratio" in (out / "analysis.md").read_text()
    assert {p.name for p in (out / "figures").glob("*.png")} == {"e1_heatmap.png", "alpha_base_vs_rl.png",
                                                                 "delta_spectrum.png"}


def test_analyze_series_alignment(work, tmp_path):
    res = pa.analyze(BASE, [work / "rl32half", work / "rl32"], tmp_path / "an", esd="none", quiet=True)
    for m in res["matrices"]:
        a = m["alignment"]
        assert a["v_cos_final"][0] == pytest.approx(1.0, abs=1e-4)  # same planted direction at both steps
        assert a["u_cos_prev"][1] == pytest.approx(1.0, abs=1e-4)
        assert a["v_signed_cos_final"][0] == pytest.approx(1.0, abs=1e-4)  # sign-aligned trajectory
        assert a["random_baseline_v"] < 0.2
    from safetensors.torch import load_file

    traj = load_file(str(tmp_path / "an" / "trajectory.safetensors"))
    assert traj[res["matrices"][0]["name"] + ".v1"].shape[0] == 2
    assert (tmp_path / "an" / "figures" / "alignment.png").exists()


def test_analyze_sharded_bf16_reports_rounding_floor(work, tmp_path):
    res = pa.analyze(work / "base16", [work / "rl16"], tmp_path / "an", esd="none", quiet=True, figures=False)
    for m in res["matrices"]:
        c = m["checkpoints"][0]
        # the planted update is ~16x above the bf16 floor of the base; e1 stays near 0.05²/(0.05²+0.005²)
        assert 5 < c["noise_ratio"] < 100 and not c["at_noise"]
        assert c["e1"] > 0.95
    assert res["dtypes"]["rl"] == [["torch.bfloat16"]]


def test_rounding_floor_is_the_expected_rounding_norm():
    W = torch.ones(64, 64)  # every entry in [1, 2): the bf16 step is 2^-7
    assert rounding.rounding_floor(W, torch.bfloat16) == pytest.approx(math.sqrt(64 * 64 * 2.0**-14 / 12), rel=1e-12)
    torch.manual_seed(0)
    X = torch.randn(256, 256) * 0.02
    err = float(torch.linalg.vector_norm(X.to(torch.bfloat16).float() - X))  # one actual rounding
    assert err == pytest.approx(rounding.rounding_floor(X, torch.bfloat16), rel=0.05)


def test_unchanged_matrices(work, tmp_path):
    res = pa.analyze(BASE, [BASE], tmp_path / "an", quiet=True)
    assert res["summary"][0]["n_unchanged"] == res["n_matrices"]
    assert all(m["checkpoints"][0]["e1"] == 0.0 and m["spectra"]["delta"] is None for m in res["matrices"])
    assert "unchanged matrices (ΔW = 0) | 28" in (tmp_path / "an" / "analysis.md").read_text()


def test_targets_alpharl_and_regex(work, tmp_path):
    sel = opening.target_selector("alpharl")
    assert sel("model.layers.3.mlp.gate.weight", 2) and sel("model.layers.0.self_attn.q_proj.weight", 2)
    assert not sel("model.layers.0.input_layernorm.weight", 1) and not sel("model.embed_tokens.weight", 2)
    res = pa.analyze(BASE, [work / "rl32"], tmp_path / "an", targets=r"layers\.1\..*_proj", esd="none",
                     quiet=True, figures=False)
    assert res["n_matrices"] == 7 and all(m["layer"] == 1 for m in res["matrices"])


# ---------------------------------------------------------------------------------------------- substitute

def alpharl_reference(base_dir, rl_dir, dtype):
    """AlphaRL eval/svd.py + eval/upd_rank.py, re-implemented: whole models, full thin SVD of every 2-D weight
    under self_attn / mlp of the decoder layers, W_base + α (‖UΣVᵀ‖_F / ‖σ1 u1 v1ᵀ‖_F) σ1 u1 v1ᵀ with α = 1,
    everything else at base. The SVD runs in float32 (torch.linalg.svd has no bf16 kernel on the CPU)."""
    from transformers import AutoModelForCausalLM

    mb = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=dtype)
    mr = AutoModelForCausalLM.from_pretrained(str(rl_dir), dtype=dtype)
    rl_params = dict(mr.named_parameters())
    with torch.no_grad():
        for layer, layer_rl in zip(mb.model.layers, mr.model.layers):
            for block in ("self_attn", "mlp"):
                for n, p in getattr(layer, block).named_parameters():
                    if not n.endswith("weight") or p.ndim != 2:
                        continue
                    q = dict(getattr(layer_rl, block).named_parameters())[n]
                    dW = q.float() - p.float()
                    U, S, Vh = torch.linalg.svd(dW, full_matrices=False)
                    r1 = S[0] * torch.outer(U[:, 0], Vh[0])
                    full = (U * S) @ Vh
                    p.copy_((p.float() + torch.linalg.norm(full) / torch.linalg.norm(r1) * r1).to(p.dtype))
    del rl_params
    return mb.state_dict()


@pytest.mark.parametrize("which", ["fp32", "bf16"])
def test_substitute_exact_reproduces_alpharl(work, tmp_path, which):
    base, rl = (BASE, work / "rl32n") if which == "fp32" else (work / "base16", work / "rl16")
    dtype = torch.float32 if which == "fp32" else torch.bfloat16
    out = substitute.substitute(base, rl, tmp_path / "sub", variant="normmatch", svd="exact", targets="alpharl",
                                quiet=True)
    ref = alpharl_reference(base, rl, dtype)
    got = _load(out).state_dict()
    assert set(got) == set(ref)
    for n, r in ref.items():
        g = got[n]
        assert g.dtype == dtype
        if which == "fp32":
            torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6, msg=n)
        else:  # both round the same float32 value to bf16: at most one bf16 step apart, rarely
            diff = (g.float() - r.float()).abs()
            # one bf16 step at the value, plus the float32 rounding of W_base + R where they cancel
            step = torch.maximum(r.float().abs(), g.float().abs()) * 2.0**-7 + 1e-6 * float(r.float().abs().max())
            bad = diff > step
            assert not bool(bad.any()), (n, g[bad][:3], r[bad][:3])
            assert float((diff > 0).float().mean()) < 0.01, n
    # same shard layout and index as the RL checkpoint, config / tokenizer / generation config copied
    if which == "bf16":
        idx = json.loads((out / readers.INDEX_NAME).read_text())["weight_map"]
        assert idx == json.loads((rl / readers.INDEX_NAME).read_text())["weight_map"]
    for f in ("config.json", "generation_config.json", "tokenizer.json"):
        assert (out / f).exists()


def test_substitute_variants_on_exact_rank1(work, tmp_path):
    base, rl = opening.open_checkpoint(BASE), opening.open_checkpoint(work / "rl32")
    names = [n for n in base.names() if is_target(n, len(base.shape(n)))]
    for variant, expect in (("trunc", "rl"), ("normmatch", "rl"), ("residual", "base"), ("rank-k", "rl")):
        out = substitute.substitute(BASE, work / "rl32", tmp_path / variant, variant=variant, k=2, quiet=True)
        got = opening.open_checkpoint(out)
        for n in names:
            want = (rl if expect == "rl" else base).get(n)
            torch.testing.assert_close(got.get(n), want, rtol=0, atol=1e-5, msg=f"{variant} {n}")
    out = substitute.substitute(BASE, work / "rl32", tmp_path / "random", variant="random", quiet=True)
    got = opening.open_checkpoint(out)
    for n in names[:3]:
        R = got.get(n) - base.get(n)
        dW = rl.get(n) - base.get(n)
        assert float(R.norm()) == pytest.approx(float(dW.norm()), rel=1e-4)
        assert abs(float((R * dW).sum() / (R.norm() * dW.norm()))) < 0.2  # a different direction
    rec = json.loads((out / "rlvr_lowrank_substitution.json").read_text())
    assert rec["variant"] == "random" and len(rec["matrices"]) == 28


def test_cli_commands(work, tmp_path, capsys):
    assert main(["analyze", str(BASE), str(work / "rl32"), "--out", str(tmp_path / "an"), "--esd", "none",
                 "--quiet"]) == 0
    assert "AlphaRL ratio 1.0000" in capsys.readouterr().out
    assert main(["substitute", str(BASE), str(work / "rl32"), "--variant", "trunc", "--out", str(tmp_path / "s"),
                 "--quiet"]) == 0
    assert _load(tmp_path / "s").dtype == torch.float32
    assert main(["analyze", str(BASE), str(work / "rl32"), "--out", str(tmp_path / "an"), "--quiet"]) == 2
    assert "already exists" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- export, PEFT, GGUF

def test_export_run_directory_sharded_bf16(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "CHUNK_ELEMS", 5000)  # copy every tensor in many row blocks
    run = tmp_path / "runs" / "smoke" / "full" / "seed0"
    (run / "final").mkdir(parents=True)
    shutil.copy(BASE / "model.safetensors", run / "final" / "model.safetensors")
    (run / "config.yaml").write_text(f"model: {BASE}\n")
    out = writer.export(run, tmp_path / "hf", dtype="bf16", max_shard_bytes=SHARD)
    assert (out / readers.INDEX_NAME).exists() and len(list(out.glob("model-*.safetensors"))) > 1
    m = _load(out)
    assert m.dtype == torch.bfloat16
    src = opening.open_checkpoint(BASE)
    sd = m.state_dict()
    for n in src.names():
        assert torch.equal(sd[n], src.get(n).to(torch.bfloat16)), n
    with pytest.raises(readers.CheckpointError, match="already exists"):
        writer.export(run, tmp_path / "hf")
    writer.export(run, tmp_path / "hf", dtype="fp32", force=True)
    assert _load(tmp_path / "hf").dtype == torch.float32


def test_peft_lora_adapter_as_rl_side(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(BASE))
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=6, target_modules=["q_proj", "down_proj"]))
    torch.manual_seed(0)
    for n, p in peft_model.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.05)
    peft_model.save_pretrained(str(tmp_path / "adapter"))
    merged = peft_model.merge_and_unload().state_dict()
    res = pa.analyze(BASE, [tmp_path / "adapter"], tmp_path / "an", esd="none", quiet=True, figures=False)
    base = opening.open_checkpoint(BASE)
    for m in res["matrices"]:
        c = m["checkpoints"][0]
        if m["type"] in ("q_proj", "down_proj"):
            dW = merged[m["name"]].float() - base.get(m["name"]).float()
            assert c["fro"] == pytest.approx(float(dW.norm()), rel=1e-5)
            assert c["sigma"][2] < 1e-4 * c["sigma"][0]  # rank <= r = 2
        else:
            assert c["unchanged"]


@pytest.mark.slow
def test_smollm2_gguf_analyze_and_substitute(tmp_path):
    from rlvr_lowrank.models import smollm2_gguf_path

    gguf = foreign.GGUFCheckpoint(smollm2_gguf_path())  # dequantised once, used three times
    assert gguf.config["model_type"] == "llama" and len(gguf.names()) > 200
    rl = planted.write_planted_rl(gguf, tmp_path / "rl", scale=0.05, noise=0.0, targets=r"layers\.0\.")
    res = pa.analyze(gguf, [rl], tmp_path / "an", targets=r"layers\.[01]\.", esd="none", quiet=True, figures=False)
    for m in res["matrices"]:
        c = m["checkpoints"][0]
        if m["layer"] == 0:
            assert c["e1"] == pytest.approx(1.0, abs=1e-4)
        else:
            assert c["unchanged"]
    out = substitute.substitute(gguf, rl, tmp_path / "sub", variant="normmatch", targets=r"layers\.0\.", quiet=True)
    assert _load(out).config.model_type == "llama"


# ---------------------------------------------------------------------------------------------- bad input

def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_mismatched_architectures_name_the_tensor(work, tmp_path):
    from safetensors.torch import load_file, save_file

    d = _copy(BASE, tmp_path / "renamed")
    t = load_file(str(d / "model.safetensors"))
    t["model.layers.0.self_attn.qq_proj.weight"] = t.pop("model.layers.0.self_attn.q_proj.weight")
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(readers.CheckpointError, match=r"model\.layers\.0\.self_attn\.q_proj\.weight"):
        pa.analyze(BASE, [d], tmp_path / "an", quiet=True)
    d = _copy(BASE, tmp_path / "reshaped")
    t = load_file(str(d / "model.safetensors"))
    t["model.layers.2.mlp.up_proj.weight"] = t["model.layers.2.mlp.up_proj.weight"][:-1]
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(readers.CheckpointError, match=r"shape mismatch for tensor 'model\.layers\.2\.mlp\.up_proj"):
        substitute.substitute(BASE, d, tmp_path / "s", variant="trunc", quiet=True)
    d = _copy(BASE, tmp_path / "otherarch")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "model_type": "qwen2"}))
    with pytest.raises(readers.CheckpointError, match="architecture mismatch"):
        pa.analyze(BASE, [d], tmp_path / "an", quiet=True)


def test_missing_partial_and_unindexed_shards(work, tmp_path):
    d = _copy(work / "rl16", tmp_path / "missing")
    shard = sorted(d.glob("model-*.safetensors"))[1]
    shard.unlink()
    with pytest.raises(readers.CheckpointError, match=f"{shard.name}.*missing"):
        opening.open_checkpoint(d)
    d = _copy(work / "rl16", tmp_path / "partial")
    shard = sorted(d.glob("model-*.safetensors"))[2]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    with pytest.raises(readers.CheckpointError, match=f"{shard.name}.*(partial|truncated)"):
        opening.open_checkpoint(d)
    d = _copy(work / "rl16", tmp_path / "badindex")
    idx = json.loads((d / readers.INDEX_NAME).read_text())
    first = next(iter(idx["weight_map"]))
    idx["weight_map"][first] = "model-00099-of-00099.safetensors"
    (d / readers.INDEX_NAME).write_text(json.dumps(idx))
    with pytest.raises(readers.CheckpointError, match="model-00099-of-00099.safetensors"):
        opening.open_checkpoint(d)


def test_nan_tensor_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    d = _copy(BASE, tmp_path / "nan")
    t = load_file(str(d / "model.safetensors"))
    t["model.layers.1.mlp.down_proj.weight"][3, 5] = float("nan")
    save_file(t, str(d / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(readers.CheckpointError, match=r"model\.layers\.1\.mlp\.down_proj\.weight.*NaN"):
        pa.analyze(BASE, [d], tmp_path / "an", quiet=True)
    assert not (tmp_path / "an").exists()


def test_gguf_with_unsupported_quantisation_is_named(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "odd.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    q = gguf.GGMLQuantizationType.Q8_1
    w.add_tensor("blk.0.attn_q.weight", np.zeros(gguf.quant_shape_to_byte_shape((4, 64), q), dtype=np.uint8),
                 raw_dtype=q)  # 4 x 64 values stored as Q8_1 blocks
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(readers.CheckpointError, match=r"blk\.0\.attn_q\.weight.*Q8_1"):
        opening.open_checkpoint(path)


def test_pickle_checkpoint_refused_with_conversion(tmp_path):
    d = tmp_path / "binmodel"
    d.mkdir()
    shutil.copy(BASE / "config.json", d / "config.json")
    (d / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(readers.CheckpointError, match=r"pickle.*save_pretrained\(.*safe_serialization=True"):
        opening.open_checkpoint(d)
    with pytest.raises(readers.CheckpointError, match="pickle"):
        opening.open_checkpoint(d / "pytorch_model.bin")


def test_existing_output_refused_unless_force(work, tmp_path):
    out = tmp_path / "sub"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(readers.CheckpointError, match="already exists.*--force"):
        substitute.substitute(BASE, work / "rl32", out, variant="trunc", quiet=True)
    assert (out / "keep.txt").exists()
    substitute.substitute(BASE, work / "rl32", out, variant="trunc", force=True, quiet=True)
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_disk_full_mid_write_leaves_nothing(work, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = writer._write

    def failing(f, data):
        calls["n"] += 1
        if calls["n"] == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, data)

    monkeypatch.setattr(writer, "_write", failing)
    with pytest.raises(OSError) as e:
        substitute.substitute(work / "base16", work / "rl16", tmp_path / "out", variant="normmatch", quiet=True)
    assert e.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # neither the output nor a temporary directory is left
