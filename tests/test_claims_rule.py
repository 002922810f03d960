"""The interval rule shared by every claim (both intervals must agree), the verdicts recomputed from
stored summaries, and the sensitivity flags (fragile readings, ceilings, recoveries above 1)."""
import pytest

from rlvr_lowrank import claims, fileio, paths
from rlvr_lowrank.claims import FAILS, HOLDS, INCONCLUSIVE, base, c1, c2, c3, c4, report
from rlvr_lowrank.claims.verdict import UNTESTABLE


def _s(mean, ci, t_ci, n=3):
    return {"mean": mean, "ci": list(ci), "t_ci": list(t_ci), "n": n, "values": []}


def test_both_intervals_holds_fails_or_inconclusive():
    assert base.both_intervals(lambda k: True)["verdict"] == HOLDS
    assert base.both_intervals(lambda k: False)["verdict"] == FAILS
    v = base.both_intervals(lambda k: k == "ci")
    assert v["verdict"] == INCONCLUSIVE and v["verdict_bootstrap_only"] == HOLDS and "t-interval" in v["why"]


def test_c1_bootstrap_excludes_zero_t_includes_it_is_inconclusive():
    # the committed tiny numbers: Δreward 0.038, bootstrap [0.021, 0.056], t [-0.007, 0.082]
    s = {"reward_gap": _s(0.038, (0.021, 0.056), (-0.007, 0.082)),
         "test_gap": _s(-0.006, (-0.02, 0.01), (-0.043, 0.032))}
    v = c1.judge(s)
    assert v["verdict"] == INCONCLUSIVE and v["verdict_bootstrap_only"] == HOLDS and v["lower_reward"] is False
    s["reward_gap"]["t_ci"] = [0.01, 0.07]
    assert c1.judge(s)["verdict"] == HOLDS


def test_c1_verdict_from_seed_values_applies_the_rule():
    v = c1.verdict([0.02, 0.04, 0.055], [0.0, 0.01, -0.01])
    assert v["reward_gap"]["ci"][0] > 0 > v["reward_gap"]["t_ci"][0]
    assert v["verdict"] == INCONCLUSIVE and v["verdict_bootstrap_only"] == HOLDS


def test_a_mean_threshold_keeps_its_rule():
    s = {"fraction_rl": _s(0.95, (0.94, 0.96), (0.5, 1.4))}
    assert c3.judge(s)["verdict"] == HOLDS == c3.judge(s)["verdict_bootstrap_only"]


def test_c4_swapped_reading_flips_and_is_flagged():
    rows = [{"arm": "full", "seed": s, "u_minus_v": -0.08 - 0.005 * s, "u_minus_baseline": 0.8,
             "v_cos_final": 0.95, "v_baseline": 0.1} for s in range(3)]
    res = c4.decide("smoke", ["full"], [0, 1, 2], rows).to_json()
    assert res["verdict_two_valued"] == FAILS and c4.swapped(rows)["verdict"] == HOLDS
    assert res["verdict"] == c4.classify(res).klass == "refuted"  # every interval of u − v below 0: the opposite way
    assert base.sensitivity(c4, res) == ["under y = xW (sides swapped) v − u = 0.085 and the verdict is 'holds'"]


