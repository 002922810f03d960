"""C2: per-task recovery, paired deltas, the verdict inputs from score rows, the arms' logs, the LoRA
direction, the verdict rules, c2.json, and C2's bad inputs."""
import numpy as np
import pandas as pd
import pytest
import torch

from fake_runs import reward_curve, write_run
from rlvr_lowrank import models, paths
from rlvr_lowrank.claims import FAILS, HOLDS, INCONCLUSIVE, c2, suites
from rlvr_lowrank.training import config, train
from rlvr_lowrank.world import tasks


def _scores(rows):
    return pd.DataFrame(rows, columns=["seed", "model", "math_acc", "skill_acc"])


def test_per_task_recovery_known_values():
    scores = _scores([(0, "base", 0.2, 0.8), (0, "full", 0.8, 0.9), (0, "normmatch", 0.5, 0.8),
                      (1, "base", 0.0, 0.5), (1, "full", 0.5, 0.5), (1, "normmatch", 0.6, 0.7)])
    rec = c2.per_task_recovery(scores).set_index(["seed", "model", "task"])
    assert rec.loc[(0, "normmatch", "math"), "recovery"] == pytest.approx(0.5)
    assert rec.loc[(0, "normmatch", "skill"), "recovery"] == pytest.approx(0.0)
    assert rec.loc[(0, "full", "skill"), "gain"] == pytest.approx(0.1)
    assert rec.loc[(1, "normmatch", "math"), "recovery"] == pytest.approx(1.2)  # can exceed 1
    assert np.isnan(rec.loc[(1, "normmatch", "skill"), "recovery"])  # zero gain: nothing to recover
    assert rec.loc[(1, "base", "math"), "recovery"] == 0 and rec.loc[(1, "full", "math"), "recovery"] == 1
    with pytest.raises(ValueError, match=r"seed 0.*\['full'\]"):
        c2.per_task_recovery(scores[scores.model != "full"])


def test_paired_deltas_are_per_seed_differences():
    scores = _scores([(0, "base", 0.2, 0.8), (0, "full", 0.8, 0.9), (1, "base", 0.1, 0.6), (1, "full", 0.5, 0.5)])
    d = c2.paired_deltas(scores).set_index(["model", "axis", "measure"])
    assert d.loc[("full", "math", "acc"), "mean"] == pytest.approx(((0.8 - 0.2) + (0.5 - 0.1)) / 2)
    assert d.loc[("full", "skill", "acc"), "mean"] == pytest.approx(0.0)
    assert d.loc[("full", "skill", "acc"), "ci_lo"] == pytest.approx(-0.1)
    assert d.loc[("full", "skill", "acc"), "ci_hi"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="reference model 'base'"):
        c2.paired_deltas(scores[scores.model != "base"])


def _reading1(seed, fact_drop):
    acc = {"base": (0.2, 1.0, 0.5), "full": (0.8, 1.0, 0.6), "normmatch": (0.74, 1.0 - fact_drop, 0.6)}
    return [{"seed": seed, "model": m, "math_acc": a, "fact_acc": f, "skill_acc": s,
             "math_logp": -1.0, "fact_logp": -0.5, "skill_logp": -2.0} for m, (a, f, s) in acc.items()]


def _reading2(seed):
    acc = {"base": (0.2, 0.3), "full": (0.6, 0.7), "normmatch": (0.6, 0.4)}
    return [{"seed": seed, "model": m, "math_acc": a, "skill_acc": s} for m, (a, s) in acc.items()]


def test_verdict_inputs_known_answer():
    rows = [r for s in range(3) for r in _reading1(s, 0.1 * (s + 1))]
    mix = [r for s in range(3) for r in _reading2(s)]
    x = c2.verdict_inputs(rows, mix)
    assert x["math_recovery"] == pytest.approx([0.9] * 3)  # (0.74 - 0.2) / (0.8 - 0.2)
    assert x["fact_drop"] == pytest.approx([0.1, 0.2, 0.3]) and x["skill_drop"] == pytest.approx([0.0] * 3)
    assert x["mix_math_recovery"] == pytest.approx([1.0] * 3)
    assert x["mix_skill_recovery"] == pytest.approx([0.25] * 3)  # (0.4 - 0.3) / (0.7 - 0.3)
    assert x["mix_skill_gain"] == pytest.approx([0.4] * 3)
    v = c2.verdict(**x)
    # fact drop 0.2 over seeds [0.1, 0.2, 0.3]: the bootstrap excludes 0, the t-interval does not
    assert v["verdict"] == INCONCLUSIVE and v["verdict_bootstrap_only"] == HOLDS and v["loses"] == []
    assert v["reading2"]["verdict"] == HOLDS
    x["fact_drop"] = [0.2, 0.21, 0.22]  # both intervals exclude 0
    v = c2.verdict(**x)
    assert v["verdict"] == HOLDS and v["loses"] == ["knowledge probe"]


