"""Tests for rlvr_lowrank.rank1: every substitution is checked against a dense numpy/torch reference."""
from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest
import torch

from rlvr_lowrank.analysis import rank1 as r1
from rlvr_lowrank.analysis import svd
from rlvr_lowrank.analysis.targets import target_names

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# Frobenius-relative tolerance of the fast path against a dense reference. The fast path certifies
# sin θ(u1) <= 2e-3 (svd._FAST_TOL_SIN; contract: |cos| >= 0.9999, i.e. sin θ <= 1.4e-2), and ṽ is at least as
# accurate, so ‖σ̃ũṽᵀ − σuvᵀ‖_F / σ <= ~2 sin θ + σ error <= ~4e-3.
FAST_RTOL = 5e-3


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------

_BASES: dict = {}


def planted(m: int, n: int, s: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """float32 matrix with prescribed singular values s (descending) and known float64 vectors.

    The known U, V (float64) are the exact reference; the float32 rounding of M perturbs them by ~1e-7/gap.
    """
    if (m, n, seed) not in _BASES:  # orthonormal bases are the expensive part; reuse them across spectra
        g = torch.Generator().manual_seed(seed)
        r = min(m, n)
        _BASES[(m, n, seed)] = (torch.linalg.qr(torch.randn(m, r, generator=g, dtype=torch.float64)).Q,
                                torch.linalg.qr(torch.randn(n, r, generator=g, dtype=torch.float64)).Q)
    U, V = _BASES[(m, n, seed)]
    return ((U * s.double()) @ V.T).float(), U, V


def decaying(r: int, top: float, power: float) -> torch.Tensor:
    """σ1 = top, σ_i = (i-1)^-power for i >= 2 (so σ1/σ2 = top)."""
    return torch.cat([torch.tensor([top], dtype=torch.float64), torch.arange(1, r, dtype=torch.float64) ** -power])


def spiked(m: int, n: int, seed: int = 0, spike: float = 4.0) -> torch.Tensor:
    """Gaussian matrix plus a rank-1 spike: a clear but not huge spectral gap."""
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(m, n, generator=g) / math.sqrt(max(m, n))
    a, b = torch.randn(m, generator=g), torch.randn(n, generator=g)
    return M + spike * torch.outer(a / a.norm(), b / b.norm())


def np_svd(M: torch.Tensor):
    U, S, Vt = np.linalg.svd(M.double().numpy(), full_matrices=False)
    return U, S, Vt


def np_rank1(M: torch.Tensor, variant: str) -> np.ndarray:
    U, S, Vt = np_svd(M)
    A = M.double().numpy()
    t = S[0] * np.outer(U[:, 0], Vt[0])
    if variant == "trunc":
        return t
    if variant == "normmatch":
        return np.linalg.norm(A) * np.outer(U[:, 0], Vt[0])
    if variant == "residual":
        return A - t
    raise ValueError(variant)


def close(a, b, rtol=1e-5) -> None:
    """‖a − b‖_F <= rtol ‖b‖_F."""
    a = np.asarray(a.detach().double().numpy() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().double().numpy() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    err = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
    assert err <= rtol, f"relative Frobenius error {err:.3e} > {rtol:.1e}"


def tiny_llama(seed: int = 0, tie: bool = True, intermediate: int = 64):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=intermediate, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=tie, attention_dropout=0.0)
    return LlamaForCausalLM(cfg).float()


def perturb_all(model, scale: float = 0.05, seed: int = 1):
    """A 'trained' copy in which EVERY tensor (targets, norms, embeddings) moved."""
    g = torch.Generator().manual_seed(seed)
    t = copy.deepcopy(model)
    with torch.no_grad():
        for p in t.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return t


# ----------------------------------------------------------------------------------------------
# svd_topk: fast path vs exact
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(576, 576), (1536, 576), (64, 128)])
@pytest.mark.parametrize("top,power", [(1.01, 0.5), (1.05, 0.3), (3.0, 0.5)])
def test_fast_path_meets_accuracy_contract(shape, top, power):
    m, n = shape
    M, U0, V0 = planted(m, n, decaying(min(m, n), top, power))
    U, S, V, info = svd.svd_topk(M, 1, method="fast", return_info=True)
    assert info["method"] == "fast", info  # otherwise this would only test the exact path
    assert U.dtype == S.dtype == V.dtype == torch.float32
    assert U.shape == (m, 1) and S.shape == (1,) and V.shape == (n, 1)
    assert abs(float(S[0]) / top - 1) <= 1e-4
    assert abs(float(U[:, 0].double() @ U0[:, 0])) >= 0.9999
    assert abs(float(V[:, 0].double() @ V0[:, 0])) >= 0.9999