def test_c1_sweep_arm_that_differs_is_flagged():
    def rows(arm, gap):
        return [{"arm": arm, "metric": "reward_gap", "mean": gap, "ci_lo": gap - 0.01, "ci_hi": gap + 0.01,
                 "t_lo": gap - 0.015, "t_hi": gap + 0.015, "n": 3},
                {"arm": arm, "metric": "test_gap", "mean": 0.0, "ci_lo": -0.01, "ci_hi": 0.01, "t_lo": -0.02,
                 "t_hi": 0.02, "n": 3}]
    res = {"pr1s": "pr1s_trunc_k10", "reward_gap": _s(0.05, (0.04, 0.06), (0.035, 0.065)),
           "test_gap": _s(0.0, (-0.01, 0.01), (-0.02, 0.02)), "overfit_gap": _s(0.2, (0.1, 0.3), (0.08, 0.32)),
           "sweep": rows("pr1s_trunc_k10", 0.05) + rows("pr1s_trunc_k20", 0.0)}
    assert base.rejudge(c1, res)["verdict"] == HOLDS
    # K = 20: Δreward 0.0 with every upper bound < 0.02 and a lower bound ≤ 0: no gap of the claimed size
    assert base.sensitivity(c1, res) == ["PR1S (K = 20, truncated) gives 'refuted'"]
    # an arm stored before the t-interval was kept is read with the bootstrap CI alone, and marked so
    old = [{k: v for k, v in r.items() if k not in ("t_lo", "t_hi")} for r in rows("pr1s_trunc_k5", 0.03)]
    assert c1.sweep_verdicts(old, res["overfit_gap"]) == {"pr1s_trunc_k5": "holds (bootstrap only)"}


def test_c1_is_untestable_unless_full_rl_overfit():
    """C1's precondition (claims.c1.overfit_precondition): Full RL's sampled train − test gap has mean ≥
    max_test_gap and both lower bounds > 0; otherwise, or when the runs never recorded it, untestable."""
    res = {"pr1s": "pr1s_trunc_k10", "reward_gap": _s(0.05, (0.04, 0.06), (0.035, 0.065)),
           "test_gap": _s(0.0, (-0.01, 0.01), (-0.02, 0.02)), "sweep": []}
    theta = c1.THRESHOLDS["max_test_gap"]
    cases = {"not recorded": None,
             "mean below": _s(theta - 0.01, (0.01, 0.2), (0.01, 0.2)),
             "bootstrap spans 0": _s(theta + 0.1, (-0.01, 0.3), (0.01, 0.3)),
             "t spans 0": _s(theta + 0.1, (0.01, 0.3), (-0.01, 0.3))}
    for label, gap in cases.items():
        v = c1.classify({**res, **({"overfit_gap": gap} if gap else {})})
        assert v.klass == UNTESTABLE, label
        assert "Full RL overfit" in v.reason, label
    assert c1.classify({**res, "overfit_gap": _s(theta, (0.001, 0.1), (0.001, 0.1))}).klass == HOLDS
    # the per-seed rows carry it only when every seed recorded sampled accuracies
    rows = [{"reward_gap": 0.05, "test_gap": 0.0, "overfit_gap_full": g} for g in (0.2, 0.3, 0.25)]
    assert c1.verdict_of_rows(rows)["overfit_gap"]["n"] == 3
    assert "overfit_gap" not in c1.verdict_of_rows(rows[:2] + [{"reward_gap": 0.05, "test_gap": 0.0}])


def test_c2_ceiling_probe_is_marked_unable_to_show_a_drop():
    scores = [{"seed": s, "model": m, "fact_acc": 1.0, "skill_acc": acc}
              for s in range(3) for m, acc in (("base", 0.8), ("full", 0.8), ("normmatch", 0.8), ("residual", 0.8))]
    assert "unable to show a drop" in c2.ceiling_checks({"scores": scores})["fact"]
    assert "skill" not in c2.ceiling_checks({"scores": scores})
    scores += [{"seed": s, "model": "residual", "fact_acc": 0.5, "skill_acc": 0.8} for s in range(3)]
    scores = [r for r in scores if not (r["model"] == "residual" and r["fact_acc"] == 1.0)]
    assert "can show a drop" in c2.ceiling_checks({"scores": scores})["fact"]


def test_recovery_above_one_is_explained():
    res = {"reading2": {"math_recovery": _s(1.83, (1.4, 2.3), (0.7, 3.0)),
                        "skill_recovery": _s(0.8, (0.6, 1), (0.4, 1.3))}}
    assert any("ratio of gains, not capped" in n for n in base.notes(c2, res))


