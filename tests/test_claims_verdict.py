"""The verdict vocabulary (claims/verdict.py): the rule for one condition, the two combinators, and one
case per cell of each claim's truth table in docs/claims.md ("Verdict vocabulary"), on constructed numbers.

The claim builders below (``c0`` … ``c4``) state each claim's conditions with the thresholds of its
module, as the tables do; the claim modules are wired to the same calls.
"""
import json
import math

import numpy as np
import pytest

from rlvr_lowrank.claims import power, verdict
from rlvr_lowrank.claims.verdict import (
    AT_LEAST,
    AT_MOST,
    BELOW,
    HOLDS,
    INCONCLUSIVE,
    REFUTED,
    UNTESTABLE,
    WITHIN,
    Precondition,
    all_of,
    any_of,
    judge_summary,
    judge_threshold,
)


def _s(mean, ci, t_ci=None, n=3, values=None):
    """A stats.summarize dict; the t-interval defaults to the bootstrap one widened by half its width."""
    if t_ci is None:
        w = (ci[1] - ci[0]) / 4
        t_ci = (ci[0] - w, ci[1] + w)
    return {"mean": mean, "ci": list(ci), "t_ci": list(t_ci), "n": n, "values": list(values or [])}


# ----------------------------------------------------------------------------------------------
# The claims' conditions, as in the tables (thresholds of claims.c0 … c4)
# ----------------------------------------------------------------------------------------------

def c0(rec, rand, gain_mean=0.5):
    r = judge_summary(rec, 0.9, AT_LEAST, bound=0.75, require_mean=True, quantity="norm-matched recovery")
    x = judge_summary(rand, 0.25, AT_MOST, strict=True, quantity="random-direction recovery")
    return all_of([r, x], [Precondition("a full-RL gain to recover", gain_mean >= 0.1, f"gain {gain_mean}")], "C0")


def c1(reward, test, revisit=True):
    w = judge_summary(reward, 0.02, AT_LEAST, bound=0.0, strict=True, require_mean=True, quantity="Δ reward")
    t = judge_summary(test, 0.05, WITHIN, bound=0.10, require_mean=True, quantity="Δ test")
    return all_of([w, t], [("a training prompt revisited", revisit)], "C1")


def c2_drop(s, axis, below_ceiling=True):
    return judge_summary(s, 0.05, AT_LEAST, bound=0.0, strict=True, require_mean=True, quantity=f"{axis} drop",
                         preconditions=[(f"{axis} below its ceiling", below_ceiling, "every model ≥ 0.98")])


def c2_reading1(math_rec, fact, skill, fact_ok=True, skill_ok=True):
    m = judge_summary(math_rec, 0.8, AT_LEAST, bound=None, require_mean=True, quantity="math recovery")
    loses = any_of([c2_drop(fact, "fact", fact_ok), c2_drop(skill, "skill", skill_ok)], "a drop")
    return all_of([m, loses], [], "C2 reading 1")


def c2_reading2(math_rec, skill_rec, gain):
    gained = all(gain[k][0] > 0 for k in ("ci", "t_ci"))
    m = judge_summary(math_rec, 0.8, AT_LEAST, bound=None, require_mean=True, quantity="math recovery")
    k = judge_summary(skill_rec, 0.5, AT_MOST, bound=None, require_mean=True, quantity="skill recovery")
    return all_of([m, k], [("skill gained", gained)], "C2 reading 2")


def c3(fraction, n_matrices=28, reference=0.0, values=None, n=5):
    return judge_threshold({"wilson": power.fraction_interval(fraction, n_matrices)}, 0.9, AT_LEAST, bound=None,
                           require_mean=True, mean=fraction, reference=reference,
                           values=values if values is not None else [fraction] * n, quantity="heavy-tailed fraction")


def c4(u_minus_v, u_minus_baseline):
    a = judge_summary(u_minus_v, 0.0, AT_LEAST, strict=True, quantity="u − v")
    b = judge_summary(u_minus_baseline, 0.0, AT_LEAST, strict=True, quantity="u − baseline")
    return all_of([a, b], [], "C4")


