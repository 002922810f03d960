"""`python -m rlvr_lowrank figures`: figures redrawn from reports/<profile>/figure_data/ (or the claims' results),
without runs; a figure whose data is missing is named with the notebook that writes it."""
import json

from figure_payloads import payloads
from rlvr_lowrank import cli
from rlvr_lowrank.figures import figure_data


def test_redraw_round_trip_and_missing_data_named(tmp_path, capsys):
    reports, out = tmp_path / "reports", tmp_path / "figures"
    data = payloads()
    figure_data.write("tiny", "fig06_pls_r2", data["fig06_pls_r2"], report_dir=reports)
    # no figure data for C3's fraction: drawn from c3.json as the claim stored it
    (reports / "c3.json").write_text(json.dumps({"seeds": [0, 1], "models": {
        "base": {"strict": {"mean": 0.6, "ci": [0.6, 0.6]}, "shuffled": {"mean": 0.0, "ci": [0.0, 0.0]}},
        "full": {"strict": {"mean": 0.7, "ci": [0.6, 0.8]}}, "smollm2": {"strict": 0.01, "n": 210}}}))
    out.mkdir()
    (out / "fig05_alignment.png").write_bytes(b"")  # a figure of this profile whose data is absent
    rc = cli.main(["figures", "--profile", "tiny", "--reports", str(reports), "--out", str(out), "--strict"])
    printed = capsys.readouterr().out
    assert rc == 1
    assert {p.name for p in out.glob("*.png") if p.stat().st_size} == {
        "fig06_pls_r2.png", "fig04_heavy_tailed_fraction.png"}
    assert "drew fig04_heavy_tailed_fraction from" in printed and "c3.json" in printed
    assert "missing fig05_alignment" in printed and "notebooks/05_alignment.ipynb" in printed
    stored = json.loads((reports / "figure_data" / "fig06_pls_r2.json").read_text())
    assert stored["figure"] == "fig06_pls_r2" and stored["profile"] == "tiny" and stored["caption"]


def test_identical_seeds_draw_zero_length_error_bars():
    """Three seeds with the same accuracy (0.7): their mean differs from their min in the last bit, which made
    matplotlib refuse the bars ('yerr must not contain negative values'); style.error_bars clips at 0."""
    import numpy as np
    import pandas as pd

    from rlvr_lowrank.figures.style import error_bars

    same = pd.Series([0.7, 0.7, 0.7])
    assert same.mean() - same.min() < 0  # the rounding this guards against
    low, high = error_bars(same.mean(), same.min(), same.max())
    assert low == 0 and high >= 0
    low, high = error_bars([1.0, 1.0], [2.0, 0.5], [3.0, 1.25])  # a low end above the centre: no negative length
    assert np.allclose(low, [0.0, 0.5]) and np.allclose(high, [2.0, 0.25])
    data = payloads()["fig02_reward_overfitting"]
    evals = [{**e, **{k: 0.7 for k in e if k.endswith("_acc")}} for e in data["evals"]]
    figure_data.draw("fig02_reward_overfitting", {**data, "evals": evals})