def test_arm_summary_reads_the_last_quarter_and_the_final_evals(tmp_path):
    evals = [{"step": 0, "test_acc": 0.1, "fact_acc": 1.0, "skill_acc": 0.5},
             {"step": 8, "test_acc": 0.7, "fact_acc": 0.9, "skill_acc": 0.4}]
    full = write_run(tmp_path / "full", reward_curve([s / 10 for s in range(1, 9)]), evals)
    lora = write_run(tmp_path / "lora", reward_curve([0.2] * 8), evals)
    rows = c2.arm_summary({"full": {0: full}, "lora_r1": {0: lora}})
    assert [(r["arm"], r["seed"]) for r in rows] == [("full", 0), ("lora_r1", 0)]
    assert (rows[0]["reward_last_quarter"] == pytest.approx(0.75)
            and rows[1]["reward_last_quarter"] == pytest.approx(0.2))
    assert (rows[0]["test_acc"], rows[0]["fact_acc"], rows[0]["skill_acc"]) == (0.7, 0.9, 0.4)


def test_decide_writes_the_c2_json_schema():
    rows = [r for s in range(3) for r in _reading1(s, 0.0)]
    mix = [r for s in range(3) for r in _reading2(s)]
    cos = pd.DataFrame([{"type": "q_proj", "cos_u": 0.9, "cos_v": 0.5, "baseline_u": 0.1, "baseline_v": 0.1,
                         "seed": 0}])
    arms = [{"arm": "full", "seed": 0, "reward_last_quarter": 0.5, "test_acc": 0.7, "fact_acc": 1.0, "skill_acc": 0.5}]
    res = c2.decide("smoke", [0, 1, 2], rows, mix, arms, cos, [1e-7, 3e-7])
    # nothing lost on either axis; the fact probe is at its ceiling (1.0), so a drop there could not show
    assert res.verdict_two_valued == FAILS and res.loses == []
    assert res.verdict == "untestable here" and "fact below its ceiling" in res.why
    d = res.to_json()
    assert set(d) == {"profile", "seeds", "scores", "multitask", "math_recovery", "fact_drop", "skill_drop", "verdict",
                      "keeps_math", "loses", "reading2", "lora", "verdict_bootstrap_only", "verdict_two_valued", "why"}
    assert d["lora"]["max_sigma2_over_sigma1"] == 3e-7 and d["lora"]["direction_cosines"]["q_proj"]["cos_u"] == 0.9
    block = c2.readme_block(res)
    assert "math recovery ≥ 0.8" in block and "| rank-1, norm-matched | 0.740 | 1.000 | 0.600 | -1.000 |" in block


def test_c2_verdicts():
    keep = [0.95, 0.9, 1.0]
    v = c2.verdict(keep, [0.2, 0.3, 0.25], [0.0, 0.01, -0.01])
    assert v["verdict"] == HOLDS and v["loses"] == ["knowledge probe"]
    assert c2.verdict(keep, [0.0, 0.01, 0.0], [0.01, 0.0, 0.02])["verdict"] == FAILS  # nothing lost
    assert c2.verdict([0.2, 0.3, 0.1], [0.2, 0.3, 0.25], [0, 0, 0])["verdict"] == FAILS  # math lost
    assert c2.verdict(keep[:2], [0.2, 0.3], [0, 0])["verdict"] == INCONCLUSIVE  # too few seeds
    r2 = c2.verdict(keep, [0, 0, 0], [0, 0, 0], keep, [0.1, 0.2, 0.0], [0.1, 0.15, 0.12])["reading2"]
    assert r2["verdict"] == HOLDS
    r2 = c2.verdict(keep, [0, 0, 0], [0, 0, 0], keep, [0.9, 1.0, 0.95], [0.1, 0.15, 0.12])["reading2"]
    assert r2["verdict"] == FAILS  # the skill gain is kept too
    r2 = c2.verdict(keep, [0, 0, 0], [0, 0, 0], keep, [0.1, 0.2, 0.0], [0.05, -0.05, 0.0])["reading2"]
    assert r2["verdict"] == INCONCLUSIVE and "did not raise" in r2["why"]


