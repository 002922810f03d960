"""The readings added after tiny's results were seen (claims.readings), on constructed data with known answers:
C0 specificity (paired differences vs Full RL, non-inferiority margin 0.1 × gain; the second direction
u2 v2ᵀ; σ1/‖ΔW‖_F), C3 at a fixed x_min (Δα, ‖ΔW‖/‖W‖, the Weyl ratio), C1's difference-in-differences and TOST."""
import numpy as np
import pytest
import torch
from scipy import stats

from rlvr_lowrank.analysis import power_law, rank1
from rlvr_lowrank.claims import readings


def _planted(m=12, n=8, seed=0):
    """ΔW = 4 u1 v1ᵀ + 3 u2 v2ᵀ (σ1 = 4, ‖ΔW‖_F = 5) and its orthonormal factors."""
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(m, 2, generator=g))
    V, _ = torch.linalg.qr(torch.randn(n, 2, generator=g))
    return 4 * torch.outer(U[:, 0], V[:, 0]) + 3 * torch.outer(U[:, 1], V[:, 1]), U, V


def test_second_direction_is_u2_v2_at_the_norm_of_the_update_and_sigma1_share_is_known():
    dW, U, V = _planted()
    R, d = rank1.substitute_update(dW, rank1.SECOND)
    expect = 5 * torch.outer(U[:, 1], V[:, 1])
    assert torch.allclose(R, expect, atol=1e-5) or torch.allclose(R, -expect, atol=1e-5)
    share = readings.sigma1_share([{"name": "q", **d}])
    assert share["per_matrix"][0]["sigma1_over_fro"] == pytest.approx(0.8, rel=1e-5)
    assert share["per_matrix"][0]["e1"] == pytest.approx(0.64, rel=1e-5)
    with pytest.raises(ValueError, match="no second singular direction"):
        rank1.substitute_update(torch.ones(1, 5), rank1.SECOND)


def _rows(acc: dict[str, list[float]]):
    return [{"seed": s, "variant": v, "test_acc": a} for v, xs in acc.items() for s, a in enumerate(xs)]


FULL = [0.80, 0.82, 0.78, 0.81, 0.79]  # gain 0.8 over a base of 0: margin 0.08


def test_c0_rank1_specific_when_the_controls_lose_the_gain():
    r = readings.c0_reading(_rows({"base": [0.0] * 5, "full": FULL, "normmatch": [a - 0.01 for a in FULL],
                                   "residual": [0.0, 0.01, 0.0, 0.02, 0.0], "second": [0.05, 0.04, 0.06, 0.05, 0.05]}))
    assert r["margin"] == pytest.approx(0.08) and r["gain"] == pytest.approx(0.8)
    assert r["by_variant"]["normmatch"]["class"] == readings.NON_INFERIOR
    assert r["by_variant"]["residual"]["class"] == readings.INFERIOR
    assert r["class"] == "specific" and "added after" in r["added"]
    assert r["rank1_minus_control"]["residual"]["mean"] == pytest.approx(0.79 - 0.006)


def test_c0_sufficient_not_specific_when_the_residual_keeps_the_gain_too():
    r = readings.c0_reading(_rows({"base": [0.0] * 5, "full": FULL, "normmatch": FULL,
                                   "residual": [a + 0.005 for a in FULL], "second": [0.0] * 5}))
    assert r["class"] == "sufficient, not specific"
    wobbly = readings.c0_reading(_rows({"base": [0.0] * 5, "full": FULL, "normmatch": [0.9, 0.5, 0.8, 0.6, 0.85],
                                        "residual": [0.0] * 5, "second": [0.0] * 5}))
    assert wobbly["by_variant"]["normmatch"]["class"] == readings.UNDECIDED and wobbly["class"] == "undecided"
    assert "not measured" in readings.c0_reading(_rows({"base": [0.0], "full": [0.5]}))["reading"]


def test_c3_at_fixed_xmin_no_update_moves_nothing_and_a_planted_update_has_known_norms():
    rng = np.random.default_rng(0)
    w = rng.standard_t(3, size=(80, 60))  # heavy-tailed entries
    same = readings.c3_matrix(w, w)
    assert same["delta_alpha"] == 0 and same["rel_update"] == 0 and same["weyl_ratio"] == 0
    ev = np.sort(np.linalg.svd(w, compute_uv=False) ** 2)
    tail = ev[ev >= same["xmin"]]
    assert same["alpha_base"] == pytest.approx(1 + len(tail) / np.log(tail / same["xmin"]).sum())  # Hill, fixed x_min
    u, v = rng.standard_normal(80), rng.standard_normal(60)
    dw = 0.5 * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))  # ‖ΔW‖_F = ‖ΔW‖_2 = 0.5
    got = readings.c3_matrix(w, w + dw)
    assert got["rel_update"] == pytest.approx(0.5 / np.linalg.norm(w))
    assert got["weyl_ratio"] == pytest.approx(0.5 / np.sqrt(same["xmin"]))
    assert got["xmin"] == same["xmin"] and abs(got["delta_alpha"]) < 0.1
    out = readings.c3_reading({"a": w, "b": w.T.copy()}, {"a": w, "b": w.T.copy()})
    assert out["delta_alpha"]["mean"] == 0 and out["fraction_heavy_fixed_xmin"]["base"] == \
        out["fraction_heavy_fixed_xmin"]["rl"] and out["min_fraction"] == 0.9
    assert power_law.ALPHA_HT_HI == 6.0


def test_c1_difference_in_differences_and_tost_on_known_numbers():
    test = np.array([0.60, 0.62, 0.58, 0.61, 0.59])
    noise = np.array([0.004, -0.003, 0.002, -0.001, 0.0])
    r = readings.c1_reading(test + 0.06 + noise, test, test + 0.01 - noise, test + noise)
    assert r["did"]["mean"] == pytest.approx(0.05 + 3 * noise.mean()) and r["overfits_more_than_pr1s"]
    assert r["tost"]["equivalent"] and r["min_did"] == 0.02 and r["tost"]["margin"] == 0.05
    lo, hi = stats.t.interval(0.90, 4, loc=np.mean(-noise), scale=stats.sem(-noise))
    assert r["tost"]["interval_90"] == pytest.approx((lo, hi))
    far = readings.tost([0.03, 0.06, 0.02, 0.07, 0.04], 0.05)
    assert not far["equivalent"]
    none = readings.c1_reading(test, test, test, test)
    assert not none["overfits_more_than_pr1s"] and "not shown" in none["reading"]
