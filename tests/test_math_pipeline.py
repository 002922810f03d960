"""A user's MATH path, offline: prepare-math on fixtures in each dataset's own format, evaluate-math on the
tiny model (against world.evaluate's decoding and math_verifier's scores), recovery with intervals."""
import json

import pandas as pd
import pytest

from rlvr_lowrank import cli, fileio, paths
from rlvr_lowrank.checkpoints import math_eval
from rlvr_lowrank.claims import c0, stats
from rlvr_lowrank.claims import recovery_scores as recovery
from rlvr_lowrank.world import math_data, math_verifier

MATH500 = [{"problem": "What is $1+1$?", "solution": "We add. $\\boxed{2}$", "answer": "2", "subject": "Algebra",
            "level": 1, "unique_id": "test/algebra/1.json"},
           {"problem": "Simplify $\\frac{2}{4}$.", "solution": "...", "answer": "\\frac{1}{2}", "subject": "Algebra",
            "level": 2, "unique_id": "test/algebra/2.json"},
           {"problem": "A problem whose answer is missing.", "solution": "...", "answer": "", "subject": "Algebra",
            "level": 3, "unique_id": "test/algebra/3.json"}]
MATH = [{"problem": "Compute $3\\cdot 4$.", "level": "Level 1", "type": "Prealgebra",
         "solution": "First $\\boxed{10}$ was wrong; $3\\cdot 4 = \\boxed{12}$."},
        {"problem": "No boxed answer here.", "level": "Level 2", "type": "Algebra", "solution": "It is 5."}]
GSM8K = [{"question": "Tom has 3 apples and buys 1,200 more. How many?", "answer": "3+1200=1203\n#### 1,203"},
         {"question": "A row without the final marker.", "answer": "It is 4."}]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt,rows,answers", [("math500", MATH500, ["2", "\\frac{1}{2}"]), ("math", MATH, ["12"]),
                                              ("gsm8k", GSM8K, ["1203"])])
def test_prepare_reads_each_format_and_skips_rows_without_an_answer(tmp_path, capsys, fmt, rows, answers):
    out = tmp_path / "out.jsonl"
    counts = math_data.prepare(_jsonl(tmp_path / "in.jsonl", rows), fmt, out)
    got = fileio.read_jsonl(out)
    assert [r["answer"] for r in got] == answers
    skipped = len(rows) - len(answers)
    assert counts == {"read": len(rows), "written": len(answers), "no_problem": 0, "no_answer": skipped}
    assert f"{len(rows) - len(answers)} of {len(rows)} skipped" in capsys.readouterr().out
    first = got[0]["prompt"]
    assert first[0]["role"] == "user" and first[0]["content"].endswith(math_data.INSTRUCTION)
    # the reward reads the answer where the prompt asks for it
    assert math_verifier.score(f"... so \\boxed{{{answers[0]}}}", got[0]["answer"]) == 1.0


