"""The real-model tasks (chat_tasks), their scorers (rewards.fact_match), and the probe-run rules (real_model)."""
import json

import pytest

from rlvr_lowrank.pipeline import real_model
from rlvr_lowrank.world import chat_tasks, evaluate, rewards


def test_fact_match_is_whole_word_containment_after_normalisation():
    assert rewards.fact_match("The capital of France is Paris.", "Paris") == 1.0
    assert rewards.fact_match("paris", "Paris") == 1.0
    assert rewards.fact_match("Brasília!", "Brasilia") == 1.0  # accents
    assert rewards.fact_match("It is N'Djamena.", "N'Djamena") == 1.0  # apostrophes
    assert rewards.fact_match("Parisian food", "Paris") == 0.0  # a word part is not the word
    assert rewards.fact_match("The answer is Mexico.", "Mexico City") == 0.0  # every word of the answer
    assert rewards.fact_match("Written by Shakespeare.", "William Shakespeare|Shakespeare") == 1.0  # an alias
    assert rewards.fact_match("the children", "children") == 1.0 and rewards.fact_match("childs", "children") == 0.0
    assert rewards.fact_match([{"role": "assistant", "content": "Au"}], "Au") == 1.0
    for bad in ("", "   ", None, 12, ["not", "messages"], "Paris " * 100):  # empty, junk, runaway
        assert rewards.fact_match(bad, "Paris") == 0.0
    assert rewards.score("chat_fact", "Rome.", "Rome") == 1.0 and rewards.score("chat_skill", "mice", "mice") == 1.0
    assert rewards.score("chat_math", "7 + 5 = 12", "12") == 1.0 and rewards.score("chat_math", "13", "12") == 0.0


def test_normalise_drops_articles_case_punctuation_and_accents():
    assert rewards.normalise("The  Côte d'Ivoire, a country!") == ["cote", "divoire", "country"]


def test_arithmetic_splits_cover_every_pair_once_and_difficulty_counts_two_digit_operands():
    test = chat_tasks.arithmetic_items("test")
    assert {it.difficulty for it in test} == {0, 1, 2}
    for it in test:
        a, b = (int(x) for x in it.prompt.split("What is ")[1].split("?")[0].split(" + "))
        assert it.difficulty == (a >= 10) + (b >= 10)
    assert chat_tasks.arithmetic_items("test", n=5) == test[:5]
    assert chat_tasks.arithmetic_items("test", op="*")[0].answer == str(
        eval(test[0].prompt.split("What is ")[1].split("?")[0].replace("+", "*")))
    with pytest.raises(ValueError, match="split"):
        chat_tasks.arithmetic_items("pretrain")


def test_probe_files_are_well_formed_and_the_kept_knowledge_is_a_subset_of_the_candidates():
    candidates = [json.loads(l) for l in chat_tasks.KNOWLEDGE_CANDIDATES.read_text().splitlines()]
    assert len(candidates) >= 300 and len({c["question"] for c in candidates}) == len(candidates)
    assert all(c["answer"] and isinstance(c["aliases"], list) for c in candidates)
    kept = [json.loads(l) for l in chat_tasks.KNOWLEDGE_KEPT.read_text().splitlines()]
    assert [k["question"] for k in kept] == [c["question"] for c in candidates]  # every candidate, flagged
    assert all(rewards.fact_match(k["base_reply"], "|".join([k["answer"], *k["aliases"]])) == k["base_correct"]
               for k in kept)
    items = chat_tasks.knowledge_items()
    assert len(items) == sum(k["base_correct"] for k in kept) >= 150  # only what the base answers correctly
    plurals = chat_tasks.plural_items()
    assert len(plurals) == len({p.prompt for p in plurals}) >= 140


def test_reference_completion_and_token_budgets_cover_the_chat_tasks():
    item = chat_tasks.knowledge_items(kept_only=False)[0]
    assert chat_tasks.reference_completion(item) == item.answer.split("|")[0]
    assert set(chat_tasks.CHAT_TASKS) <= set(evaluate.MAX_NEW_TOKENS)


def _row(**kw):
    base = {"finite": True, "gain": 0.2, "reward_first5": 0.2, "reward_last5": 0.5}
    return {**base, **kw}


def test_probe_rules():
    assert real_model.judge_probe(_row()) == "learns"
    assert real_model.judge_probe(_row(gain=0.1)) == "too slow"
    assert real_model.judge_probe(_row(finite=False)).startswith("fails: a non-finite")
    assert real_model.judge_probe(_row(gain=-0.05)).startswith("fails: test accuracy fell")
    assert real_model.judge_probe(_row(reward_last5=0.1)) == "fails: sampled reward fell"


def test_lenient_reading_finds_the_number_anywhere_but_not_inside_another():
    assert real_model.lenient_correct("I think 13 + 7 is 20", "20")
    assert not real_model.lenient_correct("200", "20") and not real_model.lenient_correct("", "20")


def test_bf16_curve_compares_the_two_runs_and_its_readme_block(tmp_path, monkeypatch):
    from fake_runs import reward_curve, write_run
    from rlvr_lowrank import fileio, paths
    from rlvr_lowrank.pipeline import readme_speed

    def run(name, seed, precision, rewards_, test_accs):
        evals = [{"step": s, "test_acc": a, "train_acc": a, "fact_acc": 1.0, "skill_acc": 0.5}
                 for s, a in zip((0, 10), test_accs)]
        r = write_run(tmp_path / name, reward_curve(rewards_), evals,
                      config={"experiment": name, "seed": seed, "train": {"precision": precision}})
        done = fileio.read_json(r / "DONE")
        fileio.write_json(r / "DONE", {**done, "identity": {"precision": precision} if precision == "bf16" else {}})
        return r

    fp32 = run("full", 0, "fp32", [0.1] * 5 + [0.5] * 5, (0.4, 0.6))
    bf16 = run("full_bf16", 0, "bf16", [0.1] * 5 + [0.7] * 5, (0.4, 0.55))
    other = run("full1", 1, "fp32", [0.2] * 10, (0.4, 0.65))
    r = real_model.bf16_curve(fp32, bf16, [other])
    assert r["difference"]["reward_last5"] == pytest.approx(0.2)
    assert r["difference"]["test_acc_final"] == pytest.approx(-0.05)
    assert r["fp32_seeds"] == {"seeds": [0, 1], "test_acc_final": [0.6, 0.65]}
    assert r["bf16"]["effective_precision"] == "bf16" and r["fp32"]["precision"] == "fp32"
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    monkeypatch.setenv(paths.WRITE_TRACKED_ENV, "1")  # as the smollm2-bf16 command does
    real_model.write_bf16_curve(r)
    block = readme_speed.smollm2_bf16_block()
    assert ("| 10 | 0.600 | 0.550 | 1.00 | 1.00 | 0.500 | 0.700 |" in block
            and "final greedy test accuracy -0.050" in block)