# Exemplars: a summary per (condition, class), each checked below to give its class
C0_R = {HOLDS: _s(0.95, (0.90, 1.00)), REFUTED: _s(0.30, (-0.10, 0.60)), BELOW: _s(0.50, (0.45, 0.55)),
        INCONCLUSIVE: _s(0.95, (0.80, 1.10), (0.70, 1.20))}
C0_R_INCONCLUSIVE_MEAN = _s(0.85, (0.80, 0.95), (0.76, 0.97))  # mean < 0.9, lower ≥ 0.75, an upper ≥ 0.9
C0_X = {HOLDS: _s(0.0, (0.0, 0.0), (0.0, 0.0)), REFUTED: _s(0.50, (0.40, 0.60)), INCONCLUSIVE: _s(0.20, (0.10, 0.30))}
C1_W = {HOLDS: _s(0.048, (0.031, 0.061), (0.024, 0.071)), REFUTED: _s(0.004, (-0.087, 0.015), (-0.2, 0.019)),
        BELOW: _s(0.0127, (0.0107, 0.016), (0.0056, 0.0199)), INCONCLUSIVE: _s(0.004, (-0.087, 0.100), (-0.229, 0.237))}
C1_T = {HOLDS: _s(0.001, (-0.011, 0.011), (-0.016, 0.018)), REFUTED: _s(0.20, (0.15, 0.25)),
        INCONCLUSIVE: _s(0.03, (-0.02, 0.08), (-0.05, 0.12))}
C1_T_REFUTED_OTHER_SIDE = _s(-0.20, (-0.25, -0.15))
DROP = {HOLDS: _s(0.10, (0.06, 0.14)), REFUTED: _s(-0.017, (-0.025, -0.011), (-0.029, -0.005)),
        BELOW: _s(0.02, (0.015, 0.025)), INCONCLUSIVE: _s(0.04, (0.0, 0.08), (-0.02, 0.10))}
MATH = {HOLDS: _s(0.92, (0.88, 0.96)), REFUTED: _s(0.1, (-0.2, 0.4)), BELOW: _s(0.5, (0.4, 0.6)),
        INCONCLUSIVE: _s(0.7, (0.5, 0.9))}
SKILL_REC = {HOLDS: _s(0.3, (0.2, 0.4)), REFUTED: _s(0.81, (0.78, 0.85), (0.72, 0.90)),
             INCONCLUSIVE: _s(0.84, (0.64, 0.96), (0.40, 1.29))}
GAIN_OK, GAIN_NONE = _s(0.16, (0.15, 0.17)), _s(0.01, (-0.02, 0.04))
C4_D = {HOLDS: _s(0.08, (0.07, 0.09)), REFUTED: _s(-0.083, (-0.087, -0.080), (-0.089, -0.078)),
        INCONCLUSIVE: _s(0.01, (-0.01, 0.03))}
UNTESTABLE_DROP = "untestable"  # a drop exemplar made untestable by its ceiling precondition


def _drop(cls):
    """(summary, precondition ok) of a C2 drop of class ``cls``."""
    return (DROP[HOLDS], False) if cls == UNTESTABLE else (DROP[cls], True)


@pytest.mark.parametrize("cls,s", list(C0_R.items()) + [(INCONCLUSIVE, C0_R_INCONCLUSIVE_MEAN)])
def test_c0_recovery_exemplars(cls, s):
    assert judge_summary(s, 0.9, AT_LEAST, bound=0.75, require_mean=True).klass == cls


@pytest.mark.parametrize("cls", C0_X)
def test_c0_random_control_exemplars(cls):
    assert judge_summary(C0_X[cls], 0.25, AT_MOST, strict=True).klass == cls


@pytest.mark.parametrize("cls", C1_W)
def test_c1_reward_exemplars(cls):
    assert c1(C1_W[cls], C1_T[HOLDS]).conditions[0].klass == cls


@pytest.mark.parametrize("cls,s", list(C1_T.items()) + [(REFUTED, C1_T_REFUTED_OTHER_SIDE)])
def test_c1_test_gap_exemplars(cls, s):
    assert c1(C1_W[HOLDS], s).conditions[1].klass == cls


@pytest.mark.parametrize("cls", [HOLDS, REFUTED, BELOW, INCONCLUSIVE, UNTESTABLE])
def test_c2_drop_exemplars(cls):
    s, ok = _drop(cls)
    assert c2_drop(s, "fact", ok).klass == cls