def test_prepare_reads_parquet_and_json_and_refuses_bad_input(tmp_path):
    pd.DataFrame(MATH500).to_parquet(tmp_path / "m.parquet")
    (tmp_path / "m.json").write_text(json.dumps(MATH500), encoding="utf-8")
    for name in ("m.parquet", "m.json"):
        assert math_data.prepare(tmp_path / name, "math500", tmp_path / f"{name}.jsonl")["written"] == 2
    with pytest.raises(ValueError, match="choose one of"):
        math_data.prepare(tmp_path / "m.json", "aime", tmp_path / "x.jsonl")
    with pytest.raises(FileNotFoundError, match="download the dataset first"):
        math_data.prepare(tmp_path / "absent.jsonl", "math500", tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="is --format right"):  # MATH-500 rows read as gsm8k: nothing usable
        math_data.prepare(tmp_path / "m.json", "gsm8k", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(MATH500[0]) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a JSON object"):
        math_data.prepare(bad, "math500", tmp_path / "x.jsonl")


def test_evaluate_math_decodes_like_world_evaluate_and_scores_with_the_verifier(tmp_path):
    from rlvr_lowrank.models import load_model
    from rlvr_lowrank.world import evaluate

    data = tmp_path / "test.jsonl"
    math_data.prepare(_jsonl(tmp_path / "in.jsonl", MATH500), "math500", data)
    r = math_eval.evaluate_model(paths.TINY_BASE, data, tmp_path / "s.json", samples=4, max_new_tokens=6)
    model, tok = load_model(paths.TINY_BASE, alphabet=None)
    rows = fileio.read_jsonl(data)
    prompts = ["\n\n".join(m["content"] for m in row["prompt"]) for row in rows]  # the tiny tokenizer has no template
    greedy = evaluate.generate(model, tok, prompts, 6)
    assert [it["greedy_correct"] for it in r["items"]] == [bool(math_verifier.score(g[0], row["answer"]))
                                                          for g, row in zip(greedy, rows)]
    sampled = evaluate.generate(model, tok, prompts, 6, do_sample=True, num_samples=4, batch_size=64)
    assert [it["n_correct"] for it in r["items"]] == [sum(math_verifier.score(c, row["answer"]) for c in comps)
                                                     for comps, row in zip(sampled, rows)]
    assert set(r["pass_at"]) == {"1", "4"} and r["n"] == 2 and fileio.read_json(tmp_path / "s.json") == r
    assert r["kind"] == recovery.SCORES_KIND == math_eval.SCORES_KIND


def _scores(path, acc, **over):
    fileio.write_json(path, {"kind": recovery.SCORES_KIND, "n": 100, "data_sha256": "a" * 64, "verifier": "math-verify",
                             "max_new_tokens": 1024, "limit": None, "greedy_accuracy": acc, **over})
    return path


def test_recovery_matches_c0s_definition_and_says_when_there_is_no_gain(tmp_path):
    base = _scores(tmp_path / "base.json", 0.20)
    rl = [_scores(tmp_path / f"rl{i}.json", a) for i, a in enumerate((0.60, 0.70, 0.50))]
    r1 = [_scores(tmp_path / f"r1_{i}.json", a) for i, a in enumerate((0.58, 0.66, 0.50))]
    res = recovery.compute(base, rl, {"rank1": r1})
    expected = [(0.58 - 0.2) / 0.4, (0.66 - 0.2) / 0.5, 1.0]
    assert res["recovery"]["rank1"]["values"] == pytest.approx(expected)
    assert res["recovery"]["rank1"]["t_ci"] == pytest.approx(stats.t_interval(expected))
    assert res["gain"]["mean"] == pytest.approx(0.4)
    assert "| rank1 |" in recovery.markdown(res)
    flat = [_scores(tmp_path / f"flat{i}.json", 0.20 + 0.01 * i) for i in range(3)]
    none = recovery.compute(base, flat, {"rank1": r1})
    assert "no gain to recover" in none["no_gain"] and "recovery" not in none
    assert none["min_gain"] == c0.THRESHOLDS["min_gain"]


def test_recovery_refuses_files_that_cannot_be_compared(tmp_path):
    base = _scores(tmp_path / "base.json", 0.2)
    rl = [_scores(tmp_path / "rl.json", 0.6)]
    other = _scores(tmp_path / "other.json", 0.5, data_sha256="b" * 64)
    with pytest.raises(ValueError, match="differ in 'data_sha256'"):
        recovery.compute(base, rl, {"rank1": [other]})
    with pytest.raises(ValueError, match="1 RL models"):
        recovery.compute(base, rl, {"rank1": [rl[0], rl[0]]})
    with pytest.raises(ValueError, match="--samples N"):
        recovery.compute(base, rl, {}, metric="pass@1")
    fileio.write_json(tmp_path / "junk.json", {"greedy_accuracy": 1})
    with pytest.raises(ValueError, match="not a scores file"):
        recovery.compute(tmp_path / "junk.json", rl, {})
    with pytest.raises(ValueError, match="NAME=FILE"):
        recovery.parse_variant("rank1")


def test_the_three_commands_chain_on_the_command_line(tmp_path, capsys):
    data = tmp_path / "test.jsonl"
    assert cli.main(["prepare-math", "--format", "math500", "--input", str(_jsonl(tmp_path / "in.jsonl", MATH500)),
                     "--out", str(data)]) == 0
    for name in ("base", "rl"):
        assert cli.main(["evaluate-math", str(paths.TINY_BASE), "--data", str(data), "--out", str(tmp_path / name),
                         "--max-new-tokens", "4"]) == 0
    assert cli.main(["recovery", "--base", str(tmp_path / "base"), "--rl", str(tmp_path / "rl"),
                     "--variant", f"same={tmp_path / 'rl'}"]) == 0
    assert "no gain to recover" in capsys.readouterr().out  # the same model twice gains nothing
    assert cli.main(["evaluate-math", str(paths.TINY_BASE), "--data", str(tmp_path / "absent.jsonl"),
                     "--out", str(tmp_path / "x")]) == 2