def test_top_direction_cosines_known_angles():
    torch.manual_seed(0)
    base = {"model.layers.0.mlp.up_proj.weight": torch.randn(16, 8)}
    u = torch.nn.functional.normalize(torch.randn(16), dim=0)
    w = torch.nn.functional.normalize(torch.randn(16), dim=0)
    w = torch.nn.functional.normalize(w - (w @ u) * u, dim=0)  # orthogonal to u
    v = torch.nn.functional.normalize(torch.randn(8), dim=0)
    theta = 0.3
    u_rot = np.cos(theta) * u + np.sin(theta) * w
    name = "model.layers.0.mlp.up_proj.weight"
    a = {name: base[name] + 2.0 * torch.outer(u, v)}
    b = {name: base[name] - 0.5 * torch.outer(u_rot, v)}  # sign flip must not matter
    row = c2.top_direction_cosines(base, a, b).iloc[0]
    assert row["cos_u"] == pytest.approx(np.cos(theta), abs=1e-5)
    assert row["cos_v"] == pytest.approx(1.0, abs=1e-5)
    assert row["baseline_u"] == pytest.approx(np.sqrt(2 / (np.pi * 16)))


def test_scores_refuses_a_probe_the_tokenizer_cannot_encode():
    base, tok = models.load_model(paths.TINY_BASE)
    bad = [tasks.Item("fact", "test", "F:café>", "teal", 0)]
    with pytest.raises(ValueError, match="cannot encode"):
        c2.scores(base, tok, {"fact": bad})


def test_decide_without_multitask_or_lora_arm_has_reading1_only():
    # a profile with neither a multi-task nor a LoRA arm (smollm2): reading 1 decides, nothing else is invented
    rows = [r for s in range(3) for r in _reading1(s, 0.2 + 0.01 * s)]
    arms = [{"arm": "full", "seed": 0, "reward_last_quarter": 0.5, "test_acc": 0.7, "fact_acc": 1.0, "skill_acc": 0.5}]
    x = c2.verdict_inputs(rows, [])
    assert set(x) == {"math_recovery", "fact_drop", "skill_drop"}
    res = c2.decide("smollm2", [0, 1, 2], rows, [], arms)
    assert res.reading2 is None and res.multitask == [] and res.lora == {"arms": arms}
    assert res.verdict == c2.verdict(**x)["verdict"] == HOLDS and res.loses == ["knowledge probe"]
    block = c2.readme_block(res)
    assert "was not run in this profile" in block and "LoRA" not in block


def test_eval_sets_follow_the_profile():
    from rlvr_lowrank.world import chat_tasks, tasks

    chat = c2.eval_sets(n_math=20, n_skill=30, profile="smollm2")
    task = chat_tasks.ChatTask(**config.load_profile("smollm2")["chat_task"])  # the profile's own task
    assert chat["math"] == tasks.spread_subset(task.items("test"), 20)
    assert chat["fact"] == chat_tasks.knowledge_items() and chat["skill"] == chat_tasks.plural_items()[:30]
    tiny = c2.eval_sets(n_math=20, n_skill=30, profile="tiny")
    assert tiny["math"] == tasks.spread_subset(tasks.load_items("math", "test"), 20)
    assert tiny["fact"] == tasks.load_items("fact") and tiny["skill"] == tasks.load_items("skill", "test")[:30]


@pytest.mark.parametrize("profile", ["tiny", "smollm2"])
def test_a_runs_own_evaluation_and_the_notebooks_score_the_same_items(profile):
    """train.eval_sets (what the run recorder scores) and claims.suites (what the notebooks score) take their items
    from one selector (training.eval_items): with the run's sizes they give the same items in the same order."""
    cfg = config.resolve(profile, "full", 0)
    run_sets, e = train.eval_sets(cfg), cfg.eval
    assert run_sets["math_test"] == suites.math_test(profile, e.n_math_test)
    assert run_sets["facts"] == suites.facts(profile, e.n_facts)
    assert run_sets["skill_test"] == suites.skill_test(profile, e.n_skill)
    assert run_sets["math_train"] == train.math_train_items(cfg)[: e.n_math_train]