@pytest.mark.parametrize("table,cls", [(MATH, c) for c in MATH] + [(SKILL_REC, c) for c in SKILL_REC])
def test_c2_recovery_exemplars(table, cls):
    direction, theta = (AT_LEAST, 0.8) if table is MATH else (AT_MOST, 0.5)
    assert judge_summary(table[cls], theta, direction, bound=None, require_mean=True).klass == cls


@pytest.mark.parametrize("cls", C4_D)
def test_c4_difference_exemplars(cls):
    assert judge_summary(C4_D[cls], 0.0, AT_LEAST, strict=True).klass == cls


# ----------------------------------------------------------------------------------------------
# C0: gain precondition, recovery R, random control X; all of (R, X)
# ----------------------------------------------------------------------------------------------

ANY_R, ANY_X = list(C0_R), list(C0_X)


@pytest.mark.parametrize("r,x", [(r, x) for r in ANY_R for x in ANY_X])
def test_c0_no_gain_is_untestable(r, x):
    v = c0(C0_R[r], C0_X[x], gain_mean=0.03)
    assert v.klass == UNTESTABLE and v.precondition == "a full-RL gain to recover" and "gain 0.03" in v.reason


def test_c0_holds():
    assert c0(C0_R[HOLDS], C0_X[HOLDS]).klass == HOLDS


@pytest.mark.parametrize("x", ANY_X)
def test_c0_recovery_refuted_refutes(x):
    v = c0(C0_R[REFUTED], C0_X[x])
    assert v.klass == REFUTED and v.quantity == "norm-matched recovery"


@pytest.mark.parametrize("r", ANY_R)
def test_c0_random_control_refuted_refutes(r):
    assert c0(C0_R[r], C0_X[REFUTED]).klass == REFUTED


@pytest.mark.parametrize("x", [HOLDS, INCONCLUSIVE])
def test_c0_recovery_below_threshold(x):
    v = c0(C0_R[BELOW], C0_X[x])
    assert v.klass == BELOW and v.quantity == "norm-matched recovery" and v.value == pytest.approx(0.5)


@pytest.mark.parametrize("r", [C0_R[INCONCLUSIVE], C0_R_INCONCLUSIVE_MEAN])
@pytest.mark.parametrize("x", [HOLDS, INCONCLUSIVE])
def test_c0_recovery_inconclusive(r, x):
    assert c0(r, C0_X[x]).klass == INCONCLUSIVE


def test_c0_random_control_inconclusive():
    v = c0(C0_R[HOLDS], C0_X[INCONCLUSIVE])
    assert v.klass == INCONCLUSIVE and v.quantity == "random-direction recovery"


# ----------------------------------------------------------------------------------------------
# C1: revisit precondition, reward W, test T; all of (W, T)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("w,t", [(w, t) for w in C1_W for t in C1_T])
def test_c1_no_prompt_revisited_is_untestable(w, t):
    assert c1(C1_W[w], C1_T[t], revisit=False).klass == UNTESTABLE


def test_c1_holds():
    assert c1(C1_W[HOLDS], C1_T[HOLDS]).klass == HOLDS


@pytest.mark.parametrize("t", list(C1_T))
def test_c1_reward_refuted(t):
    assert c1(C1_W[REFUTED], C1_T[t]).klass == REFUTED


@pytest.mark.parametrize("w", list(C1_W))
@pytest.mark.parametrize("t", [C1_T[REFUTED], C1_T_REFUTED_OTHER_SIDE])
def test_c1_test_refuted(w, t):
    v = c1(C1_W[w], t)
    assert v.klass == REFUTED
    if w != REFUTED:
        assert v.quantity == "Δ test"


@pytest.mark.parametrize("t", [HOLDS, INCONCLUSIVE])
def test_c1_reward_below_threshold(t):
    """tiny-long: Δreward 0.013, t [0.006, 0.020]: an effect below the 0.02 threshold."""
    v = c1(C1_W[BELOW], C1_T[t])
    assert v.klass == BELOW and v.quantity == "Δ reward"


