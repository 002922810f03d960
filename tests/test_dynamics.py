"""dynamics.py on constructed cases: sign alignment, PLS R² (sklearn), RELEX trajectory rank-1 against a
dense SVD, exact extrapolation of linear trajectories, AlphaRL-style extrapolation."""
import numpy as np
import pytest
import torch

from rlvr_lowrank.analysis import alignment, dynamics
from rlvr_lowrank.claims import extrapolation
from rlvr_lowrank.training.runs import Trajectory


def test_sign_align_makes_consecutive_vectors_agree_with_the_last():
    rng = np.random.default_rng(0)
    base = rng.normal(size=20)
    vecs = np.stack([base + 0.1 * rng.normal(size=20) for _ in range(6)])
    flips = np.array([1, -1, -1, 1, -1, 1])
    aligned, signs = alignment.sign_align(vecs * flips[:, None], return_signs=True)
    np.testing.assert_allclose(aligned, vecs, atol=1e-12)
    np.testing.assert_array_equal(signs, flips)


def test_pls_r2_is_one_on_a_linear_signal_and_low_on_noise():
    rng = np.random.default_rng(1)
    T, d = 8, 50
    y = np.linspace(0.1, 0.9, T)
    direction = rng.normal(size=d)
    X = np.outer(y, direction) + 1e-6 * rng.normal(size=(T, d))
    r = dynamics.pls_r2(X, y)
    assert r["r2"] == pytest.approx(1.0, abs=1e-6) and r["r2_loo"] == pytest.approx(1.0, abs=1e-4)
    noise = dynamics.pls_r2(rng.normal(size=(T, d)), y)
    assert noise["r2_loo"] < 0.5  # T << d: in-sample R² can be high, LOO exposes it
    assert np.isnan(dynamics.pls_r2(X, np.ones(T))["r2"])


def test_pls_r2_matches_sklearn_pipeline_in_sample():
    from sklearn.cross_decomposition import PLSRegression

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(7, 30)), rng.normal(size=7)
    pls = PLSRegression(n_components=1, scale=True).fit(X, y)
    z = pls.transform(X)[:, 0]
    r2_direct = np.corrcoef(z, y)[0, 1] ** 2  # OLS of y on one score: R² = corr²
    assert dynamics.pls_r2(X, y)["r2"] == pytest.approx(r2_direct, abs=1e-10)


def test_trajectory_rank1_matches_dense_svd_and_recovers_a_linear_path():
    rng = np.random.default_rng(3)
    T, d = 6, 200
    v = rng.normal(size=d)
    v /= np.linalg.norm(v)
    c = 0.5 * np.arange(1, T + 1) + 0.2
    M = np.outer(c, v) + 1e-3 * rng.normal(size=(T, d))
    r = dynamics.trajectory_rank1(M)
    _, s, vh = np.linalg.svd(M, full_matrices=False)
    assert abs(r["v1"] @ vh[0]) == pytest.approx(1.0, abs=1e-9)
    assert r["explained_var"] == pytest.approx(s[0] ** 2 / (s ** 2).sum(), rel=1e-9)
    np.testing.assert_allclose(r["c"], M @ r["v1"], rtol=1e-9, atol=1e-12)
    assert r["c"][-1] > 0 and abs(r["v1"] @ v) > 0.9999
    z = dynamics.trajectory_rank1(np.zeros((4, 5)))
    assert z["explained_var"] == 0.0 and not np.any(z["v1"])


