"""The C0/C3 readings measured on runs (claims/readings_weights.py), on fake runs with known updates."""
import numpy as np
import pytest
import torch

from fake_runs import perturbed_tiny_run, write_run
from rlvr_lowrank import fileio, models
from rlvr_lowrank.analysis import targets
from rlvr_lowrank.claims import readings, readings_weights
from rlvr_lowrank.training import runs


def _planted_rank1_run(path, seed):
    """A finished run whose every target update is exactly rank 1 (σ1 u vᵀ with unit u, v)."""
    base, _ = models.load_model()
    g = torch.Generator().manual_seed(seed)
    final = {}
    for n, t in base.state_dict().items():
        if n in targets.target_names(base.state_dict()):
            u, v = torch.randn(t.shape[0], generator=g), torch.randn(t.shape[1], generator=g)
            t = t + 0.05 * torch.outer(u / u.norm(), v / v.norm())
        final[n] = t
    run = write_run(path, config={"model": "data/models/tiny-base", "identity": {"base_model": "same"}})
    fileio.save_tensors(run / "final" / "model.safetensors", {n: t.clone() for n, t in final.items()
                                                              if n != "lm_head.weight"})
    return run


def test_rank1_share_is_one_for_a_planted_rank1_update_and_below_for_a_dense_one(tmp_path):
    planted = readings_weights.rank1_share(_planted_rank1_run(tmp_path / "r1", 0))
    assert planted["e1"]["mean"] == pytest.approx(1.0, abs=1e-9)
    assert planted["sigma1_over_fro"]["mean"] == pytest.approx(1.0, abs=1e-9)
    dense = readings_weights.rank1_share(perturbed_tiny_run(tmp_path / "dense", 0, "same"))
    assert dense["e1"]["mean"] < 0.2  # Gaussian noise spreads its energy over all directions


def test_c3_arm_equals_c3_reading_per_seed_and_says_no_null_arm(tmp_path, monkeypatch):
    by_seed = {s: perturbed_tiny_run(tmp_path / f"s{s}", s, "same") for s in (0, 1)}
    monkeypatch.setattr(runs, "require_run", lambda profile, arm, seed: by_seed[seed])
    full_state = models.load_model()[0].state_dict()
    keep = targets.target_names(full_state)[:2]  # two matrices keep the power-law fits to seconds
    base_state = {n: t for n, t in full_state.items() if n in keep}
    base = {n: base_state[n].double().numpy() for n in keep}
    fits = {n: readings.base_fit(w) for n, w in base.items()}  # computed once, shared by arms and seeds
    arm = readings_weights.c3_arm("smoke", "full", [0, 1], base, fits)
    names = keep
    for s, run in by_seed.items():
        final = runs.final_weights(run)
        direct = readings.c3_reading({n: base_state[n].double().numpy() for n in names},
                                     {n: final[n].double().numpy() for n in names})
        assert arm["per_seed"][s]["delta_alpha"]["mean"] == pytest.approx(direct["delta_alpha"]["mean"])
    assert arm["mean_delta_alpha"]["n"] == 2
    assert np.isfinite(arm["rel_update_median"]["mean"]) and arm["rel_update_median"]["mean"] > 0
    monkeypatch.setattr(readings_weights.null_arm, "null_experiment", lambda profile: None)
    monkeypatch.setattr(readings_weights.paths, "report_dir", lambda profile: tmp_path / "reports")
    out = readings_weights.c3_readings("smoke", ["full"], [0, 1], base_state)
    assert out["null_arm"]["null"] == "no null arm"
    assert fileio.read_json(tmp_path / "reports" / "readings_c3.json")["by_arm"]["full"]["mean_delta_alpha"]["n"] == 2
    assert any("no null arm" in line for line in readings_weights.lines(out))
    gof = out["goodness_of_fit"]
    assert gof["base"]["n_matrices"] == gof["rl"]["n_matrices"] == 2 and gof["rl"]["seed"] == 0
    assert all(0 <= gof[k][f] <= 1 for k in ("base", "rl") for f in ("fraction_plausible", "fraction_heavy"))
    assert any("CSN goodness of fit" in line for line in readings_weights.lines(out))