@pytest.mark.parametrize("t", [HOLDS, INCONCLUSIVE])
def test_c1_reward_inconclusive(t):
    assert c1(C1_W[INCONCLUSIVE], C1_T[t]).klass == INCONCLUSIVE


def test_c1_test_inconclusive():
    v = c1(C1_W[HOLDS], C1_T[INCONCLUSIVE])
    assert v.klass == INCONCLUSIVE and v.quantity == "Δ test"


def test_c1_smollm2_numbers_give_the_issue_mde():
    """smollm2: Δreward per seed 0.1, 0, −0.0875: MDE about 0.31, about 175 seeds for 0.02."""
    vals = [0.1, 0.0, -0.0875]
    s = {"mean": float(np.mean(vals)), "ci": [-0.0875, 0.1], "t_ci": [-0.2289, 0.2372], "n": 3, "values": vals}
    v = c1(s, C1_T[HOLDS])
    assert v.klass == INCONCLUSIVE and v.quantity == "Δ reward"
    assert v.mde == pytest.approx(0.306, abs=0.005) and 170 <= v.seeds_needed <= 180
    assert "MDE 0.306" in v.reason and "175 seeds needed for θ = 0.02" in v.reason


# ----------------------------------------------------------------------------------------------
# C2 reading 1: M, L = any of (F, S); all of (M, L)
# ----------------------------------------------------------------------------------------------

ALL5 = [HOLDS, REFUTED, BELOW, INCONCLUSIVE, UNTESTABLE]


def _loses(f, s):
    (fs, fok), (ss, sok) = _drop(f), _drop(s)
    return any_of([c2_drop(fs, "fact", fok), c2_drop(ss, "skill", sok)])


@pytest.mark.parametrize("s", ALL5)
def test_c2_loses_fact_holds(s):
    assert _loses(HOLDS, s).klass == HOLDS


@pytest.mark.parametrize("f", ALL5)
def test_c2_loses_skill_holds(f):
    assert _loses(f, HOLDS).klass == HOLDS


def test_c2_loses_both_untestable():
    v = _loses(UNTESTABLE, UNTESTABLE)
    assert v.klass == UNTESTABLE and v.precondition == "fact below its ceiling"


def test_c2_loses_an_untestable_axis_keeps_the_disjunction_from_being_refuted():
    """tiny: the knowledge probe at its ceiling cannot show a drop, so a skill axis that shows none does
    not refute "loses other knowledge": the claim is untestable there, naming the probe."""
    for s in (REFUTED, BELOW):
        v = _loses(UNTESTABLE, s)
        assert v.klass == UNTESTABLE and v.precondition == "fact below its ceiling"
        assert [c.klass for c in v.conditions] == [UNTESTABLE, s]
    assert _loses(UNTESTABLE, INCONCLUSIVE).klass == INCONCLUSIVE   # the skill axis could still show it


@pytest.mark.parametrize("s", [REFUTED, BELOW, INCONCLUSIVE])
def test_c2_loses_inconclusive(s):
    assert _loses(INCONCLUSIVE, s).klass == INCONCLUSIVE


@pytest.mark.parametrize("s", [REFUTED, BELOW])
def test_c2_loses_below(s):
    assert _loses(BELOW, s).klass == BELOW


def test_c2_loses_refuted():
    assert _loses(REFUTED, REFUTED).klass == REFUTED


def _reading1(m, loses):
    """Reading 1 with M of class ``m`` and L of class ``loses`` (via fact = that class, skill refuted, or
    both untestable / the fact drop holding)."""
    f, s = {HOLDS: (HOLDS, REFUTED), REFUTED: (REFUTED, REFUTED), BELOW: (BELOW, REFUTED),
            INCONCLUSIVE: (INCONCLUSIVE, REFUTED), UNTESTABLE: (UNTESTABLE, UNTESTABLE)}[loses]
    (fs, fok), (ss, sok) = _drop(f), _drop(s)
    return c2_reading1(MATH[m], fs, ss, fok, sok)


def test_c2_reading1_holds():
    assert _reading1(HOLDS, HOLDS).klass == HOLDS


@pytest.mark.parametrize("loses", ALL5)
def test_c2_reading1_math_refuted(loses):
    v = _reading1(REFUTED, loses)
    assert v.klass == REFUTED and v.quantity == "math recovery"


