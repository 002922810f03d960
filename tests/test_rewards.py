"""Verifiers: length cap before parsing, exact integers, no silent truncation, the TRL guard, and
rewards identical to the original verifiers on every legitimate completion of the project's tasks."""
import re
import subprocess
import sys
import time

import pytest

from rlvr_lowrank.world import rewards, tasks

# --- The verifiers as they were before they moved to rewards.py (reference for equality) ----------

def _ref_text(c):
    if isinstance(c, str):
        return c
    if isinstance(c, list) and c and isinstance(c[-1], dict):
        content = c[-1].get("content")
        return content if isinstance(content, str) else None
    return None


def _ref_score(task, c, answer):
    try:
        text = _ref_text(c)
        if text is None:
            return 0.0
        text = text.strip()
        if not text or len(text) > 64:
            return 0.0
        got = None
        if task == "math":
            m = re.search(r"A:([0-9]{1,8})\.\Z", text)
            got = str(int(m.group(1))) if m else None
        elif task in ("fact", "skill"):
            m = re.fullmatch(r"([a-z]{1,16})\.\Z", text)
            got = m.group(1) if m else None
        return 1.0 if got is not None and got == str(answer).strip() else 0.0
    except Exception:
        return 0.0


def _ref_last_boxed(text):
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def _ref_boxed(c, a):
    def norm(s):
        s = s.strip().rstrip(".").replace("\\!", "").replace("\\,", "").replace("$", "")
        return re.sub(r"\s+", "", re.sub(r"\\(?:d|t)?frac", r"\\frac", s))
    try:
        text = _ref_text(c)
        got = _ref_last_boxed(text) if text else None
        ref = _ref_last_boxed(a) or a
        return 1.0 if got is not None and norm(got) == norm(ref) else 0.0
    except Exception:
        return 0.0


def _ref_addition(c, a):
    text = (_ref_text(c) or "")[:64]
    m = (re.search(r"=\s*(-?[0-9]+)", text)
         or re.search(r"[0-9]+ *[-+*] *[0-9]+ +(?:is|equals) +(-?[0-9]+)", text))
    got = m.group(1) if m else (re.findall(r"-?[0-9]+", text)[:1] or [None])[0]
    return 1.0 if got == str(a).strip() else 0.0


