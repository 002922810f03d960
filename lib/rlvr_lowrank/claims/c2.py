"""C2: the rank-1 component keeps math but not the other knowledge of the model.

Measured in notebook 03, in two readings. Reading 1 (knowledge the base had) decides the verdict:
models built from the Full-RL update, plus the PR1S- and rank-1-LoRA-trained models, scored on three
axes (math test, knowledge probe, second skill). Reading 2 (multi-task RL) is reported next to it:
does the rank-1 part of a math + skill update keep both gains?

How the two readings combine was fixed with the thresholds, before any C2 result existed: the
paper's "don't maintain other model knowledge" is about knowledge the model *had*, so reading 1
decides; reading 2 is "inconclusive" when the multi-task run did not raise the skill (CI of the
skill gain includes 0): there is no gain to keep.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import pandas as pd

from .base import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    Claim,
    ClaimResult,
    arm_label,
    both_intervals,
    classified,
    inconclusive,
    interval,
    too_few_seeds,
    verdict_sentence,
)
from .c2_scoring import (  # noqa: F401  (the measurements, re-exported: notebook 03 reads them as c2.<name>)
    AXES,
    DIRECTION_COLUMNS,
    MIX_VARIANTS,
    VARIANTS,
    arm_summary,
    direction_by_type,
    eval_sets,
    lora_directions,
    measure_reading1,
    measure_reading2,
    model_scores,
    paired_deltas,
    per_task_recovery,
    scores,
    top_direction_cosines,
)
from .stats import fmt_both, summarize
from .verdict import AT_LEAST, AT_MOST, Verdict, all_of, any_of, judge_summary

CLAIM = Claim(
    "C2",
    "2605.06523 abstract: 'The effective rank-1 component in RLVR don't maintain other model knowledge except "
    "mathematical reasoning capability.'",
    "reading 1 (knowledge the base had): the rank-1 (norm-matched) model keeps math (recovery >= min_math_recovery) "
    "while its knowledge-probe or second-skill accuracy falls below the full-RL model's by >= min_knowledge_drop with "
    "a CI excluding 0; reading 2 (multi-task RL): rank-1 recovery of the skill gain <= max_other_recovery while the "
    "math recovery >= min_math_recovery.",
    {"min_math_recovery": 0.8, "min_knowledge_drop": 0.05, "max_other_recovery": 0.5},
    (("rank-1 math recovery", ("math_recovery",)), ("fact drop (full − rank-1)", ("fact_drop",)),
     ("skill drop (full − rank-1)", ("skill_drop",)),
     ("multi-task RL: rank-1 skill recovery", ("reading2", "skill_recovery"))),
    "whether the rank-1 part of the update keeps the math gain while losing other knowledge (a fact probe, a "
    "second skill)",
    {"rank-1 math recovery": ("min_math_recovery",), "fact drop (full − rank-1)": ("min_knowledge_drop",),
     "skill drop (full − rank-1)": ("min_knowledge_drop",),
     "multi-task RL: rank-1 skill recovery": ("max_other_recovery",)},
)
CEILING = 0.98  # a probe on which every model scores at least this cannot show a drop by the models it compares
THRESHOLDS = CLAIM.thresholds


def judge(s: dict) -> dict:
    """Reading 1's verdict from the summaries ``math_recovery``, ``fact_drop``, ``skill_drop`` and, under
    ``reading2``, reading 2's (a c2.json), each read with both intervals (base.both_intervals)."""
    t = THRESHOLDS
    mr, fd, sd = s["math_recovery"], s["fact_drop"], s["skill_drop"]
    if too_few_seeds(mr["n"]):
        out = inconclusive(too_few_seeds(mr["n"]))
    else:
        keeps_math = mr["mean"] >= t["min_math_recovery"]
        loses = lambda k: [name for name, d in (("knowledge probe", fd), ("second skill", sd))  # noqa: E731
                           if d["mean"] >= t["min_knowledge_drop"] and interval(d, k)[0] > 0]
        out = {**both_intervals(lambda k: keeps_math and bool(loses(k))), "keeps_math": bool(keeps_math),
               "loses": [x for x in loses("ci") if x in loses("t_ci")]}
    r2 = s.get("reading2")
    if r2:
        out["reading2"] = {**{k: r2[k] for k in ("math_recovery", "skill_recovery", "skill_gain")},
                           **judge_reading2(r2)}
    return out