def test_fast_path_vs_torch_linalg_svd():
    M, _, _ = planted(576, 576, decaying(576, 1.01, 0.5))
    U, S, V, info = svd.svd_topk(M, 1, method="fast", return_info=True)
    assert info["method"] == "fast"
    Ue, Se, Vhe = torch.linalg.svd(M, full_matrices=False)
    assert abs(float(S[0] / Se[0]) - 1) <= 1e-4
    assert abs(float(U[:, 0] @ Ue[:, 0])) >= 0.9999 and abs(float(V[:, 0] @ Vhe[0])) >= 0.9999


def test_fast_path_spiked_gaussian_and_k_gt_1():
    M = spiked(300, 200, spike=4.0)
    Ue, Se, Vhe = torch.linalg.svd(M.double(), full_matrices=False)
    U, S, V, info = svd.svd_topk(M, 1, method="fast", return_info=True)
    assert info["method"] == "fast"
    assert abs(float(S[0] / Se[0]) - 1) <= 1e-4 and abs(float(U[:, 0].double() @ Ue[:, 0])) >= 0.9999
    # k = 3 on a geometric spectrum: every triplet accurate
    Mk, Uk, Vk = planted(256, 200, 0.8 ** torch.arange(200, dtype=torch.float64))
    U, S, V, info = svd.svd_topk(Mk, 3, method="fast", return_info=True)
    assert info["method"] == "fast"
    for j in range(3):
        assert abs(float(S[j]) / 0.8**j - 1) <= 1e-4
        assert abs(float(U[:, j].double() @ Uk[:, j])) >= 0.9999
        assert abs(float(V[:, j].double() @ Vk[:, j])) >= 0.9999


def test_fast_path_is_deterministic_and_sign_canonical():
    M = spiked(200, 150, seed=3)
    a = svd.svd_topk(M, 2, method="fast", seed=7)
    b = svd.svd_topk(M, 2, method="fast", seed=7)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    e = svd.svd_topk(M, 2, method="exact")
    # same sign convention on both paths: u1 agrees with a positive cosine
    assert float(a[0][:, 0] @ e[0][:, 0]) > 0.9999
    assert float(a[2][:, 0] @ e[2][:, 0]) > 0.9999


@pytest.mark.parametrize("name,spectrum", [
    ("flat", lambda r: torch.linspace(1.0, 0.9, r, dtype=torch.float64)),
    ("cluster",
     lambda r: torch.cat([torch.tensor([1.01]), torch.ones(30), 0.9 * torch.arange(1, r - 30) ** -0.5]).double()),
])
def test_fast_path_falls_back_when_not_certified(name, spectrum):
    M, U0, _ = planted(256, 256, spectrum(256))
    U, S, V, info = svd.svd_topk(M, 1, method="fast", return_info=True)
    assert info["fallback"] and info["method"] == "exact", info
    Ux, Sx, Vx = svd.svd_topk(M, 1, method="exact")
    assert torch.equal(U, Ux) and torch.equal(S, Sx) and torch.equal(V, Vx)
    Se = torch.linalg.svdvals(M.double())
    assert abs(float(S[0] / Se[0]) - 1) <= 1e-5


