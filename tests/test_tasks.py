"""The synthetic world: procedures, split disjointness, determinism and adversarial verifiers."""
import random

import pytest

from rlvr_lowrank.models import pretrain
from rlvr_lowrank.world import rewards, tasks


def test_correct_chain_adds_and_flawed_chain_differs_when_carrying():
    rng = random.Random(0)
    for _ in range(2000):
        a, b = rng.randint(10, 99999), rng.randint(10, 99999)
        text, ans = tasks.math_chain(a, b, carry=True)
        assert ans == a + b
        assert text.endswith(f"A:{a + b}.")
        assert rewards.score("math", text, str(a + b)) == 1.0
        flawed, wrong = tasks.math_chain(a, b, carry=False)
        assert (wrong != a + b) == tasks.has_carry(a, b)
        assert rewards.score("math", flawed, str(a + b)) == float(wrong == a + b)
        assert len(text) <= tasks.MAX_COMPLETION_CHARS or max(len(str(a)), len(str(b))) > 6


def test_every_completion_fits_the_charset_and_length_budget():
    world = tasks.build_world()
    for items in world.values():
        for it in items:
            for correct in (True, False):
                text = it.prompt + tasks.completion_for(it, correct)
                assert set(text) <= set(tasks.CHARSET)
                assert len(tasks.completion_for(it, correct)) <= tasks.MAX_COMPLETION_CHARS


def test_shipped_world_is_the_deterministic_world():
    world = tasks.build_world()
    for key, items in world.items():
        task, split = key.split("/")
        assert tasks.load_items(task, split) == items, f"data/tasks differs from build_world() for {key}"
    assert tasks.build_world() == world  # deterministic


def test_splits_are_disjoint_and_pretraining_never_sees_held_out_problems():
    def key(it):
        a, b = (int(x) for x in it.prompt[2:-1].split("+"))
        return (min(a, b), max(a, b))

    test_keys = {key(it) for it in tasks.load_items("math", "test")}
    train_keys = {key(it) for it in tasks.load_items("math", "rl_train")}
    assert len(test_keys) == tasks.N_MATH_TEST and len(train_keys) == tasks.N_MATH_RL_TRAIN
    assert not test_keys & train_keys
    test_words = {it.prompt for it in tasks.load_items("skill", "test")}
    train_words = {it.prompt for it in tasks.load_items("skill", "rl_train")}
    assert not test_words & train_words

    corpus = pretrain.Corpus(pretrain.PretrainConfig(seed=3))
    reserved_prompts = {it.prompt for t in ("math", "skill") for s in ("test", "rl_train")
                        for it in tasks.load_items(t, s)}
    reserved_reversed = {tasks.math_prompt(b, a) for (a, b) in test_keys | train_keys}
    seen = {corpus.sample()[0] for _ in range(20000)}
    assert not seen & reserved_prompts
    assert not seen & reserved_reversed
    # and the corpus does cover every task and difficulty
    assert any(p.startswith("F:") for p in seen) and any(p.startswith("R:") for p in seen)
    assert {len(p[2:-1].split("+")[0]) for p in seen if p.startswith("Q:")} == {2, 3, 4, 5, 6}  # operand lengths


@pytest.mark.parametrize("completion", [
    "", "   ", None, 123, b"A:12.", {"content": "A:12."}, [], [{"role": "assistant"}],
    "A:12", "A:12.junk", "junk", "A:.", "A:-12.", "A:1 2.", "A:12.." , "x" * 500 + "A:12.",
    "A:" + "9" * 200 + ".", "A:１２.", "A:1\x002.", "A:13.", "A:12.A:13.",
])
def test_math_verifier_scores_junk_as_zero_and_never_raises(completion):
    assert rewards.score("math", completion, "12") == 0.0


@pytest.mark.parametrize("completion", ["A:12.", "1+1=2,A:12.", " A:12. ", "A:012.",
                                        [{"role": "assistant", "content": "A:12."}]])
def test_math_verifier_accepts_the_final_answer_after_the_marker(completion):
    assert rewards.score("math", completion, "12") == 1.0


def test_reward_functions_follow_trl_signature():
    comps = ["3+9=12,A:12.", "nonsense", "A:13."]
    assert rewards.math_reward(prompts=["p"] * 3, completions=comps, answer=["12"] * 3, completion_ids=[[1]] * 3,
                             trainer_state=None) == [1.0, 0.0, 0.0]
    assert rewards.skill_reward(completions=["cba.", "abc.", "cba"], answer=["cba"] * 3) == [1.0, 0.0, 0.0]
    assert rewards.task_reward(completions=["A:5.", "cba."], answer=["5", "cba"], task=["math", "skill"]) == [1.0, 1.0]
    assert rewards.task_reward(completions=["A:5."], answer=["5"], task=["poetry"]) == [0.0]
    with pytest.raises(ValueError, match="no verifier"):
        rewards.check_task_mix(["math", "poetry"])


def test_unknown_task_or_missing_split_gives_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown task"):
        tasks.load_items("poetry")
    with pytest.raises(ValueError, match="not stored"):
        tasks.load_items("math", "pretrain")
    with pytest.raises(FileNotFoundError, match="rlvr_lowrank world"):
        tasks.load_items("math", "test", directory=tmp_path)