def judge_reading2(r2: dict) -> dict:
    """Reading 2 (multi-task RL): inconclusive when the skill gain's interval includes 0 (no gain to keep)."""
    t = THRESHOLDS
    if too_few_seeds(r2["math_recovery"]["n"]):
        return inconclusive(too_few_seeds(r2["math_recovery"]["n"]))
    gained = {k: interval(r2["skill_gain"], k)[0] > 0 for k in ("ci", "t_ci")}
    ok = (r2["math_recovery"]["mean"] >= t["min_math_recovery"]
          and r2["skill_recovery"]["mean"] <= t["max_other_recovery"])
    no_gain = "multi-task RL did not raise the skill (gain interval includes 0)"
    out = {"verdict": (HOLDS if ok else FAILS) if all(gained.values()) else INCONCLUSIVE,
           "verdict_bootstrap_only": (HOLDS if ok else FAILS) if gained["ci"] else INCONCLUSIVE}
    if not all(gained.values()):
        out["why"] = no_gain if not any(gained.values()) else no_gain.replace("gain interval", "gain t-interval")
    return out


def verdict(math_recovery: list[float], fact_drop: list[float], skill_drop: list[float],
            mix_math_recovery: list[float] | None = None, mix_skill_recovery: list[float] | None = None,
            mix_skill_gain: list[float] | None = None) -> dict:
    """Reading 1 from the single-task runs, reading 2 (``reading2``) from the multi-task runs.

    ``fact_drop`` / ``skill_drop``: per seed, accuracy of the full model minus that of the norm-matched
    rank-1 model on the knowledge probe / second skill. Reading 1 decides the verdict.
    """
    out = {"math_recovery": summarize(math_recovery), "fact_drop": summarize(fact_drop),
           "skill_drop": summarize(skill_drop)}
    if mix_math_recovery is not None:
        out["reading2"] = {"math_recovery": summarize(mix_math_recovery),
                           "skill_recovery": summarize(mix_skill_recovery),
                           "skill_gain": summarize(mix_skill_gain)}
    return {**out, **judge(out)}


def ceilings(res: dict) -> dict[str, tuple[bool, float]]:
    """axis -> (can_drop, residual drop) for the probes (fact, skill) on which base, full and rank-1 models all
    score >= CEILING: the probe can still show a drop when a damaging control (the residual model) drops on it
    by at least min_knowledge_drop. Axes below the ceiling are absent."""
    if not res.get("scores"):
        return {}
    table = pd.DataFrame(res["scores"]).drop(columns="seed").groupby("model", sort=False).mean()
    out = {}
    for axis in ("fact", "skill"):
        col = f"{axis}_acc"
        core = [m for m in ("base", "full", "normmatch") if m in table.index]
        if not core or table.loc[core, col].min() < CEILING:
            continue
        drop = table.loc["full", col] - table.loc["residual", col] if "residual" in table.index else float("nan")
        out[axis] = (bool(drop >= THRESHOLDS["min_knowledge_drop"]), float(drop))
    return out


def ceiling_checks(res: dict) -> dict[str, str]:
    """axis -> a sentence, for the probes at their ceiling (:func:`ceilings`): whether they can still show a drop."""
    out = {}
    for axis, (can_drop, drop) in ceilings(res).items():
        name = "knowledge probe" if axis == "fact" else "second skill"
        if can_drop:
            out[axis] = (f"the {name} is at its ceiling (every compared model ≥ {CEILING:g}); it can show a drop: the "
                         f"residual model scores {drop:.3f} below the full model")
        else:
            out[axis] = (f"the {name} is at its ceiling (every compared model ≥ {CEILING:g}) and no damaging control "
                         f"drops on it: unable to show a drop")
    return out


def notes(res: dict) -> list[str]:
    """Sentences the claims table needs to be read right: ceilings, recoveries above 1."""
    out = [s[0].upper() + s[1:] + "." for s in ceiling_checks(res).values()]
    r2 = res.get("reading2") or {}
    above = [task for task in ("math", "skill") if r2.get(f"{task}_recovery", {}).get("mean", 0) > 1]
    if above:
        out.append(f"Multi-task recovery above 1 ({', '.join(above)}): the rank-1 model scored above the full model "
                   "on that task, so recovery exceeds 1; it is a ratio of gains, not capped.")
    return out