def test_report_recomputes_a_stored_verdict_string(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    # a c1.json written under the earlier rule: its stored verdict says "holds"
    fileio.write_json(tmp_path / "smoke" / "c1.json", {"runs": {},
        "profile": "smoke", "pr1s": "pr1s_trunc_k10", "verdict": HOLDS, "sweep": [],
        "reward_gap": _s(0.038, (0.021, 0.056), (-0.007, 0.082)),
        "test_gap": _s(-0.006, (-0.02, 0.01), (-0.043, 0.032)), "overfit_gap": _s(0.2, (0.1, 0.3), (0.08, 0.32))})
    entry = report.claim_entry("C1", "smoke")
    assert entry["verdict"] == INCONCLUSIVE and entry["verdict_bootstrap_only"] == HOLDS
    assert entry["verdict_two_valued"] == INCONCLUSIVE and entry["measured"][0]["t_ci"] == [-0.007, 0.082]
    table = claims.results_table({"claims": [entry]})
    # the row quotes the quantity that decided (Δ training reward, whose t-interval spans θ) and no power,
    # since the summaries carry no per-seed values
    assert "| **inconclusive** | Δ training reward (Full − PR1S): 0.038, bootstrap [0.021, 0.056], t [-0.007, 0.082]" \
        in table
    history = report.rule_change_table({"profile": "smoke", "claims": [entry]})
    assert "holds → inconclusive → **inconclusive**" in history


def test_arm_labels_are_for_readers():
    assert base.arm_label("pr1s_trunc_k10") == "PR1S (K = 10, truncated)"
    assert base.arm_label("normmatch") == "rank-1, norm-matched"
    assert "_" not in base.arm_label("pr1s_normmatch_k5")


@pytest.mark.parametrize("profile", ["tiny-long"])
def test_committed_reports_are_judged_by_the_rule_in_force(profile):
    for cid, module in claims.MODULES.items():
        res = fileio.read_json(paths.REPORTS / profile / f"{cid.lower()}.json")
        v = base.rejudge(module, res)
        assert (v["verdict"] in (HOLDS, FAILS, INCONCLUSIVE)
                and v["verdict_bootstrap_only"] in (HOLDS, FAILS, INCONCLUSIVE))


@pytest.mark.parametrize("module", list(claims.MODULES.values()), ids=list(claims.MODULES))
def test_every_claim_module_satisfies_the_protocol(module):
    assert base.protocol_problems(module) == []


def test_the_protocol_check_names_what_is_missing():
    import types
    fake = types.ModuleType("rlvr_lowrank.claims.c9")
    fake.CLAIM, fake.RESULT, fake.judge = c1.CLAIM, c1.RESULT, 3
    problems = base.protocol_problems(fake)
    assert any("no decide" in p for p in problems) and any("no readme_block" in p for p in problems)
    assert any("no classify" in p for p in problems)
    fake.decide = fake.readme_block = fake.classify = lambda *a: None
    assert base.protocol_problems(fake) == ["rlvr_lowrank.claims.c9.judge is not callable"]
    fake.judge = lambda s: {"verdict": "x"}
    fake.RESULT = c2.RESULT
    assert base.protocol_problems(fake) == ["rlvr_lowrank.claims.c9.RESULT.FILE is 'c2.json', not c1.json"]


def test_the_hooks_default_to_the_rule_and_to_no_sentences():
    import types
    fake = types.ModuleType("c9")
    fake.judge = lambda s: {"verdict": "judged", "of": s}
    assert base.rejudge(fake, {"a": 1}) == {"verdict": "judged", "of": {"a": 1}}
    assert base.sensitivity(fake, {}) == [] and base.notes(fake, {}) == []
    fake.rejudge = lambda s: {"verdict": "own"}
    assert base.rejudge(fake, {})["verdict"] == "own"