@pytest.mark.parametrize("m", [HOLDS, REFUTED, BELOW, INCONCLUSIVE])
def test_c2_reading1_loses_refuted(m):
    assert _reading1(m, REFUTED).klass == REFUTED


@pytest.mark.parametrize("loses", [HOLDS, BELOW, UNTESTABLE, INCONCLUSIVE])
def test_c2_reading1_math_below(loses):
    assert _reading1(BELOW, loses).klass == BELOW


@pytest.mark.parametrize("m", [HOLDS, INCONCLUSIVE])
def test_c2_reading1_loses_below(m):
    assert _reading1(m, BELOW).klass == BELOW


@pytest.mark.parametrize("m", [HOLDS, INCONCLUSIVE])
def test_c2_reading1_both_probes_untestable(m):
    assert _reading1(m, UNTESTABLE).klass == UNTESTABLE


@pytest.mark.parametrize("loses", [HOLDS, INCONCLUSIVE])
def test_c2_reading1_math_inconclusive(loses):
    assert _reading1(INCONCLUSIVE, loses).klass == INCONCLUSIVE


def test_c2_reading1_loses_inconclusive():
    assert _reading1(HOLDS, INCONCLUSIVE).klass == INCONCLUSIVE


def test_c2_reading1_tiny_numbers_untestable_at_the_fact_ceiling():
    """tiny: fact probe at ceiling (drop 0, sd 0), skill drop −0.017 with both intervals below 0: the skill
    axis shows no loss, the fact axis could not show one, so the claim is untestable here, not refuted."""
    v = c2_reading1(_s(0.919, (0.877, 0.962), (0.848, 0.990)), _s(0.0, (0.0, 0.0), (0.0, 0.0)),
                    _s(-0.0167, (-0.0253, -0.0107), (-0.0287, -0.0046)), fact_ok=False)
    assert v.klass == UNTESTABLE and v.precondition == "fact below its ceiling"
    assert [c.klass for c in v.conditions[1].conditions] == [UNTESTABLE, REFUTED]


# ----------------------------------------------------------------------------------------------
# C2 reading 2: skill gained, M2, K2; all of (M2, K2)
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m,k", [(m, k) for m in MATH for k in SKILL_REC])
def test_c2_reading2_no_skill_gain_is_untestable(m, k):
    v = c2_reading2(MATH[m], SKILL_REC[k], GAIN_NONE)
    assert v.klass == UNTESTABLE and v.precondition == "skill gained"


def test_c2_reading2_holds():
    assert c2_reading2(MATH[HOLDS], SKILL_REC[HOLDS], GAIN_OK).klass == HOLDS


@pytest.mark.parametrize("k", list(SKILL_REC))
def test_c2_reading2_math_refuted(k):
    assert c2_reading2(MATH[REFUTED], SKILL_REC[k], GAIN_OK).klass == REFUTED


@pytest.mark.parametrize("m", list(MATH))
def test_c2_reading2_skill_recovery_refuted(m):
    """tiny-long: skill recovery 0.81, both intervals above 0.5."""
    assert c2_reading2(MATH[m], SKILL_REC[REFUTED], GAIN_OK).klass == REFUTED


@pytest.mark.parametrize("k", [HOLDS, INCONCLUSIVE])
def test_c2_reading2_math_below(k):
    assert c2_reading2(MATH[BELOW], SKILL_REC[k], GAIN_OK).klass == BELOW


@pytest.mark.parametrize("k", [HOLDS, INCONCLUSIVE])
def test_c2_reading2_math_inconclusive(k):
    assert c2_reading2(MATH[INCONCLUSIVE], SKILL_REC[k], GAIN_OK).klass == INCONCLUSIVE


def test_c2_reading2_skill_inconclusive():
    assert c2_reading2(MATH[HOLDS], SKILL_REC[INCONCLUSIVE], GAIN_OK).klass == INCONCLUSIVE


# ----------------------------------------------------------------------------------------------
# C3: one fraction, Wilson interval over matrices
# ----------------------------------------------------------------------------------------------

