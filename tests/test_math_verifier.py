"""The MATH answer check (world/math_verifier.py) against TRL's own math-verify reward, and its fallback."""
import threading

import pytest

from rlvr_lowrank.world import math_verifier, rewards

pytest.importorskip("math_verify")

# (boxed answer, reference): equal and unequal forms a MATH grader meets
CASES = [("0.5", r"\frac{1}{2}"), ("1000", "1,000"), (r"\frac12", r"\frac{1}{2}"), ("x+1", "1+x"), ("2", "3"),
         (r"\text{Monday}", r"\text{Monday}"), (r"\dfrac{a}{b}", r"\frac{a}{b}"), ("3.0", "3"), ("(1,2)", "(1, 2)"),
         (r"\{1,2\}", r"\{2,1\}"), ("x=5", "5"), (r"5^\circ", "5"), (r"\sqrt{2}/2", r"\frac{\sqrt2}{2}"),
         (r"10\%", "10"), (r"\pi", "3.14159"), ("0.3333", "1/3"), (r"-\infty", r"-\infty"), ("2x", r"x\cdot 2"),
         (r"\frac{\sqrt{2}}{2}", r"\frac{\sqrt2}{2}"), ("7", "7"), ("-3", "3")]


def _trl(completion: str, reference: str):
    from trl.rewards import accuracy_reward

    return accuracy_reward([[{"role": "assistant", "content": completion}]], [f"${reference}$"])[0]


def test_math_verify_path_equals_trls_accuracy_reward():
    """Where TRL's reward judges (its reference parses), ours gives the same score on a boxed completion."""
    judged = 0
    for answer, reference in CASES:
        completion = rf"Reasoning first. So the answer is \boxed{{{answer}}}."
        expected = _trl(completion, reference)
        if expected is None:
            continue
        judged += 1
        assert math_verifier.score(completion, reference, "math-verify") == expected, (answer, reference)
    assert judged >= len(CASES) - 2


def test_known_equalities_and_the_strict_rule_accepts_a_subset():
    for answer, reference, equal in [("0.5", r"\frac{1}{2}", True), ("1000", "1,000", True), ("2", "3", False),
                                     ("x+1", "1+x", True), ("-3", "3", False)]:
        assert math_verifier.equal(answer, reference, "math-verify") is equal
    for answer, reference in CASES:  # strict equality implies symbolic equality, never the other way round only
        if math_verifier.equal(answer, reference, "strict"):
            assert math_verifier.equal(answer, reference, "math-verify"), (answer, reference)
    assert math_verifier.equal("0.5", r"\frac{1}{2}", "strict") is False  # what the fallback cannot see
    assert math_verifier.equal(r"\dfrac{ 1 }{2}.", r"\frac{1}{2}", "strict") is True


def test_extraction_takes_the_last_box_and_a_completion_without_one_scores_zero():
    assert math_verifier.score(r"\boxed{2} no, \boxed{3}", "3") == 1.0
    assert math_verifier.score(r"\boxed{3} no, \boxed{2}", "3") == 0.0
    assert math_verifier.score("the answer is 3", "3") == 0.0
    assert math_verifier.score(r"\boxed{3", "3") == 0.0
    assert math_verifier.score(r"\boxed{\frac{1}{2}}", r"so \boxed{0.5}") == 1.0  # a worked solution as reference
    assert math_verifier.score(None, "3") == 0.0 and math_verifier.score(r"\boxed{3}", None) == 0.0


def test_boxed_math_reward_uses_math_verify_when_installed_else_the_strict_rule(monkeypatch):
    comps, answers = [r"\boxed{0.5}", r"\boxed{\frac{1}{2}}"], [r"\frac{1}{2}", r"\frac{1}{2}"]
    assert math_verifier.backend() == "math-verify"
    assert rewards.boxed_math_reward(comps, answers) == [1.0, 1.0]
    monkeypatch.setattr(math_verifier, "math_verify_available", lambda: False)
    assert math_verifier.backend() == "strict"
    assert rewards.boxed_math_reward(comps, answers) == [0.0, 1.0]
    with pytest.raises(ImportError, match="pip install math-verify"):
        math_verifier.backend("math-verify")
    with pytest.raises(ValueError, match="choose one of"):
        math_verifier.backend("sympy")


def test_scores_in_a_worker_thread_where_signal_alarm_is_unavailable():
    """math-verify's timeouts use SIGALRM (main thread only): a reward computed in a thread must still work."""
    out = []
    t = threading.Thread(target=lambda: out.append([math_verifier.score(rf"\boxed{{{a}}}", r) for a, r in CASES]))
    t.start()
    t.join()
    assert out == [[math_verifier.score(rf"\boxed{{{a}}}", r) for a, r in CASES]]