def _linear_trajectory(steps, m=12, n=9, k=2, seed=4):
    """ΔW_t = (0.01·t) u vᵀ + (0.002·t) u2 v2ᵀ, recorded as the recorder would (top-k factors)."""
    rng = np.random.default_rng(seed)
    U0, _ = np.linalg.qr(rng.normal(size=(m, 2)))
    V0, _ = np.linalg.qr(rng.normal(size=(n, 2)))
    name = "model.layers.0.mlp.up_proj.weight"
    Us, Ss, Vs = [], [], []
    for t in steps:
        dw = 0.01 * t * np.outer(U0[:, 0], V0[:, 0]) + 0.002 * t * np.outer(U0[:, 1], V0[:, 1])
        u, s, vh = np.linalg.svd(dw, full_matrices=False)
        sign = -1 if t % 10 == 5 else 1  # arbitrary SVD signs along the way
        Us.append(sign * u[:, :k])
        Ss.append(s[:k])
        Vs.append(sign * vh[:k].T)
    traj = Trajectory(np.asarray(steps), {name: np.stack(Us)}, {name: np.stack(Ss)}, {name: np.stack(Vs)},
                      {name: np.zeros((len(steps), min(m, n)))})
    target = 0.01 * 100 * np.outer(U0[:, 0], V0[:, 0]) + 0.002 * 100 * np.outer(U0[:, 1], V0[:, 1])
    return traj, name, target, 0.01 * 100 * np.outer(U0[:, 0], V0[:, 0])


def test_relex_extrapolation_is_exact_for_a_linear_trajectory():
    traj, name, target, _ = _linear_trajectory([0, 5, 10, 15, 20, 25, 30])
    pred = dynamics.extrapolate_relex(traj, window_end=30, target_step=100)[name].double().numpy()
    np.testing.assert_allclose(pred, target, atol=1e-6)  # the whole path is rank 1 in time: exact


def test_alpharl_extrapolation_recovers_the_rank1_part():
    traj, name, _, rank1_target = _linear_trajectory([0, 5, 10, 15, 20, 25, 30])
    pred = dynamics.extrapolate_alpharl(traj, window_end=30, target_step=100)[name].double().numpy()
    np.testing.assert_allclose(pred, rank1_target, atol=1e-6)


def test_extrapolation_needs_three_snapshots_and_finite_updates():
    traj, name, _, _ = _linear_trajectory([0, 5, 10, 15])
    with pytest.raises(ValueError, match=">= 2 trajectory snapshots"):
        dynamics.extrapolate_relex(traj, window_end=9, target_step=100)
    lin = torch.nn.Module()
    lin.w = torch.nn.Parameter(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="NaN"):
        dynamics.build_model_from_deltas(lin, {"w": torch.tensor([[float("nan"), 0], [0, 0]])})
    with pytest.raises(ValueError, match="shape"):
        dynamics.build_model_from_deltas(lin, {"w": torch.zeros(3, 2)})
    out = dynamics.build_model_from_deltas(lin, {"w": torch.ones(2, 2)})
    assert float(out.w.detach().sum()) == 4 and float(lin.w.detach().sum()) == 0  # base untouched


def test_extrapolation_summary_ratios_and_steps_saved_on_a_known_case():
    """Ratios are test_acc / trained_acc summarised over seeds; steps saved = 1 − window / final step only when
    the mean ratio keeps the retention (0 otherwise), and None for the window end (the stop-early reference)."""
    rows = [{"seed": s, "window": 10, "method": m, "test_acc": acc, "trained_acc": 0.8, "final_step": 40}
            for s in (0, 1) for m, acc in (("window end", 0.4), ("RELEX-style", 0.8), ("AlphaRL-style", 0.6))]
    out = extrapolation.summary(rows, retention=0.96)
    assert out["RELEX-style @ 10"]["ratio"]["mean"] == pytest.approx(1.0)
    assert out["RELEX-style @ 10"]["steps_saved"] == pytest.approx(0.75)
    assert out["AlphaRL-style @ 10"]["ratio"]["mean"] == pytest.approx(0.75)
    assert out["AlphaRL-style @ 10"]["steps_saved"] == 0.0
    assert out["window end @ 10"]["steps_saved"] is None
    assert out["window end @ 10"]["ratio"]["mean"] == pytest.approx(0.5)