def test_c3_over_seeds_reading_without_variation_is_untestable():
    vals = [0.6785714285714286, 0.6785714285714285, 0.6785714285714286]
    pre = verdict.varies_over_seeds(vals)
    assert not pre.ok and pre.numbers == "sd 0 over 3 seeds"
    v = judge_summary(_s(0.6786, (0.6786, 0.6786), (0.6786, 0.6786), values=vals), 0.9, bound=None,
                      require_mean=True, preconditions=[pre])
    assert v.klass == UNTESTABLE and v.precondition == "varies over seeds" and v.mde == power.NO_VARIATION


def test_c3_holds():
    assert c3(26 / 28).klass == HOLDS


def test_c3_below_threshold():
    """tiny: 19 of 28 matrices, Wilson [0.49, 0.82]: heavy tails in some matrices, not almost all."""
    v = c3(19 / 28)
    assert v.klass == BELOW and v.intervals["wilson"] == pytest.approx((0.4934, 0.8207), abs=1e-4)
    assert v.mde == power.NO_VARIATION and v.power_line() == "no variation over seeds"


@pytest.mark.parametrize("fraction,reference", [(0.0, 0.0), (19 / 28, 0.6)])
def test_c3_refuted(fraction, reference):
    """No matrix heavy-tailed, or no more than the entry-shuffled control gives."""
    assert c3(fraction, reference=reference).klass == REFUTED


def test_c3_inconclusive():
    v = c3(24 / 28)  # Wilson [0.685, 0.943] reaches 0.9
    assert v.klass == INCONCLUSIVE and v.intervals["wilson"][1] >= 0.9


# ----------------------------------------------------------------------------------------------
# C4: u − v (A), u − baseline (B); all of (A, B)
# ----------------------------------------------------------------------------------------------

def test_c4_holds():
    assert c4(C4_D[HOLDS], C4_D[HOLDS]).klass == HOLDS


@pytest.mark.parametrize("b", list(C4_D))
def test_c4_opposite_direction_is_refuted(b):
    """tiny: u − v = −0.083, t [−0.089, −0.078]: an effect in the opposite direction."""
    v = c4(C4_D[REFUTED], C4_D[b])
    assert v.klass == REFUTED and v.quantity == "u − v" and "opposite direction" in v.reason


@pytest.mark.parametrize("a", list(C4_D))
def test_c4_baseline_refuted(a):
    assert c4(C4_D[a], C4_D[REFUTED]).klass == REFUTED


@pytest.mark.parametrize("b", [HOLDS, INCONCLUSIVE])
def test_c4_u_minus_v_inconclusive(b):
    assert c4(C4_D[INCONCLUSIVE], C4_D[b]).klass == INCONCLUSIVE


def test_c4_baseline_inconclusive():
    v = c4(C4_D[HOLDS], C4_D[INCONCLUSIVE])
    assert v.klass == INCONCLUSIVE and v.quantity == "u − baseline"


def test_c4_has_no_below_threshold_and_no_seeds_needed():
    v = judge_summary(_s(-0.05, (-0.06, -0.04), values=[-0.06, -0.05, -0.04]), 0.0, strict=True)
    assert v.klass == REFUTED and v.seeds_needed is None and v.mde > 0


# ----------------------------------------------------------------------------------------------
# The rule itself
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("claim", ["c0", "c1", "c4"])
def test_fewer_than_three_seeds_is_inconclusive(claim):
    two = {k: _s(0.5, (0.4, 0.6), n=2) for k in "ab"}
    v = {"c0": lambda: c0(two["a"], C0_X[HOLDS]), "c1": lambda: c1(two["a"], C1_T[HOLDS]),
         "c4": lambda: c4(two["a"], C4_D[HOLDS])}[claim]()
    assert v.klass == INCONCLUSIVE and "2 seed(s) < 3" in v.reason


def test_min_seeds_is_the_claims_min_seeds():
    from rlvr_lowrank.claims import base

    assert verdict.MIN_SEEDS == base.MIN_SEEDS


def test_the_untestable_check_comes_before_the_seed_count():
    v = judge_summary(_s(0.5, (0.4, 0.6), n=1), 0.1, preconditions=[("probe below ceiling", False, "at 1.0")])
    assert v.klass == UNTESTABLE and v.reason == "precondition 'probe below ceiling' fails (at 1.0)"