def verdict_inputs(score_rows: list[dict], mix_rows: list[dict]) -> dict:
    """The per-seed inputs of ``verdict`` from the reading-1 and reading-2 rows (no reading 2 when a
    profile has no multi-task arm: ``mix_rows`` empty)."""
    table = pd.DataFrame(score_rows)
    wide = table.set_index(["seed", "model"])
    seeds = list(dict.fromkeys(table["seed"]))
    rec1 = per_task_recovery(table, tasks=("math",))
    drop = {ax: [wide.loc[(s, "full"), f"{ax}_acc"] - wide.loc[(s, "normmatch"), f"{ax}_acc"] for s in seeds]
            for ax in ("fact", "skill")}
    out = {"math_recovery": rec1[rec1.model == "normmatch"]["recovery"].tolist(),
           "fact_drop": drop["fact"], "skill_drop": drop["skill"]}
    if not mix_rows:
        return out
    mix_rec = per_task_recovery(pd.DataFrame(mix_rows), tasks=("math", "skill"))
    by_task = mix_rec[mix_rec.model == "normmatch"].set_index(["task", "seed"])["recovery"]
    return {**out, "mix_math_recovery": by_task["math"].tolist(), "mix_skill_recovery": by_task["skill"].tolist(),
            "mix_skill_gain": mix_rec[(mix_rec.model == "full") & (mix_rec.task == "skill")]["gain"].tolist()}


@dataclass
class C2Result(ClaimResult):
    """reports/<profile>/c2.json."""
    FILE = "c2.json"
    profile: str
    seeds: list
    scores: list  # measure_reading1() rows
    multitask: list  # measure_reading2() rows
    math_recovery: dict
    fact_drop: dict
    skill_drop: dict
    verdict: str
    lora: dict  # {"arms": arm_summary rows, "direction_cosines": by matrix type, "max_sigma2_over_sigma1"}
    reading2: dict | None = None
    why: str | None = None
    verdict_bootstrap_only: str | None = None
    verdict_two_valued: str | None = None  # the two-valued rule's verdict; ``verdict`` is the class
    keeps_math: bool | None = None
    loses: list | None = None


RESULT = C2Result  # the schema of this claim's cN.json


def decide(profile: str, seeds: list, score_rows: list[dict], mix_rows: list[dict], arm_rows: list[dict],
           cos: pd.DataFrame | None = None, rank_ratio: list[float] | None = None) -> C2Result:
    """c2.json from the notebook's measurements; a profile without a multi-task arm passes ``mix_rows=[]``
    (no reading 2), one without a LoRA arm ``cos=None`` (no direction comparison)."""
    v = verdict(**verdict_inputs(score_rows, mix_rows))
    lora = {"arms": arm_rows}
    if cos is not None:
        lora.update({"direction_cosines": direction_by_type(cos).to_dict("index"),
                     "max_sigma2_over_sigma1": max(rank_ratio)})
    result = C2Result(profile=profile, seeds=list(seeds), scores=score_rows, multitask=mix_rows, lora=lora, **v)
    return classified(sys.modules[__name__], result)


def _ci(x: dict) -> str:
    return fmt_both(x)