def _variants(item):
    """Legitimate completions (both procedures, as plain text and chat) and typical junk."""
    good, bad = tasks.completion_for(item, True), tasks.completion_for(item, False)
    out = [good, bad, " " + good + "\n", good[:-1], good + "x", good[: len(good) // 2], "", "A:.", good + good,
           [{"role": "assistant", "content": good}], [{"role": "assistant", "content": bad}], None, 7,
           good.replace(".", ""), "A:" + item.answer + ".", item.answer + "."]
    return out


@pytest.mark.parametrize("task,splits", [("math", ("test", "rl_train")), ("skill", ("test", "rl_train")),
                                         ("fact", ("all",))])
def test_rewards_unchanged_on_stored_task_data(task, splits):
    n = 0
    for split in splits:
        for it in tasks.load_items(task, split):
            comps = _variants(it)
            answers = [it.answer] * len(comps)
            expected = [_ref_score(task, c, it.answer) for c in comps]
            assert rewards.task_reward(comps, answers, [task] * len(comps)) == expected, it
            if task == "math":
                assert rewards.math_reward(comps, answers) == expected
            if task == "skill":
                assert rewards.skill_reward(comps, answers) == expected
            assert expected[0] == 1.0  # the correct procedure scores 1
            n += 1
    assert n >= 160


def test_addition_reward_unchanged_on_legitimate_replies():
    from rlvr_lowrank.world import chat_tasks

    items = chat_tasks.arithmetic_items("rl_train", n=64)
    n_checked = 0
    for it in items:
        a, b = it.prompt.split("What is ")[1].split("?")[0].split(" + ")
        s = it.answer
        wrong = str(int(s) + 1)
        replies = [s, f"{s}.", f" {s}\n", f"{a} + {b} = {s}", f"{a} + {b} = {wrong}", f"The answer is {s}.",
                   f"{a}+{b}={s}", wrong, f"-{s}", "", "I don't know", f"The sum of {a} and {b} is {s}.",
                   [{"role": "assistant", "content": s}], [{"role": "assistant", "content": f"{a} + {b} = {s}"}],
                   None, f"{s}, because {a} + {b} = {s}", "x" * 70 + s, f"+{s}", f"{a} + {b} is {s}.",
                   f"{a} + {b} equals {s}.", f"{a} + {b} is {wrong}.", f"{a} + {b} equals {wrong}, or {s}",
                   f"{a} + {b} is a sum; = {s}", f"{b} is {s}"]
        got = rewards.addition_reward(replies, [s] * len(replies))
        assert got == [_ref_addition(c, s) for c in replies], it
        n_checked += len(replies)
    assert n_checked > 1000


def test_boxed_math_reward_unchanged_on_legitimate_completions():
    cases = [(r"so the answer is \boxed{\dfrac{1}{2}}.", r"\frac{1}{2}"), (r"\boxed{2} then \boxed{3}", "3"),
             (r"\boxed{3", "3"), ("3", "3"), (None, "3"),
             ([{"role": "assistant", "content": r"\boxed{ 42 }"}], r"\boxed{42}"),
             (r"Thus $x = \boxed{x^{2}+\frac{a}{b}}$", r"x^{2}+\frac{a}{b}"), (r"\boxed{\!1,\!000}", "1,000"),
             (r"\boxed{}", ""), (r"\boxed{{}}", "{}"), ("step " * 300 + r"\boxed{7}", "7"),
             (r"\boxed{7}", r"\boxed{8}")]
    comps, answers = zip(*cases)
    assert rewards.boxed_math_reward(list(comps), list(answers)) == [_ref_boxed(c, a) for c, a in cases]


def test_unclosed_boxed_in_a_10mb_completion_is_not_slow():
    huge = "\\boxed{" + "x{" * 5_000_000
    t0 = time.perf_counter()
    assert rewards.boxed_math_reward([huge], ["1"]) == [0.0]
    assert time.perf_counter() - t0 < 0.05
    # just under the cap the scan itself must be fast too (the old scan ran character by character)
    near = "\\boxed{" + "x" * (rewards.MAX_VERIFIED_CHARS - 10)
    t0 = time.perf_counter()
    assert rewards.boxed_math_reward([near], ["1"]) == [0.0]
    assert time.perf_counter() - t0 < 0.05


@pytest.mark.parametrize("fn,completion,answer", [
    (rewards.boxed_math_reward, r"\boxed{7}", "7"),
    (rewards.addition_reward, "7", "7"),
    (rewards.math_reward, "A:7.", "7"),
    (rewards.skill_reward, "abc.", "abc"),
])
def test_length_cap_applies_to_every_verifier_before_parsing(fn, completion, answer):
    assert fn([completion], [answer]) == [1.0]
    padded = completion + " " * rewards.MAX_VERIFIED_CHARS
    assert fn([padded], [answer]) == [0.0]
    assert fn([[{"role": "assistant", "content": padded}]], [answer]) == [0.0]


def test_cap_is_well_above_legitimate_completions():
    # paper-* profiles allow 2048 completion tokens; the cap leaves > 40 characters per token
    assert rewards.MAX_VERIFIED_CHARS >= 2048 * 40 and rewards.MAX_VERIFIED_CHARS >= 100 * tasks.MAX_COMPLETION_CHARS


@pytest.mark.parametrize("reply", ["12.9", "7 + 5 = 12.9", "12.5 I think", "The answer is 12.01."])
def test_decimal_reply_is_not_truncated_to_an_integer(reply):
    assert rewards.addition_reward([reply], ["12"]) == [0.0]


@pytest.mark.parametrize("reply", ["12.0", "12.", "7 + 5 = 12.00", "012"])
def test_integral_numerals_are_the_integer(reply):
    assert rewards.addition_reward([reply], ["12"]) == [1.0]


def test_number_at_the_window_edge_is_read_whole_not_cut():
    reply = "a" * 61 + "= 12"  # the number starts inside the 64-character window and ends outside it
    assert rewards.addition_reward([reply], ["12"]) == [1.0]
    assert rewards.addition_reward([reply], ["1"]) == [0.0]  # the old verifier read "= 1" and accepted 1


@pytest.mark.parametrize("token,value", [("12", 12), ("-3", -3), ("+4", 4), ("012", 12), ("12.0", 12), (" 7 ", 7),
                                         ("12.9", None), ("1e3", None), ("", None), ("twelve", None), ("１２", None),
                                         (None, None), ("1 2", None), ("12.", None)])
def test_integer_value_parses_exactly(token, value):
    assert rewards.integer_value(token) == value


@pytest.mark.parametrize("fn,cols", [(rewards.math_reward, {"answer": ["1"]}),
                                     (rewards.skill_reward, {"answer": ["a", "b", "c"]}),
                                     (rewards.boxed_math_reward, {"answer": ["1"]}),
                                     (rewards.addition_reward, {"answer": []}),
                                     (rewards.task_reward, {"answer": ["1", "2"], "task": ["math"]})])
def test_columns_of_different_length_are_refused_not_truncated(fn, cols):
    with pytest.raises(ValueError, match=r"2 completions but \d values in column"):
        fn(["A:1.", "A:2."], **cols)


def test_guard_refuses_mismatched_dataset_columns():
    g = rewards.guarded_reward(rewards.math_reward)
    with pytest.raises(rewards.RewardError, match=r"3 completions but 2 values in 'answer'"):
        g(["A:1.", "A:2.", "A:3."], answer=["1", "2"], trainer_state=object())


@pytest.mark.parametrize("bad", [None, 12, b"A:1.", {"content": "A:1."}, [], ["A:1."], [{"role": "assistant"}, "x"]])
def test_guard_refuses_a_completion_that_is_not_text_or_chat(bad):
    with pytest.raises(rewards.RewardError, match=r"completion 1 is .*expected a str or a list of"):
        rewards.guarded_reward(rewards.math_reward)(["A:1.", bad], answer=["1", "1"])


def test_guard_refuses_a_bare_string_as_the_batch():
    with pytest.raises(rewards.RewardError, match="one completion per sample"):
        rewards.guarded_reward(rewards.math_reward)("A:1.", answer=["1"])


def test_guard_refuses_wrong_number_of_rewards():
    with pytest.raises(rewards.RewardError, match="returned 1 values for 2 completions"):
        rewards.guarded_reward(lambda completions, **k: [1.0])(["a", "b"])


def test_guard_keeps_train_guard_behaviour():
    def exploding(completions, **kw):
        raise KeyError("answer")

    wrapped = rewards.guarded_reward(exploding)
    assert wrapped.__name__ == "exploding"  # TRL logs rewards/<name>/mean
    with pytest.raises(rewards.RewardError, match=r"exploding raised KeyError.*'Q:1\+2='"):
        wrapped(["Q:1+2="], answer=["3"])
    with pytest.raises(rewards.RewardError, match="1 non-finite"):
        rewards.guarded_reward(lambda c, **k: [0.5, float("nan")])(["a", "b"])
    with pytest.raises(rewards.RewardError, match="non-numeric"):
        rewards.guarded_reward(lambda c, **k: [0.5, "1"])(["a", "b"])
    assert rewards.guarded_reward(lambda c, **k: [1.0, None])(["a", "b"]) == [1.0, None]
    chat = [[{"role": "assistant", "content": "1+2=3,A:3."}]]
    assert rewards.guarded_reward(rewards.math_reward)(chat, answer=["3"],
                                                       prompts=[[{"role": "user", "content": "Q"}]]) == [1.0]


def test_tasks_does_not_import_rewards_and_the_verifiers_live_only_in_rewards():
    code = "import sys, rlvr_lowrank.world.tasks as t; assert 'rlvr_lowrank.world.rewards' not in sys.modules, 'cycle'"
    subprocess.run([sys.executable, "-c", code], check=True)
    for name in ("score", "math_reward", "task_reward", "REWARDS", "check_task_mix", "boxed_math_reward",
                 "addition_reward", "last_boxed", "skill_reward", "extract_answer"):
        assert not hasattr(tasks, name), name  # one place for each verifier
