"""Figures: the properties a reader relies on, asserted on the returned matplotlib Figures (threshold
lines at the claims' values, readers' labels, bars at 0 still visible)."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from rlvr_lowrank.analysis import power_law
from rlvr_lowrank.claims import c1, c3, verdict
from rlvr_lowrank.figures import plots


def _hlines(ax):
    return {round(float(line.get_ydata()[0]), 6) for line in ax.get_lines()
            if len(set(np.atleast_1d(line.get_ydata()))) == 1 and len(line.get_xdata()) == 2}


def _marks(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])


def _texts(fig):
    out = []
    for ax in fig.axes:
        leg = ax.get_legend()
        out += [t.get_text() for t in (leg.get_texts() if leg else [])]
        out += [t.get_text() for t in ax.get_xticklabels()] + [ax.get_title()]
    return out


def test_bars_at_zero_are_marked_and_labels_are_for_readers():
    fig = plots.bars({"base": 0.0, "random": 0.0, "normmatch": 0.7, "full": 0.8}, xlabel="model")
    ax = fig.axes[0]
    assert (_marks(ax)[:, 1] == 0).sum() == 2  # both zero bars carry a visible mark
    assert ax.get_xlabel() == "model"
    assert not any("_" in t or t == "normmatch" for t in _texts(fig))


def test_fraction_bars_draw_the_c3_threshold_and_human_readings():
    summary = pd.DataFrame([{"model": m, "reading": r, "value": v, "ci_lo": v, "ci_hi": v}
                            for m in ("base", "full")
                            for r, v in (("strict", 0.6), ("ww_band", 0.9), ("shuffled", 0.0))])
    fig = plots.fraction_bars(summary, threshold=c3.THRESHOLDS["min_fraction"])
    assert c3.THRESHOLDS["min_fraction"] in _hlines(fig.axes[0])
    texts = _texts(fig)
    assert "entry-shuffled control" in texts and not any("_" in t for t in texts)
    assert (_marks(fig.axes[0])[:, 1] == 0).sum() == 2  # the control's bars at 0, one per model


def test_alpha_per_matrix_shows_the_test_band_and_the_differences():
    rows = [{"model": m, "seed": 0, "index": i, "alpha": 3.0 + 0.01 * i + (0.02 if m != "base" else 0)}
            for m in ("base", "full", "pr1s_trunc_k10") for i in range(5)]
    fig = plots.alpha_by_matrix(pd.DataFrame(rows))
    top, bottom = fig.axes[:2]
    assert {power_law.ALPHA_HT_LO, power_law.ALPHA_HT_HI} <= _hlines(top) and 2.0 not in _hlines(top)
    diff = np.concatenate([line.get_ydata() for line in bottom.get_lines() if len(line.get_ydata()) == 5])
    assert np.allclose(diff, 0.02)  # the second panel plots α(RL) − α(base)
    assert "PR1S (K = 10, truncated)" in _texts(fig)


def test_sweep_gaps_draw_the_c1_thresholds():
    sweep = pd.DataFrame([{"arm": a, "K": k, "variant": "trunc", "metric": m, "mean": 0.03, "ci_lo": 0.02,
                           "ci_hi": 0.04, "t_lo": 0.0, "t_hi": 0.06}
                          for a, k in (("pr1s_trunc_k10", 10), ("pr1s_trunc_k5", 5))
                          for m in ("reward_gap", "test_gap")])
    t = c1.THRESHOLDS
    fig = plots.sweep_gaps(sweep, thresholds={"reward_gap": (t["min_reward_gap"],),
                                              "test_gap": (-t["max_test_gap"], t["max_test_gap"])})
    assert t["min_reward_gap"] in _hlines(fig.axes[0])
    assert {-t["max_test_gap"], t["max_test_gap"]} <= _hlines(fig.axes[1])
    assert "95% t-interval" in _texts(fig) and not any("_" in x for x in _texts(fig))


def test_alignment_has_a_legend_entry_for_the_random_baseline():
    table = pd.DataFrame([{"arm": "full", "seed": 0, "step": s, "side": side, "cos_final": 0.5, "baseline": 0.1}
                          for s in range(3) for side in ("u", "v")])
    texts = _texts(plots.alignment_curves(table))
    assert any("random baseline" in t for t in texts) and "Full RL" in texts


def test_claims_overview_has_a_verdict_legend_and_threshold_marks():
    report = {"claims": [{"id": "C3", "verdict": "below threshold",
                          "measured": [{"quantity": "fraction", "mean": 0.68, "ci": [0.6, 0.7], "t_ci": [0.5, 0.8],
                                        "n": 3, "thresholds": [0.9]}]}]}
    fig = plots.claims_overview(report)
    texts = _texts(fig)
    assert {*verdict.CLASSES, "threshold"} <= set(texts)  # every class of the vocabulary, none of the old words
    assert "does not hold" not in texts
    assert any(line.get_marker() == "|" and line.get_xdata()[0] == 0.9 for line in fig.axes[0].get_lines())


def test_pls_boxes_are_not_clipped_and_labels_are_for_readers():
    pls = pd.DataFrame([{"signal": "u1", "type": t, "seed": 0, "r2": 0.5, "r2_loo": -3.0}
                        for t in ("q_proj", "k_proj")])
    fig = plots.pls_r2_boxes(pls)
    assert fig.axes[0].get_ylim()[0] < -3.0
    assert "leave-one-out R²" in _texts(fig) and not any("_" in t for t in _texts(fig))


@pytest.mark.parametrize("variant_col", [True, False])
def test_recovery_vs_rank_marks_the_norm_matched_model_and_thresholds(variant_col):
    rec = pd.DataFrame([{"task": task, "k": k, "seed": 0, "recovery": 0.9, "variant": v}
                        for task in ("math", "skill")
                        for k, v in ((1, "truncated"), (2, "truncated"), (1, "norm-matched"))])
    if not variant_col:
        rec = rec[rec["variant"] == "truncated"].drop(columns="variant")
    fig = plots.recovery_vs_rank(rec, thresholds={"math ≥ 0.8": 0.8})
    assert 0.8 in _hlines(fig.axes[0])
    assert any("norm-matched" in t for t in _texts(fig)) == variant_col


def test_a_quantity_is_coloured_by_its_own_condition_not_by_its_claims_verdict():
    claim = {"verdict": "refuted", "decided_by": {"class": "refuted", "conditions": [
        {"class": "holds", "quantity": "math recovery"},
        {"class": "refuted", "quantity": "a drop", "conditions": [
            {"class": "refuted", "quantity": "fact drop"}, {"class": "untestable here", "quantity": "skill drop"}]}]}}
    assert plots.condition_class(claim, "math recovery") == "holds"
    assert plots.condition_class(claim, "skill drop") == "untestable here"
    assert plots.condition_class(claim, "not a condition") == "refuted"  # falls back to the claim's class
