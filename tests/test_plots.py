"""Figures: the properties a reader relies on, asserted on the returned matplotlib Figures (threshold
lines at the claims' values with their passing side, readers' labels, bars at 0 still visible, captions)."""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from figure_payloads import CAPTION, payloads
from rlvr_lowrank.analysis import power_law
from rlvr_lowrank.claims import c0, c1, c3, verdict
from rlvr_lowrank.figures import figure_data, plots


def _hlines(ax):
    return {round(float(line.get_ydata()[0]), 6) for line in ax.get_lines()
            if len(set(np.atleast_1d(line.get_ydata()))) == 1 and len(line.get_xdata()) == 2}


def _vlines(ax):
    return {round(float(line.get_xdata()[0]), 6) for line in ax.get_lines()
            if len(set(np.atleast_1d(line.get_xdata()))) == 1 and len(line.get_ydata()) == 2}


def _marks(ax):
    return np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])


def _texts(fig):
    out = [t.get_text() for t in fig.texts] + [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    if fig._suptitle is not None:
        out.append(fig._suptitle.get_text())
    for ax in fig.axes:
        leg = ax.get_legend()
        out += [t.get_text() for t in (leg.get_texts() if leg else [])]
        out += [t.get_text() for t in ax.get_xticklabels()] + [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts]
    return out


@pytest.fixture(scope="module")
def data():
    return payloads()


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


@pytest.mark.parametrize("name", list(figure_data.DRAW))
def test_every_figure_draws_from_its_data_with_its_caption(name, data):
    fig = figure_data.draw(name, data[name])
    texts = _texts(fig)
    assert any(CAPTION in t for t in texts)  # profile, model, steps, seeds
    assert not any(x in t for t in texts for x in ("pr1s_trunc", "test_acc", "train_acc", "normmatch"))


def test_recovery_bars_mark_zero_bars_and_draw_c0_thresholds(data):
    fig = figure_data.draw("fig01_rank1_dominance", data["fig01_rank1_dominance"])
    ax = fig.axes[0]
    assert (_marks(ax)[:, 1] == 0).sum() >= 2  # base and random at 0 carry a visible mark
    t = c0.THRESHOLDS
    assert {t["min_recovery"], t["min_recovery_ci_lo"], t["max_random_recovery"]} <= _hlines(ax)
    assert "recovery" in ax.get_ylabel() and any("control" in x for x in _texts(fig))


def test_reward_curves_say_ema_shade_the_window_and_mark_substitutions(data):
    d = data["fig02_reward_overfitting"]
    fig = figure_data.draw("fig02_reward_overfitting", d)
    left, right = fig.axes[:2]
    assert f"EMA over {d['ema_span']} steps" in left.get_ylabel()
    assert {10.0} <= _vlines(left)  # the substitution at step 10 (K = 10, 20 steps)
    assert any("last quarter" in t for t in _texts(fig)) and "PR1S (K = 10, truncated)" in _texts(fig)
    assert not [line for line in right.get_lines() if len(line.get_xdata()) > 2 and line.get_linestyle() != "None"]


def test_fraction_bars_draw_the_c3_threshold_and_human_readings(data):
    fig = figure_data.draw("fig04_heavy_tailed_fraction", data["fig04_heavy_tailed_fraction"])
    assert c3.THRESHOLDS["min_fraction"] in _hlines(fig.axes[0])
    assert "entry-shuffled control" in _texts(fig)
    assert (_marks(fig.axes[0])[:, 1] == 0).sum() == 2  # the control's bars at 0, one per model


def test_alpha_per_matrix_in_model_order_with_the_base_on_top_and_the_test(data):
    fig = figure_data.draw("fig04_alpha_per_matrix", data["fig04_alpha_per_matrix"])
    top, bottom = fig.axes[:2]
    assert {power_law.ALPHA_HT_LO, power_law.ALPHA_HT_HI} <= _hlines(top)
    base = [line for line in top.get_lines() if line.get_label() == "base model"][0]
    assert base.get_zorder() > max(line.get_zorder() for line in top.get_lines() if line is not base)
    assert np.all(np.diff(base.get_ydata()[:7]) > 0)  # q k v o gate up down of layer 0, not name order
    diff = np.concatenate([line.get_ydata() for line in bottom.get_lines() if len(line.get_ydata()) == 14])
    assert np.allclose(diff, 0.03)  # the second panel plots α(RL) − α(base) (mean of seeds 0.02, 0.04)
    texts = _texts(fig)
    assert "passes the pre-registered test" in texts and "band: min–max over seeds" in texts
    assert "layer" in bottom.get_xlabel()


def test_esd_panels_say_whether_each_was_judged_heavy_tailed(data):
    texts = _texts(figure_data.draw("fig04_esd_tails", data["fig04_esd_tails"]))
    assert "pre-registered test: heavy-tailed" in texts and "pre-registered test: not heavy-tailed" in texts


def test_sweep_gaps_draw_the_c1_thresholds(data):
    fig = figure_data.draw("fig02_sweep", data["fig02_sweep"])
    t = c1.THRESHOLDS
    assert t["min_reward_gap"] in _hlines(fig.axes[0])
    assert {-t["max_test_gap"], t["max_test_gap"]} <= _hlines(fig.axes[1])
    assert "95% t-interval (thin)" in _texts(fig) and any("decides C1" in x for x in _texts(fig))


def test_knowledge_panels_plot_what_the_verdict_reads(data):
    d = data["fig03_knowledge_loss"]
    fig = figure_data.draw("fig03_knowledge_loss", d)
    acc, drop, logp = fig.axes[:3]
    assert d["ceiling"] in _hlines(acc) and d["thresholds"]["min_knowledge_drop"] in _hlines(drop)
    assert "full − rank-1" in drop.get_ylabel() and "nats" in logp.get_ylabel()
    assert not acc.get_legend()  # the legend is the figure's, under the panels


def test_alignment_has_a_legend_entry_for_the_random_baseline(data):
    fig = figure_data.draw("fig05_alignment", data["fig05_alignment"])
    texts = _texts(fig)
    assert any("random baseline" in t for t in texts) and "Full RL" in texts
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) > 1 and panels[0].get_ylabel() and not any(ax.get_ylabel() for ax in panels[1:])