def test_auto_uses_exact_for_small_and_validates():
    M = torch.randn(40, 30)
    _, _, _, info = svd.svd_topk(M, 1, return_info=True)
    assert info["method"] == "exact"
    with pytest.raises(ValueError, match="exact"):
        svd.svd_topk(M, 1, method="lanczos")
    for bad in (0, -1, 31, 1.5):
        with pytest.raises(ValueError, match="1..30"):
            svd.svd_topk(M, bad)
    with pytest.raises(ValueError, match="NaN"):
        svd.svd_topk(torch.full((4, 4), float("nan")), 1)


def test_zero_matrix_gives_zeros_no_nan():
    Z = torch.zeros(160, 140)
    for method in ("exact", "fast", "auto"):
        U, S, V, info = svd.svd_topk(Z, 2, method=method, return_info=True)
        assert info["method"] == "zero"
        assert not U.any() and not S.any() and not V.any()
    for v in r1.VARIANTS:
        R = r1.rank1_update(Z, v)
        assert torch.isfinite(R).all() and not R.any()
    for k, nm in ((3, True), (3, False), ("full", True)):
        R = r1.rankk_update(Z, k, normmatch=nm)
        assert torch.isfinite(R).all() and not R.any()
    d = r1.update_diagnostics(Z)
    assert d["e1"] == 0.0 and d["norm_ratio"] == 0.0 and d["zero"]


def test_tiny_scale_matrix_fast_path():
    # RL updates can be ~1e-6 per entry and below; scaling must not underflow the sums of squares
    M, U0, _ = planted(200, 180, decaying(180, 2.0, 0.5))
    M = M * 1e-25
    U, S, V, info = svd.svd_topk(M, 1, method="fast", return_info=True)
    assert info["method"] == "fast"
    assert abs(float(S[0]) / 2e-25 - 1) <= 1e-4 and abs(float(U[:, 0].double() @ U0[:, 0])) >= 0.9999


# ----------------------------------------------------------------------------------------------
# substitutions on one ΔW vs numpy.linalg.svd
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,method", [((48, 36), "exact"), ((180, 140), "fast")])
@pytest.mark.parametrize("variant", ["trunc", "normmatch", "residual"])
def test_rank1_variants_match_numpy(shape, method, variant):
    dW = spiked(*shape, seed=5)
    R = r1.rank1_update(dW, variant, method=method)
    assert R.dtype == torch.float32 and R.shape == dW.shape
    close(R, np_rank1(dW, variant), rtol=2e-5 if method == "exact" else FAST_RTOL)
    fro = float(np.linalg.norm(dW.double().numpy()))
    if variant == "normmatch":
        assert abs(float(R.double().norm()) / fro - 1) < 1e-5
        assert np.linalg.matrix_rank(R.double().numpy(), tol=1e-6 * fro) == 1


def test_residual_plus_trunc_is_delta_and_diagnostics():
    dW = spiked(64, 80, seed=2)
    T, Res = r1.rank1_update(dW, "trunc"), r1.rank1_update(dW, "residual")
    close(T + Res, dW, rtol=1e-6)
    _, S, _ = np_svd(dW)
    d = r1.update_diagnostics(dW, T)
    assert abs(d["sigma1"] / S[0] - 1) < 1e-5
    assert abs(d["e1"] - S[0] ** 2 / (S**2).sum()) < 1e-5
    assert abs(d["norm_ratio"] - S[0] / math.sqrt((S**2).sum())) < 1e-5
    assert abs(d["energy_removed"] - (S[1:] ** 2).sum()) < 1e-4 * (S**2).sum()
    assert abs(d["dist2"] - (S[1:] ** 2).sum()) < 1e-4 * (S**2).sum()