def test_both_intervals_below_but_only_one_excludes_zero_is_refuted():
    v = judge_threshold({"ci": (0.005, 0.015), "t_ci": (-0.002, 0.018)}, 0.02, bound=0.0, strict=True)
    assert v.klass == REFUTED


def test_strictness_is_kept_at_the_bound():
    assert judge_threshold({"ci": (0.0, 0.1), "t_ci": (0.0, 0.1)}, 0.0, strict=True).klass == INCONCLUSIVE
    assert judge_threshold({"ci": (0.75, 1.0), "t_ci": (0.75, 1.0)}, 0.9, bound=0.75, mean=0.9,
                           require_mean=True).klass == HOLDS
    assert judge_threshold({"ci": (0.0, 0.25), "t_ci": (0.0, 0.25)}, 0.25, AT_MOST, strict=True).klass == INCONCLUSIVE


def test_a_nan_bound_meets_nothing_and_lies_nowhere():
    s = {"mean": 0.05, "ci": [0.03, 0.07], "n": 3, "values": []}  # no t-interval (a file written before it)
    assert judge_summary(s, 0.02, bound=0.0, strict=True, require_mean=True).klass == INCONCLUSIVE
    assert judge_summary(s, 0.02, bound=0.0, strict=True, require_mean=True, keys=("ci",)).klass == HOLDS


def test_within_reads_the_upper_end_for_holds_as_c1_does():
    """|mean| ≤ 0.05 and upper ≤ 0.10 holds even when a lower bound is far below −0.10 (C1's rule)."""
    v = judge_threshold({"ci": (-0.3, 0.05), "t_ci": (-0.4, 0.08)}, 0.05, WITHIN, bound=0.10, mean=-0.04,
                        require_mean=True)
    assert v.klass == HOLDS


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="direction"):
        judge_threshold({"ci": (0, 1)}, 0.5, "sideways")
    with pytest.raises(ValueError, match="bound or a rule on the mean"):
        judge_threshold({"ci": (0, 1)}, 0.5, bound=None)
    with pytest.raises(ValueError, match="needs the mean"):
        judge_threshold({"ci": (0, 1)}, 0.5, require_mean=True)
    with pytest.raises(ValueError):
        all_of([])
    with pytest.raises(ValueError):
        any_of([])


def test_combined_verdict_names_the_deciding_condition_once():
    v = _reading1(HOLDS, REFUTED)  # fact refuted (first), skill refuted
    assert v.quantity == "fact drop" and v.reason.count("fact drop") == 1
    assert [c.klass for c in v.conditions] == [HOLDS, REFUTED]


def test_to_json_is_plain_json():
    vals = [0.1, 0.0, -0.0875]
    v = c1({"mean": 0.004, "ci": [-0.0875, 0.1], "t_ci": [-0.229, 0.237], "n": 3, "values": vals}, C1_T[HOLDS])
    d = json.loads(json.dumps(v.to_json(), allow_nan=False))
    assert d["class"] == INCONCLUSIVE and d["quantity"] == "Δ reward" and d["seeds_needed"] > 100
    assert d["intervals"]["t_ci"] == [-0.229, 0.237] and len(d["conditions"]) == 2 and "MDE" in d["power"]
    nv = c3(19 / 28).to_json()
    assert nv["mde"] == power.NO_VARIATION and json.dumps(nv, allow_nan=False)
    one = judge_summary(_s(0.5, (0.4, 0.6), n=1, values=[0.5]), 0.1).to_json()  # MDE inf with one seed
    assert "mde" not in one and json.dumps(one, allow_nan=False)


# ----------------------------------------------------------------------------------------------
# "holds" is today's rule: the rules of c0.judge … c4.judge as they stood, on random summaries
# ----------------------------------------------------------------------------------------------

def _random_summary(rng, center, spread):
    lo_b, hi_b = sorted(rng.normal(center, spread, 2))
    w = abs(rng.normal(0, spread))
    lo_t, hi_t = lo_b - w * rng.random(), hi_b + w * rng.random()
    mean = lo_b + (hi_b - lo_b) * rng.random()
    return {"mean": mean, "ci": [lo_b, hi_b], "t_ci": [lo_t, hi_t], "n": 3, "values": []}


def _both(rule):
    return rule("ci") and rule("t_ci")


