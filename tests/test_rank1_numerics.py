"""Rank-1 substitutions and diagnostics stay finite and truthful for extreme but finite ΔW."""
import math

import pytest
import torch

from rlvr_lowrank.analysis import rank1, svd


def _dw(m=24, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, n, generator=g) + 4 * torch.outer(torch.randn(m, generator=g), torch.randn(n, generator=g))


@pytest.mark.parametrize("variant", rank1.VARIANTS)
@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_extreme_scale_does_not_give_inf_or_zero(variant, scale):
    dW = _dw()
    ref = rank1.rank1_update(dW, variant, seed=1)
    R = rank1.rank1_update(dW * scale, variant, seed=1)
    assert torch.isfinite(R).all()
    # substitutions are linear in ΔW: the scaled input gives the scaled answer
    assert float((R / scale - ref).norm() / ref.norm()) < 1e-5


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_normmatch_rankk_finite_at_extreme_scale(scale):
    dW = _dw()
    R = rank1.rankk_update(dW * scale, 3, normmatch=True)
    assert torch.isfinite(R).all()
    assert math.isclose(float(R.double().norm()), float((dW * scale).double().norm()), rel_tol=1e-5)


def test_tiny_update_is_not_reported_zero_beside_a_nonzero_sigma1():
    dW = _dw() * 1e-30
    d = rank1.update_diagnostics(dW)
    assert d["zero"] is False
    assert d["sigma1"] > 0 and d["fro"] > 0
    ref = rank1.update_diagnostics(_dw())
    assert math.isclose(d["e1"], ref["e1"], rel_tol=1e-5)
    assert math.isclose(d["norm_ratio"], ref["norm_ratio"], rel_tol=1e-5)


def test_huge_update_diagnostics_are_finite():
    d = rank1.update_diagnostics(_dw() * 1e30, rank1.rank1_update(_dw() * 1e30, "normmatch"))
    assert all(math.isfinite(v) for k, v in d.items() if isinstance(v, float))
    assert 0 < d["e1"] <= 1 + 1e-6


def test_exactly_zero_update_is_zero():
    d = rank1.update_diagnostics(torch.zeros(5, 4))
    assert d["zero"] is True and d["e1"] == 0.0 and d["norm_ratio"] == 0.0


def test_smallest_subnormal_entry_is_not_zero():
    dW = torch.zeros(5, 4)
    dW[2, 1] = torch.finfo(torch.float32).tiny / 2 ** 20  # a float32 subnormal
    assert dW[2, 1] > 0
    assert rank1.update_diagnostics(dW)["zero"] is False


def test_result_beyond_float32_range_raises_instead_of_inf():
    dW = torch.full((64, 64), 3e38)  # finite entries, but ‖ΔW‖_F = 64 * 3e38 does not fit in float32
    with pytest.raises(OverflowError, match="float32 range"):
        rank1.rank1_update(dW, "normmatch")


@pytest.mark.parametrize("fn", [lambda t: rank1.rank1_update(t), lambda t: rank1.rankk_update(t, 1),
                                lambda t: rank1.update_diagnostics(t), lambda t: svd.svd_topk(t)])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 4), ()])
def test_non_matrix_input_says_a_2d_matrix_was_expected(fn, shape):
    with pytest.raises(ValueError, match=r"2-D tensor .*got shape"):
        fn(torch.ones(shape))


def test_non_tensor_input_says_what_was_expected():
    with pytest.raises(TypeError, match="2-D torch.Tensor"):
        rank1.rank1_update([[1.0, 2.0]])


def test_empty_matrix_is_refused_clearly():
    with pytest.raises(ValueError, match="non-empty"):
        rank1.rank1_update(torch.ones(0, 3))


def test_ordinary_inputs_unchanged():
    """The fixes must not move results for ordinary ΔW (the project's claims are computed from them)."""
    dW = _dw(32, 20, seed=5)
    d = rank1.update_diagnostics(dW)
    U, S, V = svd.svd_topk(dW, 2, method="exact")
    torch_sv = torch.linalg.svd(dW, full_matrices=False).S
    assert torch.equal(S, torch_sv[:2])  # the power-of-two scaling is exact: identical singular values
    assert math.isclose(d["norm_ratio"], float(torch_sv[0] / torch.linalg.vector_norm(dW)), rel_tol=1e-6)
    R = rank1.rank1_update(dW, "normmatch")
    assert math.isclose(float(R.double().norm()), float(dW.double().norm()), rel_tol=1e-6)