def test_rankk_matches_numpy():
    dW = torch.randn(50, 30, generator=torch.Generator().manual_seed(9))
    U, S, Vt = np_svd(dW)
    fro = float(np.linalg.norm(dW.double().numpy()))
    R3 = r1.rankk_update(dW, 3)
    close(R3, (U[:, :3] * S[:3]) @ Vt[:3], rtol=2e-5)
    assert np.linalg.matrix_rank(R3.double().numpy(), tol=1e-6 * fro) == 3
    R3n = r1.rankk_update(dW, 3, normmatch=True)
    assert abs(float(R3n.double().norm()) / fro - 1) < 1e-5
    close(R3n, (U[:, :3] * S[:3]) @ Vt[:3] * fro / np.sqrt((S[:3] ** 2).sum()), rtol=2e-5)
    close(r1.rankk_update(dW, 30), dW, rtol=2e-5)
    assert torch.equal(r1.rankk_update(dW, "full"), dW)
    # k = 1 trunc / normmatch agree with the rank-1 variants
    close(r1.rankk_update(dW, 1), r1.rank1_update(dW, "trunc"), rtol=1e-6)
    close(r1.rankk_update(dW, 1, normmatch=True), r1.rank1_update(dW, "normmatch"), rtol=1e-6)


def test_random_variant_norm_and_direction():
    dW = spiked(200, 120, seed=4)
    fro = float(dW.double().norm())
    R = r1.rank1_update(dW, "random", seed=3)
    assert abs(float(R.double().norm()) / fro - 1) < 1e-5
    assert np.linalg.matrix_rank(R.double().numpy(), tol=1e-6 * fro) == 1
    U, S, Vt = np_svd(dW)
    Ur, _, Vr = np_svd(R)
    assert abs(Ur[:, 0] @ U[:, 0]) < 0.5 and abs(Vr[0] @ Vt[0]) < 0.5  # ~1/sqrt(d) for random directions
    assert torch.equal(R, r1.rank1_update(dW, "random", seed=3))
    assert not torch.allclose(R, r1.rank1_update(dW, "random", seed=4))


def test_invalid_variant_and_k():
    dW = torch.randn(8, 6)
    with pytest.raises(ValueError, match="trunc, normmatch, residual, random"):
        r1.rank1_update(dW, "svd")
    for k in (0, -2, 7, "all"):
        with pytest.raises(ValueError, match="'full'"):
            r1.rankk_update(dW, k)


def test_bf16_inputs_upcast():
    g = torch.Generator().manual_seed(0)
    base = {"model.layers.0.mlp.up_proj.weight": torch.randn(24, 16, generator=g).bfloat16(),
            "model.norm.weight": torch.ones(16).bfloat16()}
    trained = {k: (v.float() + 0.01 * torch.randn(v.shape, generator=g)).bfloat16() for k, v in base.items()}
    d = r1.deltas(base, trained)
    k = "model.layers.0.mlp.up_proj.weight"
    assert list(d) == [k] and d[k].dtype == torch.float32
    assert torch.equal(d[k], trained[k].float() - base[k].float())
    U, S, V = svd.svd_topk(trained[k], 2)
    Ue, Se, Ve = svd.svd_topk(trained[k].float(), 2)
    assert S.dtype == torch.float32 and torch.equal(S, Se)


# ----------------------------------------------------------------------------------------------
# deltas: checks name the tensor
# ----------------------------------------------------------------------------------------------

def _toy_state():
    g = torch.Generator().manual_seed(0)
    return {"model.embed_tokens.weight": torch.randn(10, 8, generator=g),
            "model.layers.0.self_attn.q_proj.weight": torch.randn(8, 8, generator=g),
            "model.layers.0.mlp.down_proj.weight": torch.randn(8, 12, generator=g),
            "model.layers.0.input_layernorm.weight": torch.ones(8)}