def test_claims_overview_small_multiples_with_threshold_directions(data):
    fig = figure_data.draw("fig07_claims_overview", data["fig07_claims_overview"])
    rows = data["fig07_claims_overview"]["rows"]
    assert len(fig.axes) == len(rows)  # one panel (own scale) per quantity
    assert {*verdict.CLASSES, "threshold"} <= set(_texts(fig)) and "does not hold" not in _texts(fig)
    assert 0.02 in _vlines(fig.axes[0]) and {-0.05, 0.05} <= _vlines(fig.axes[1])
    assert any("holds at ≥ 0.02" in t for t in _texts(fig))


def test_pls_boxes_clip_outliers_and_say_so(data):
    fig = figure_data.draw("fig06_pls_r2", data["fig06_pls_r2"])
    assert fig.axes[0].get_ylim()[0] > -2  # an R² of −6 does not squash the boxes
    texts = _texts(fig)
    assert any("not drawn: 5 time points" in t for t in texts)  # leave-one-out on 5 points is not drawn
    assert any("below -1" in t and "min -6.0" in t for t in texts)


def test_a_pls_panel_with_no_finite_r2_says_why_it_is_empty():
    """A signal evaluated at too few steps (smollm2's test accuracy: 2 points in a window) has no R² at all;
    its panel says so instead of standing empty."""
    rows = [{"signal": s, "type": t, "seed": 0, "T": T, "r2": r2, "r2_loo": r2}
            for s, T, r2 in (("test accuracy", 2, float("nan")), ("training reward", 20, 0.7))
            for t in ("q_proj", "down_proj")]
    fig = plots.pls_r2_boxes(pd.DataFrame(rows))
    empty = [t.get_text() for t in fig.axes[0].texts]
    assert any("no R² to draw" in t and "2 time points" in t for t in empty)
    assert "(2 time points)" in fig.axes[0].get_title()
    assert not any("no R² to draw" in t.get_text() for t in fig.axes[1].texts)


def test_extrapolation_draws_no_lines_between_windows(data):
    fig = figure_data.draw("fig06_extrapolation", data["fig06_extrapolation"])
    lines = [line for line in fig.axes[0].get_lines() if len(line.get_xdata()) > 2]
    assert all(line.get_linestyle() == "None" for line in lines)
    assert 0.96 in _hlines(fig.axes[0])


@pytest.mark.parametrize("variant_col", [True, False])
def test_recovery_vs_rank_marks_the_norm_matched_model_and_thresholds(variant_col):
    rec = pd.DataFrame([{"task": task, "k": k, "seed": s, "recovery": 0.9 + 0.01 * s, "variant": v}
                        for task in ("math", "skill") for s in (0, 1)
                        for k, v in ((1, "truncated"), (2, "truncated"), (1, "norm-matched"))])
    if not variant_col:
        rec = rec[rec["variant"] == "truncated"].drop(columns="variant")
    fig = plots.recovery_vs_rank(rec, thresholds={"math ≥ 0.8": 0.8})
    assert 0.8 in _hlines(fig.axes[0])
    assert any("norm-matched" in t for t in _texts(fig)) == variant_col
    assert "threshold: math ≥ 0.8" in _texts(fig) and not fig.axes[0].texts  # labels in the legend, not on lines


def test_a_quantity_is_coloured_by_its_own_condition_not_by_its_claims_verdict():
    claim = {"verdict": "refuted", "decided_by": {"class": "refuted", "conditions": [
        {"class": "holds", "quantity": "math recovery"},
        {"class": "refuted", "quantity": "a drop", "conditions": [
            {"class": "refuted", "quantity": "fact drop"}, {"class": "untestable here", "quantity": "skill drop"}]}]}}
    assert plots.condition_class(claim, "math recovery") == "holds"
    assert plots.condition_class(claim, "skill drop") == "untestable here"
    assert plots.condition_class(claim, "not a condition") == "refuted"  # falls back to the claim's class


def test_caption_names_profile_model_steps_and_seeds():
    design = {"model": "smollm2-gguf", "steps": 20, "full": {"seeds": [0, 1, 2]}}
    assert plots.caption("smollm2", design=design) == ("profile smollm2 · model SmolLM2-135M-Instruct · 20 GRPO steps "
                                                       "· 3 seeds (0, 1, 2)")