@pytest.mark.parametrize("claim", ["c0", "c1", "c2", "c4"])
def test_holds_is_exactly_the_earlier_rule(claim):
    rng = np.random.default_rng(7)
    agree = 0
    for _ in range(1500):
        if claim == "c0":
            rm, rr = _random_summary(rng, 0.85, 0.15), _random_summary(rng, 0.2, 0.1)
            old = _both(lambda k: rm["mean"] >= 0.9 and rm[k][0] >= 0.75 and rr[k][1] < 0.25)
            new = c0(rm, rr).klass == HOLDS
        elif claim == "c1":
            rg, tg = _random_summary(rng, 0.02, 0.02), _random_summary(rng, 0.0, 0.06)
            old = _both(lambda k: rg[k][0] > 0 and rg["mean"] >= 0.02 and abs(tg["mean"]) <= 0.05
                        and tg[k][1] <= 0.10)
            new = c1(rg, tg).klass == HOLDS
        elif claim == "c2":  # one axis at a time: the crossed case (each axis passing with one interval) is documented
            mr, fd = _random_summary(rng, 0.8, 0.2), _random_summary(rng, 0.05, 0.04)
            skill = _s(-0.5, (-0.6, -0.4))
            old = _both(lambda k: mr["mean"] >= 0.8 and fd["mean"] >= 0.05 and fd[k][0] > 0)
            new = c2_reading1(mr, fd, skill).klass == HOLDS
        else:
            a, b = _random_summary(rng, 0.03, 0.05), _random_summary(rng, 0.05, 0.05)
            old = _both(lambda k: a[k][0] > 0 and b[k][0] > 0)
            new = c4(a, b).klass == HOLDS
        assert old == new
        agree += old
    assert 50 < agree < 1450  # both outcomes exercised


def test_c3_holds_is_exactly_the_earlier_rule():
    for k in range(29):
        assert (c3(k / 28).klass == HOLDS) == (k / 28 >= 0.9)


def test_mde_is_given_for_every_class_with_values():
    v = judge_summary(_s(0.0127, (0.0107, 0.016), (0.0056, 0.0199), values=[0.0115, 0.016, 0.0107]), 0.02,
                      bound=0.0, strict=True, require_mean=True)
    assert v.klass == BELOW and math.isfinite(v.mde) and v.n == 3 and v.seeds_needed >= 2


# ----------------------------------------------------------------------------------------------
# The claim modules' classify() on the stored results of the tracked profiles
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["tiny", "tiny-long", "smollm2"])
def test_every_claim_classifies_the_stored_results_of_a_tracked_profile(profile):
    from rlvr_lowrank import fileio, paths
    from rlvr_lowrank.claims import MODULES

    for cid, module in MODULES.items():
        path = paths.REPORTS / profile / f"{cid.lower()}.json"
        v = module.classify(fileio.read_json(path))
        assert v.klass in (UNTESTABLE, HOLDS, REFUTED, BELOW, INCONCLUSIVE), (profile, cid, v)
        assert v.klass != UNTESTABLE or v.precondition, (profile, cid)


def test_smollm2_20_step_c1_power_and_its_missing_precondition():
    """The 20-step smollm2 design: Δ reward t [−0.229, 0.237] over 3 seeds (sd 0.094): the smallest effect a
    two-sided paired t-test detects with 80% power is about 0.31, and about 175 seeds would detect 0.02. Its
    runs recorded no sampled train/test accuracy, so under the overfitting precondition C1 is untestable."""
    from rlvr_lowrank import fileio, paths
    from rlvr_lowrank.claims import c1

    stored = fileio.read_json(paths.REPORTS / "smollm2" / "c1.json")
    if "overfit_gap" in stored:
        pytest.skip("reports/smollm2/c1.json is from a design that records the precondition")
    v = c1.classify(stored)
    assert v.klass == UNTESTABLE and v.precondition.startswith("Full RL overfit")
    t = c1.THRESHOLDS
    reward = judge_summary(stored["reward_gap"], t["min_reward_gap"], AT_LEAST, bound=0.0, strict=True,
                           require_mean=True)
    assert reward.klass == INCONCLUSIVE
    assert reward.mde == pytest.approx(0.31, abs=0.01) and 165 <= reward.seeds_needed <= 185


