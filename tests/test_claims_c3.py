"""C3: counting heavy-tailed matrices, the per-model table, the verdict on the first arm, c3.json."""
import pandas as pd
import pytest
import torch

from fake_runs import write_run
from rlvr_lowrank import fileio
from rlvr_lowrank.claims import FAILS, HOLDS, INCONCLUSIVE, c3


def _table(heavy, reliable, alpha, suffix=""):
    return pd.DataFrame({f"heavy_tailed{suffix}": heavy, f"reliable{suffix}": reliable, f"alpha{suffix}": alpha})


def test_heavy_tail_fractions_counts_rows():
    f = c3.heavy_tail_fractions(_table([True, False, True, True], [True, True, True, False], [2.0, 7.0, 5.0, 3.0]))
    assert f == {"strict": 0.75, "ww_band": 0.5, "reliable": 0.75, "median_alpha": 4.0, "n": 4}


def _full_table(strict):
    """An analyze_model-like table whose strict fraction is ``strict`` of 4 matrices (shuffled: none, ΔW: all)."""
    k = int(strict * 4)
    heavy = [True] * k + [False] * (4 - k)
    t = pd.concat([_table(heavy, [True] * 4, [3.0] * 4),
                   _table([False] * 4, [True] * 4, [9.0] * 4, "_shuffled"),
                   _table([True] * 4, [True] * 4, [2.0] * 4, "_delta")], axis=1)
    return t.assign(rel_update=[1e-3, 2e-3, 3e-3, 4e-3])


def test_measure_and_decide_take_the_verdict_on_the_first_arm():
    tables = {("full", s): _full_table(1.0) for s in range(3)} | {("pr1s", s): _full_table(0.25) for s in range(3)}
    fractions = c3.measure(_full_table(0.5), tables)
    assert list(fractions["model"]) == ["base"] + ["full"] * 3 + ["pr1s"] * 3
    assert fractions.loc[0, "strict"] == 0.5 and pd.isna(fractions.loc[0, "ΔW"])
    assert (fractions.loc[1:, "ΔW"] == 1.0).all() and (fractions["shuffled"] == 0.0).all()
    res = c3.decide("smoke", ["full", "pr1s"], [0, 1, 2], fractions)
    assert res.verdict == HOLDS and res.fraction_rl["mean"] == 1.0
    assert res.models["pr1s"]["strict"]["mean"] == 0.25 and set(res.models["base"]) == set(c3.READINGS)
    # the update's own spectrum: every ΔW fit heavy-tailed, α 2, median ‖ΔW‖/‖W‖ 2.5e-3; none for the base
    delta = res.models["full"]["delta"]
    assert delta["ΔW"]["mean"] == 1.0 and delta["delta_median_alpha"]["mean"] == 2.0
    assert delta["rel_update_median"]["mean"] == pytest.approx(2.5e-3) and "delta" not in res.models["base"]
    other = c3.decide("smoke", ["pr1s", "full"], [0, 1, 2], fractions)
    # 0.25 of the table's matrices, above the shuffled control's 0 and with a Wilson interval below 0.9
    assert other.verdict_two_valued == FAILS and other.verdict == "below threshold"
    assert res.n_matrices == len(_full_table(1.0)) == other.n_matrices
    assert c3.C3Result.from_json(res.to_json()) == res


def test_verdict_c3_threshold_and_seed_rule():
    assert c3.verdict([0.95, 0.92, 0.97])["verdict"] == HOLDS
    assert c3.verdict([0.7, 0.6, 0.65])["verdict"] == FAILS
    assert c3.verdict([0.95, 0.95])["verdict"] == INCONCLUSIVE


def test_run_spectra_refuses_weights_of_another_base(tmp_path):
    run = write_run(tmp_path / "run")
    fileio.save_tensors(run / "final" / "model.safetensors", {"model.layers.9.mlp.up_proj.weight": torch.zeros(4, 4)})
    with pytest.raises(ValueError, match="tensors the base model lacks"):
        c3.run_spectra(run, {"model.layers.0.mlp.up_proj.weight": torch.zeros(4, 4)})
