"""The real-model experiment's parts: the arithmetic task spec (chat_tasks.ChatTask), the base-model task
choice and exploration rules (pipeline.task_choice, pipeline.exploration), the pre-registration
(claims.preregistration), and the recorder's fast trajectory path (trajectory.snapshot svd="auto",
spectrum=False), on constructed inputs with known answers."""
import numpy as np
import pytest
import torch

from fake_runs import write_run
from rlvr_lowrank import fileio, paths
from rlvr_lowrank.claims import null_arm, preregistration
from rlvr_lowrank.pipeline import exploration, task_choice
from rlvr_lowrank.training import config, runs, trajectory
from rlvr_lowrank.world import chat_tasks, rewards

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


def _operands(item):
    a, op, b = item.prompt.split("What is ")[1].split("?")[0].split(" ")
    return int(a), op, int(b)


def _problem(item):
    a, op, b = _operands(item)
    return (min(a, b), max(a, b), op)


@pytest.mark.parametrize("spec", [
    dict(max_operand=30, one_order=True, train_size=16, ood_operands=[31, 60]),
    dict(max_operand=21, one_order=True, train_size=16, held_out="rest", ood_operands=[22, 45]),
    dict(max_operand=20, op="+-", one_order=True, train_size=16, ood_operands=[21, 45]),
    dict(max_operand=12, op="-", one_order=True),
])
def test_splits_are_disjoint_distinct_problems_with_correct_answers(spec):
    task = chat_tasks.ChatTask(**spec)
    train, test, ood = task.items("rl_train"), task.items("test"), task.ood_items()
    assert len(test) == task.n_pairs("test") and len({_problem(it) for it in test}) == len(test)  # distinct
    assert not {_problem(it) for it in train} & {_problem(it) for it in test}
    if task.train_size:
        assert len(train) == task.train_size
    n_all = task.max_operand * (task.max_operand + 1) // 2 * (2 if task.op == "+-" else 1)
    if spec.get("held_out") == "rest":  # every problem not trained on is held out
        assert len(train) + len(test) == n_all
    for it in train + test + ood:
        a, op, b = _operands(it)
        assert int(it.answer) == {"+": a + b, "-": a - b}[op] and int(it.answer) >= 0
        assert it.difficulty == (a >= 10) + (b >= 10)
    lo, hi = spec.get("ood_operands") or (None, None)
    if lo:
        assert len(ood) == task.n_ood and all(lo <= x <= hi for it in ood for x in _operands(it)[::2])
    if task.op == "+-":
        assert {_operands(it)[1] for it in test} == {"+", "-"}


def test_default_task_is_the_first_smollm2_task():
    task = chat_tasks.ChatTask()
    assert task.items("test") == chat_tasks.arithmetic_items("test")
    assert task.items("rl_train") == chat_tasks.arithmetic_items("rl_train") and task.ood_items() == []


def test_the_system_turn_reaches_the_conversation():
    task = chat_tasks.ChatTask(max_operand=5, one_order=True, system="")
    assert chat_tasks.conversational(task.items("test")[0])[0] == {"role": "system", "content": ""}
    default = chat_tasks.ChatTask(max_operand=5).items("test")[0]
    assert [m["role"] for m in chat_tasks.conversational(default)] == ["user"]
    assert "system" not in chat_tasks.ChatTask(max_operand=5).items("test")[0].to_json()  # the tiny files' schema


@pytest.mark.parametrize("bad,match", [
    (dict(op="/"), "op must be"), (dict(op="+-"), "needs one_order"), (dict(max_operand=1), "max_operand"),
    (dict(train_size=10_000), "train_size"), (dict(held_out="rest"), "held_out"),
    (dict(max_operand=3, one_order=True, train_size=6, held_out="rest"), "train_size"),  # nothing left to hold out
    (dict(ood_operands=[10, 30]), "ood_operands"), (dict(ood_operands=[21, 22], n_ood=10), "n_ood"),
    (dict(system=3), "system"),
])
def test_bad_task_specs_are_refused_with_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        chat_tasks.ChatTask(**bad)