def readme_block(r: C2Result) -> str:
    t = THRESHOLDS
    table = pd.DataFrame(r.scores).drop(columns="seed").groupby("model", sort=False).mean()
    cols = [f"{a}_{m}" for m in ("acc", "logp") for a in AXES]
    lines = ["| model (mean over seeds) | math acc | fact acc | skill acc | math log p | fact log p | skill log p |",
             "|---|---|---|---|---|---|---|"]
    for model, row in table.iterrows():
        lines.append(f"| {arm_label(model)} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    v = judge(r.to_json())
    r2, k2 = v.get("reading2") or {}, classify_reading2(r.to_json())
    cos = r.lora.get("direction_cosines", {})
    lines += ["",
              f"**Reading 1** (knowledge the base had; rank-1 = norm-matched rank-1 of the Full-RL update): "
              "math recovery "
              f"{_ci(r.math_recovery)}, knowledge-probe drop (full − rank-1) {_ci(r.fact_drop)}, skill drop "
              f"{_ci(r.skill_drop)} over {r.math_recovery['n']} seeds. "
              + verdict_sentence(sys.modules[__name__], r.to_json())
              + f" Thresholds in `claims.c2`: math recovery ≥ {t['min_math_recovery']:g} and a drop ≥ "
              f"{t['min_knowledge_drop']:g} with lower bound > 0, bootstrap and t, on the probe or the skill.",
              ""]
    if notes(r.to_json()):
        lines += [" ".join(notes(r.to_json())), ""]
    if r2:
        lines.append(f"**Reading 2** (multi-task RL, math + reversal rewards): full-RL skill gain "
                     f"{_ci(r2['skill_gain'])}; rank-1 recovery of the math gain {_ci(r2['math_recovery'])}, "
                     f"of the skill gain {_ci(r2['skill_recovery'])}; verdict: **{k2.klass}** — {k2.reason}"
                     + f" (holds if math recovery ≥ {t['min_math_recovery']:g} while skill recovery ≤ "
                     f"{t['max_other_recovery']:g}).")
        lines.append("")
    else:
        lines += ["**Reading 2** (multi-task RL) was not run in this profile: it has no multi-task arm.", ""]
    if cos:
        mean = lambda k: sum(c[k] for c in cos.values()) / len(cos)  # noqa: E731
        lines.append(f"**Rank-1 LoRA arm:** the merged LoRA update has rank 1 (max σ2/σ1 = "
                     f"{r.lora['max_sigma2_over_sigma1']:.1e}); |cos| of its direction with the full update's top "
                     f"singular vectors, mean over matrix types: u1 {mean('cos_u'):.3f}, v1 {mean('cos_v'):.3f} "
                     f"(random baselines {mean('baseline_u'):.3f}, {mean('baseline_v'):.3f}).")
    return "\n".join(lines)


def _below_ceiling(stored: dict, axis: str) -> tuple[str, bool, str]:
    """The precondition of a drop on ``axis``: the probe can show one (not at its ceiling, or a damaging
    control drops on it: :func:`ceilings`)."""
    can_drop, _ = ceilings(stored).get(axis, (True, float("nan")))
    return (f"{axis} below its ceiling", can_drop, ceiling_checks(stored).get(axis, ""))


def classify(stored: dict) -> Verdict:
    """Reading 1 in the vocabulary of claims.verdict (C2's table): all of (math recovery: mean ≥
    min_math_recovery; any of (fact drop, skill drop), each mean ≥ min_knowledge_drop with lower bounds > 0
    and the probe below its ceiling). Reading 2 is reported beside it (classify_reading2)."""
    t = THRESHOLDS
    math = judge_summary(stored["math_recovery"], t["min_math_recovery"], AT_LEAST, bound=None, require_mean=True,
                         quantity="rank-1 math recovery")
    drops = [judge_summary(stored[f"{axis}_drop"], t["min_knowledge_drop"], AT_LEAST, bound=0.0, strict=True,
                           require_mean=True, preconditions=[_below_ceiling(stored, axis)],
                           quantity=f"{axis} drop (full − rank-1)") for axis in ("fact", "skill")]
    return all_of([math, any_of(drops, quantity="a drop on the knowledge probe or the second skill")], quantity="C2")


def classify_reading2(stored: dict) -> Verdict | None:
    """Reading 2 (multi-task RL): precondition a skill gain (both lower bounds > 0); all of (math recovery ≥
    min_math_recovery, skill recovery ≤ max_other_recovery, both on the mean). None without a multi-task arm."""
    r2, t = stored.get("reading2"), THRESHOLDS
    if not r2:
        return None
    gain = r2["skill_gain"]
    gained = ("skill gained (multi-task)", all(gain[k][0] > 0 for k in ("ci", "t_ci") if gain.get(k)),
              f"skill gain t {gain.get('t_ci')}")
    math = judge_summary(r2["math_recovery"], t["min_math_recovery"], AT_LEAST, bound=None, require_mean=True,
                         quantity="multi-task math recovery")
    skill = judge_summary(r2["skill_recovery"], t["max_other_recovery"], AT_MOST, bound=None, require_mean=True,
                          quantity="multi-task skill recovery")
    return all_of([math, skill], [gained], quantity="C2 reading 2")
