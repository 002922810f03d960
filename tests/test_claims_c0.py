"""C0: recovery per seed from the accuracy rows, the verdict rule, c0.json and its README block."""
import math

import pytest

from fake_runs import perturbed_tiny_run
from rlvr_lowrank.claims import FAILS, HOLDS, INCONCLUSIVE, c0
from rlvr_lowrank.world import tasks


def _rows(seed, base, full, normmatch, random):
    return [{"seed": seed, "variant": v, "k": 1, "test_acc": a}
            for v, a in (("base", base), ("full", full), ("normmatch", normmatch), ("random", random))]


def test_recoveries_known_answer():
    rows = _rows(0, 0.2, 0.8, 0.5, 0.2) + _rows(1, 0.1, 0.6, 0.6, 0.35) + _rows(2, 0.3, 0.3, 0.3, 0.3)
    rec, gains = c0.recoveries(rows)
    assert gains == pytest.approx([0.6, 0.5, 0.0])
    assert rec["normmatch"][:2] == pytest.approx([0.5, 1.0])
    assert rec["random"][:2] == pytest.approx([0.0, 0.5])
    assert math.isnan(rec["normmatch"][2])  # seed 2 gained nothing: no recovery to speak of
    assert rec["full"][:2] == pytest.approx([1.0, 1.0]) and rec["base"][:2] == pytest.approx([0.0, 0.0])


def test_test_items_are_spread_over_the_test_split():
    items = c0.test_items(10)
    test = tasks.load_items("math", "test")
    assert len(items) == 10 and items[0] == test[0] and items[1] == test[len(test) // 10]


def test_c0_verdicts():
    good = {"normmatch": [0.95, 0.97, 0.99], "random": [0.0, 0.02, -0.01]}
    assert c0.verdict(good, [0.5, 0.5, 0.5])["verdict"] == HOLDS
    assert c0.verdict({**good, "random": [0.9, 0.95, 1.0]}, [0.5] * 3)["verdict"] == FAILS
    v = c0.verdict(good, [0.01, 0.02, 0.0])
    assert v["verdict"] == INCONCLUSIVE and "full-RL gain" in v["why"]
    assert c0.verdict({"normmatch": [1.0], "random": [0.0]}, [0.5])["why"] == "1 seed(s) < 3"


def test_decide_writes_the_c0_json_schema(tmp_path, monkeypatch):
    from rlvr_lowrank import fileio, paths

    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    monkeypatch.setattr(paths, "RUNS", tmp_path / "runs")  # no finished run: nothing to record
    rows = _rows(0, 0.2, 0.8, 0.77, 0.2) + _rows(1, 0.1, 0.6, 0.58, 0.1) + _rows(2, 0.2, 0.7, 0.7, 0.22)
    res = c0.decide("smoke", [0, 1, 2], rows)
    assert res.verdict == HOLDS and res.why.startswith("every condition holds") and res.verdict_two_valued == HOLDS
    assert res.recovery["normmatch"]["values"] == pytest.approx([0.95, 0.96, 1.0])
    res.write()
    d = fileio.read_json(tmp_path / "smoke" / "c0.json")
    assert set(d) == {"profile", "seeds", "accuracy", "recovery", "recovery_normmatch", "recovery_random", "gain",
                      "verdict", "verdict_bootstrap_only", "verdict_two_valued", "why", "runs"}
    assert d["runs"] == {}  # no finished run of the claim's arms under this RUNS: nothing recorded
    assert c0.C0Result.read("smoke").verdict == HOLDS
    block = c0.readme_block(res)
    assert "| rank-1, norm-matched | 0.970 |" in block and "≥ 0.9 with lower bound ≥ 0.75" in block


def test_measure_scores_a_shared_base_once_with_the_same_rows(tmp_path, monkeypatch):
    from rlvr_lowrank.training import runs
    from rlvr_lowrank.world import evaluate

    by_seed = {s: perturbed_tiny_run(tmp_path / f"seed{s}", s, "same") for s in (0, 1)}
    other = perturbed_tiny_run(tmp_path / "other", 2, "another")
    assert runs.same_base(by_seed.values()) and not runs.same_base([by_seed[0], other])
    items = c0.test_items(12)
    calls = []
    real = evaluate.greedy_accuracy
    monkeypatch.setattr(evaluate, "greedy_accuracy", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared = c0.measure(by_seed, items)
    assert len(calls) == 2 * len(c0.VARIANTS) - 1  # the base of seed 1 is not scored again
    monkeypatch.setattr(runs, "same_base", lambda run_dirs: False)
    assert c0.measure(by_seed, items) == shared  # the same rows as scoring every seed's base