def test_a_profile_chat_task_is_checked_and_needs_chat_data(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CONFIGS", tmp_path)
    base = {"model": "smollm2-gguf", "data": "chat_math", "reward": "addition", "train": {"max_steps": 1},
            "experiments": {"full": {}}}
    fileio.write_yaml(tmp_path / "p.yaml", {**base, "chat_task": {"max_operand": 21, "op": "/"}})
    with pytest.raises(config.ConfigError, match="op must be"):
        config.resolve("p", "full", 0)
    fileio.write_yaml(tmp_path / "p.yaml", {**base, "chat_task": {"max_operand": 21, "colour": 1}})
    with pytest.raises(config.ConfigError, match="unknown key"):
        config.resolve("p", "full", 0)
    fileio.write_yaml(tmp_path / "p.yaml", {**base, "data": None, "chat_task": {"max_operand": 21}})
    with pytest.raises(config.ConfigError, match="needs data: chat_math"):
        config.resolve("p", "full", 0)


def test_restated_answers_in_words_are_read():
    assert rewards.addition_answer("11 + 4 is 15.") == 15 and rewards.addition_answer("11 + 4 equals 15") == 15
    assert rewards.addition_answer("11 + 4 = 15, or 11 + 4 is 16") == 15  # '=' first, as before
    assert rewards.addition_answer("The sum of 11 and 4 is 15.") == 11  # no restated problem: the first number


def test_task_choice_rule_tie_break_and_closest():
    row = lambda g, p, s=None: {"greedy": g, "pass8": p, "system": s}  # noqa: E731
    chosen, why = task_choice.choose({"a": row(0.4, 0.61), "b": row(0.45, 0.7), "c": row(0.55, 0.9)})
    assert chosen == "b" and "a, b" in why  # c has no room; b has the larger pass@8
    assert task_choice.choose({"a": row(0.4, 0.61, ""), "b": row(0.45, 0.7)})[0] == "a"  # empty system first
    assert task_choice.choose({"a": row(0.5, 0.6)})[0] == "a"  # the bounds are inclusive
    chosen, why = task_choice.choose({"a": row(0.4, 0.5), "b": row(0.3, 0.55), "c": row(0.6, 0.9)})
    assert chosen is None and "closest is b" in why
    assert "closest is a" in task_choice.choose({"a": row(0.6, 0.5), "b": row(0.7, 0.9)})[1]
    for name in task_choice.VARIANTS:  # every candidate is a valid task with >= 200 distinct held-out problems
        assert task_choice.variant_task(name).n_pairs("test") >= 200


def _explore_row(lr, seed, start, end, r_first, r_last, finite=True, sat=(0.5, 0.95)):
    curve = [{"step": 0, "sampled_train_acc": sat[0], "sampled_test_acc": 0.3},
             {"step": 50, "sampled_train_acc": sat[1], "sampled_test_acc": 0.4}]
    return {"learning_rate": lr, "seed": seed, "finite": finite, "test_acc_start": start, "test_acc_end": end,
            "reward_first": r_first, "reward_last": r_last, "sampled_gap_end": 0.2, "curve": curve}


def test_exploration_picks_the_largest_rate_every_seed_of_which_learns():
    rows = [_explore_row(1e-5, 100, 0.4, 0.5, 0.2, 0.6), _explore_row(1e-5, 101, 0.4, 0.45, 0.2, 0.5),
            _explore_row(2e-5, 100, 0.4, 0.55, 0.2, 0.7), _explore_row(2e-5, 101, 0.4, 0.4, 0.2, 0.7),  # no rise
            _explore_row(5e-6, 100, 0.4, 0.42, 0.2, 0.3), _explore_row(5e-6, 101, 0.4, 0.41, 0.2, 0.25)]
    out = exploration.decide(rows)
    assert out["chosen_lr"] == 1e-5 and not out["rates"]["2e-05"]["qualifies"]
    assert "did not rise" in out["rates"]["2e-05"]["failures"]["seed101"][0]
    assert out["saturation_step"] == 50
    bad = [_explore_row(1e-5, 100, 0.4, 0.5, 0.2, 0.6, finite=False), _explore_row(1e-5, 101, 0.4, 0.5, 0.5, 0.4)]
    out = exploration.decide(bad)
    assert out["chosen_lr"] is None and "not started" in out["why"]
    assert exploration.saturation_step([_explore_row(1e-5, 100, 0.4, 0.5, 0.2, 0.6, sat=(0.5, 0.85))]) is None


def _tiny_profile(tmp_path, monkeypatch, **extra):
    monkeypatch.setattr(paths, "CONFIGS", tmp_path / "configs")
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    prof = {"model": "data/models/tiny-base", "seeds": [0, 1], "train": {"max_steps": 2, "learning_rate": 1e-4},
            "experiments": {"full": {}, "pr1s_trunc_k1": {"pr1s": {"every": 1}}},
            "arms": {"full": "full", "pr1s": "pr1s_trunc_k1"}, **extra}
    fileio.write_yaml(tmp_path / "configs" / "pr.yaml", prof)
    return prof


def test_preregistration_pins_the_profile_and_the_file(tmp_path, monkeypatch):
    prof = _tiny_profile(tmp_path, monkeypatch)
    monkeypatch.setenv(paths.WRITE_TRACKED_ENV, "1")  # as the preregister command does: reports/<profile>/
    assert preregistration.problem("pr") is None  # not pre-registered: judged as before
    path, sha = preregistration.write("pr")
    doc = fileio.read_json(path)
    assert doc["experiments"]["pr1s_trunc_k1"]["pr1s"] == {"every": 1, "variant": "trunc"}
    assert set(doc["claims"]) == {"C0", "C1", "C2", "C3", "C4"} and doc["claims"]["C1"]["thresholds"]
    pin = {"file": str(path), "sha256": sha}  # relative to the repository in a profile; absolute here
    fileio.write_yaml(tmp_path / "configs" / "pr.yaml", {**prof, "preregistration": pin})
    assert preregistration.problem("pr") is None  # the pin itself is not part of the registered settings
    fileio.write_yaml(tmp_path / "configs" / "pr.yaml", {**prof, "preregistration": pin,
                                                         "train": {**prof["train"], "learning_rate": 2e-4}})
    assert "configs/pr.yaml changed after registration" in preregistration.problem("pr")
    fileio.write_yaml(tmp_path / "configs" / "pr.yaml", {**prof, "preregistration": pin})
    fileio.write_json(path, {**doc, "arms": {"full": "full", "pr1s": "other"}})
    assert "changed after registration" in preregistration.problem("pr")
    with pytest.raises(preregistration.PreregistrationError, match="exists and differs"):
        preregistration.write("pr")  # never replaced silently
    path.unlink()
    assert "is missing" in preregistration.problem("pr")


def _states(g, names, shape, steps):
    base = {n: torch.randn(shape, generator=g) for n in names}
    u = {n: torch.randn(shape[0], 1, generator=g) for n in names}
    v = {n: torch.randn(1, shape[1], generator=g) for n in names}
    out = [{n: base[n] + 0.01 * t * (u[n] @ v[n]) + 1e-4 * torch.randn(shape, generator=g) for n in names}
           for t in range(1, steps + 1)]
    return base, out


def test_fast_trajectory_path_matches_the_exact_one_and_keeps_the_relative_update(tmp_path):
    g = torch.Generator().manual_seed(0)
    names = [f"model.layers.{i}.mlp.down_proj.weight" for i in range(2)]
    base, states = _states(g, names, (160, 256), 3)
    rec = {}
    for method, spectrum in (("exact", True), ("auto", False)):
        prev = {}
        rec[method] = [trajectory.snapshot(st, base, k=1, factor_dtype="float32", previous=prev, method=method,
                                           spectrum=spectrum) for st in states]
    for a, b in zip(rec["exact"], rec["auto"]):
        for n in names:
            assert float(b[f"{n}|S"][0]) == pytest.approx(float(a[f"{n}|S"][0]), rel=1e-4)
            assert abs(float(a[f"{n}|U"][:, 0] @ b[f"{n}|U"][:, 0])) >= 0.9999
            assert float(b[f"{n}|dF"][0]) == pytest.approx(float(a[f"{n}|dF"][0]), rel=1e-5)
            assert float(b[f"{n}|WF"][0]) == pytest.approx(float(a[f"{n}|Wsv"].double().norm()), rel=1e-5)
            assert f"{n}|Wsv" not in b
    run = write_run(tmp_path / "run")
    for i, t in enumerate(rec["auto"]):
        fileio.save_tensors(run / "trajectory" / f"step-{5 * (i + 1):05d}.safetensors", t)
    traj = runs.load_trajectory(run)
    assert traj.Wsv is None
    want = [np.sqrt(sum(float((st[n] - base[n]).double().norm()) ** 2 for n in names))
            / np.sqrt(sum(float(st[n].double().norm()) ** 2 for n in names)) for st in states]
    assert null_arm.relative_update(traj) == pytest.approx(want, rel=1e-5)


def test_trajectory_options_are_checked(tmp_path, monkeypatch):
    _tiny_profile(tmp_path, monkeypatch, trajectory={"every": 5, "svd": "fastest"})
    with pytest.raises(config.ConfigError, match="trajectory.svd"):
        config.resolve("pr", "full", 0)


def test_design_blocks_render_the_reports_and_say_what_is_missing(tmp_path, monkeypatch):
    from rlvr_lowrank.pipeline import readme_design

    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    assert "smollm2-task" in readme_design.task_choice_block()  # not written yet: the command that writes it
    assert "smollm2-explore" in readme_design.exploration_block()
    task = {**task_choice.COMMON, "max_operand": 20, "op": "+-", "system": None}
    row = {"round": 2, "definition": {"task": task}, "temperature": 0.7, "n_test": 100, "greedy": 0.4, "pass8": 0.64,
           "pass_at_k": {"1": 0.2}, "accepted": True}
    fileio.write_json(tmp_path / "smollm2" / "task_variants.json", {
        "rule": {"max_base_greedy": 0.5, "min_base_pass8": 0.6, "tie_break": "t"}, "variants": {"v": row},
        "superseded": [{"name": "v", "pass8": 0.5}], "chosen": "v", "why": "accepted: v"})
    text = readme_design.task_choice_block()
    assert "a + b and a − b, 1..20" in text and "**v**" in text and "v pass@8 0.500" in text
    assert "standard error of 0.048 over 100 problems" in text  # sqrt(0.64 * 0.36 / 100)
    runs_ = [{"learning_rate": 1e-5, "seed": 100, "test_acc_start": 0.3, "test_acc_end": 0.5, "reward_first": 0.2,
              "reward_last": 0.6, "sampled_gap_end": 0.25, "steps": 100}]
    fileio.write_json(tmp_path / "smollm2" / "exploration.json", {
        "runs": runs_, "rates": {"1e-05": {"qualifies": True}}, "chosen_lr": 1e-5, "why": "the largest",
        "saturation_step": None, "not_trained": ["explore_lr_5e-6"],
        "rules": {"learning_rate": "rule", "saturation": 0.9, "seeds": [100, 101]}})
    text = readme_design.exploration_block()
    assert "**1e-05**" in text and "+0.250" in text and "did not reach 0.9" in text and "explore_lr_5e-6" in text


def test_final_runs_block_renders_c1s_readings_from_real_reading_functions(tmp_path, monkeypatch):
    from fake_runs import write_run
    from rlvr_lowrank.claims import arm_evals, readings_saturation
    from rlvr_lowrank.claims.stats import summarize
    from rlvr_lowrank.pipeline import readme_design

    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    assert "make reproduce PROFILE=smollm2" in readme_design.final_runs_block()  # not produced yet

    def arm(name, finals, train=(0.2, 0.95, 1.0)):
        return {s: write_run(tmp_path / "runs" / f"{name}{s}", evals=[
            {"step": t, "test_acc": a, "ood_acc": 0.1, "sampled_train_acc": tr}
            for t, a, tr in zip((0, 50, 100), (0.3, 0.4, f), train)]) for s, f in enumerate(finals)}

    full, pr1s, null = arm("f", [0.5, 0.6]), arm("p", [0.5, 0.55]), arm("n", [0.3, 0.32], train=(0.2, 0.2, 0.2))
    ev = arm_evals.reading({"Full RL": full, "PR1S": pr1s}, null)
    post = readings_saturation.reading(full, pr1s)
    fileio.write_json(tmp_path / "smollm2" / "c1.json", {
        "overfit_gap": summarize([0.3, 0.35]),
        "readings": {"C1": {"post_saturation": post}, "arms_vs_null": {k: v for k, v in ev.items() if k != "lines"}}})
    text = readme_design.final_runs_block()
    assert "| Full RL | 2 | 0.300 (n = 2) | 0.400 (n = 2) | 0.550 (n = 2) | 0.100 (n = 2) |" in text
    assert "| null (random reward) | 2 |" in text and "mean 0.325" in text
    assert "test_acc gain, Full RL" in text and "Welch 95%" in text
    assert "2 of 2 seed(s) saturated before the last evaluation, at step(s) [50]" in text