def test_deltas_values_and_errors():
    base = _toy_state()
    trained = {k: v + 1.0 for k, v in base.items()}
    d = r1.deltas(base, trained)
    assert set(d) == {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"}
    assert all(torch.equal(v, trained[k] - base[k]) and v.dtype == torch.float32 for k, v in d.items())

    bad = dict(trained)
    del bad["model.layers.0.mlp.down_proj.weight"]
    with pytest.raises(ValueError, match=r"down_proj\.weight.*not in the trained"):
        r1.deltas(base, bad)
    bad = dict(trained, **{"model.layers.0.mlp.extra.weight": torch.zeros(2, 2)})
    with pytest.raises(ValueError, match=r"extra\.weight"):
        r1.deltas(base, bad)
    bad = dict(trained, **{"model.layers.0.self_attn.q_proj.weight": torch.zeros(8, 9)})
    with pytest.raises(ValueError, match=r"shape mismatch.*q_proj\.weight"):
        r1.deltas(base, bad)
    bad = dict(trained)
    bad["model.layers.0.mlp.down_proj.weight"] = bad["model.layers.0.mlp.down_proj.weight"].clone()
    bad["model.layers.0.mlp.down_proj.weight"][3, 4] = float("nan")
    with pytest.raises(ValueError, match=r"trained weight 'model\.layers\.0\.mlp\.down_proj\.weight'.*NaN"):
        r1.deltas(base, bad)
    bad_base = dict(base)
    bad_base["model.embed_tokens.weight"] = base["model.embed_tokens.weight"].clone()
    bad_base["model.embed_tokens.weight"][0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"base weight 'model\.embed_tokens\.weight'"):
        r1.deltas(bad_base, trained)


# ----------------------------------------------------------------------------------------------
# build_substituted_model
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", list(r1.MODEL_VARIANTS))
def test_build_substituted_model(variant):
    base = tiny_llama()
    trained = perturb_all(base)
    snapshot = {k: v.clone() for k, v in base.state_dict().items()}
    new = r1.build_substituted_model(base, trained, variant, k=2, seed=0)
    assert new is not base
    for k, v in base.state_dict().items():  # base untouched
        assert torch.equal(v, snapshot[k]), k
    bs, ts, ns = base.state_dict(), trained.state_dict(), new.state_dict()
    targets = target_names(bs)
    assert len(targets) == 2 * 7
    for k in bs:
        if k not in targets:  # embeddings, (tied) lm_head, norms stay at base (AlphaRL)
            assert torch.equal(ns[k], bs[k]), k
            continue
        dW = ts[k] - bs[k]
        if variant == "base":
            ref = np.zeros(dW.shape)
        elif variant == "full":
            ref = dW.double().numpy()
        elif variant == "rankk":
            U, S, Vt = np_svd(dW)
            ref = (U[:, :2] * S[:2]) @ Vt[:2]
        elif variant == "random":
            R = ns[k] - bs[k]
            assert abs(float(R.double().norm() / dW.double().norm()) - 1) < 1e-4
            assert np.linalg.matrix_rank(R.double().numpy(), tol=1e-5 * float(dW.norm())) == 1
            continue
        else:
            ref = np_rank1(dW, variant)
        close(ns[k].double() - bs[k].double(), ref, rtol=1e-4)
    assert new.lm_head.weight is new.model.embed_tokens.weight  # tying survives
    diags = new.rank1_diagnostics
    assert [d["name"] for d in diags] == targets
    assert all(0.0 < d["e1"] <= 1.0 and d["fro"] > 0 for d in diags)
    assert 0 < new.rank1_summary["alpharl_ratio"] <= 1


def test_build_substituted_model_mismatch():
    base = tiny_llama()
    other = tiny_llama(intermediate=48)
    with pytest.raises(ValueError, match=r"shape mismatch.*(gate|up|down)_proj"):
        r1.build_substituted_model(base, other, "trunc")
    with pytest.raises(ValueError, match="trunc"):
        r1.build_substituted_model(base, base, "rank1")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2))
    with pytest.raises(ValueError, match="model_type 'llama' vs trained model_type 'qwen2'"):
        r1.build_substituted_model(base, qwen, "trunc")
    with pytest.raises(ValueError, match="architecture mismatch"):
        r1.deltas(base, qwen)
