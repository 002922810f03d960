"""C2's measurements (notebook 03): scoring the base, Full-RL, rank-1 and residual models on the three axes
(math test, knowledge probe, second skill), the multi-task rank-k curves, the per-seed tables and the
direction cosines. The claim, its thresholds and its verdict are claims.c2, which re-exports these names."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import models
from ..analysis import rank1, svd, targets
from ..training import runs
from ..world import chat_tasks, tasks
from . import fast_eval, parallel, suites
from .base import base_reused, score_models
from .stats import last_fraction_mean, recovery, summarize

AXES = ("math", "fact", "skill")  # math test split, knowledge probe, second (non-math) skill
VARIANTS = (("base", 1), ("full", 1), ("normmatch", 1), ("trunc", 1), ("residual", 1))  # reading 1
MIX_VARIANTS = VARIANTS + (("rankk", 2), ("rankk", 4), ("rankk", 8))  # reading 2: rank-k curves per task
DIRECTION_COLUMNS = ["cos_u", "cos_v", "baseline_u", "baseline_v"]


# ----------------------------------------------------------------------------------------------
# Scoring models on the three axes
# ----------------------------------------------------------------------------------------------

def eval_sets(n_math: int = 300, n_fact: int | None = None, n_skill: int = 300, profile: str = "tiny") -> dict:
    """The three C2 axes of a profile (suites): held-out math problems (spread over the test split), the
    knowledge probe (all of it by default), the second skill's test words."""
    return {"math": suites.math_test(profile, n_math), "fact": suites.facts(profile, n_fact),
            "skill": suites.skill_test(profile, n_skill)}


def scores(model, tokenizer, sets: dict) -> dict:
    """Per axis: greedy exact-match accuracy and the mean log-likelihood of the correct answer (claims.fast_eval:
    the kv sampler and scorer, the same numbers as world.evaluate's plain paths)."""
    out = {}
    for axis, items in sets.items():
        # a character-level tokenizer lacking a character of the probe would score <unk> silently: refuse
        # instead (a chat model's byte-level BPE has no unknown characters)
        synthetic = [it for it in items if it.task not in chat_tasks.CHAT_TASKS]
        models.check_charset(tokenizer, [it.prompt + tasks.completion_for(it) for it in synthetic])
        out[f"{axis}_acc"] = fast_eval.greedy_accuracy(model, tokenizer, items).accuracy
        out[f"{axis}_logp"] = float(fast_eval.answer_logprob(model, tokenizer, items).mean())
    return out


def model_scores(run: Path, sets: dict, variant: str | None, k: int = 1) -> dict:
    """``scores`` of one model of a finished run: a substituted model (rank1.build_substituted_model), or
    with ``variant`` None the trained model as it came out of training."""
    base, tok, trained = parallel.run_pair(run)
    return scores(trained if variant is None else rank1.build_substituted_model(base, trained, variant, k=k), tok, sets)


def _model_specs(runs_by_seed: dict[int, Path], sets: dict, variants,
                 trained_runs: dict[str, dict[int, Path]] | None = None) -> list[tuple]:
    """base.score_models specs of every model to score, seed by seed: the substituted models of the seed's
    run, then each other arm's trained model (variant None) where that arm has the seed; a later seed's
    base is not scored again when all runs share it (base.base_reused)."""
    specs = []
    for i, (s, run) in enumerate(runs_by_seed.items()):
        specs += [(s, {"model": f"rank-{k}" if v == "rankk" else v}, (run, sets, v, k), v,
                   base_reused(runs_by_seed, i, v))
                  for v, k in variants]
        specs += [(s, {"model": arm}, (by_seed[s], sets, None, 1), None, False)
                  for arm, by_seed in (trained_runs or {}).items() if s in by_seed]
    return specs


def measure_reading1(full_runs: dict[int, Path], trained_runs: dict[str, dict[int, Path]], sets: dict,
                     processes: int = 1) -> list[dict]:
    """Rows (seed, model, <axis>_acc, <axis>_logp): the substituted models of each seed's Full-RL run,
    then each other arm's final model as trained (``trained_runs``: experiment -> seed -> run; an arm
    trained with fewer seeds contributes only the seeds it has). ``processes``: see base.score_models."""
    return score_models(model_scores, _model_specs(full_runs, sets, VARIANTS, trained_runs), processes)


def measure_reading2(mix_runs: dict[int, Path], sets: dict, processes: int = 1) -> list[dict]:
    """Rows of the substituted models (with rank-k) of the multi-task runs, on math and the skill."""
    return score_models(model_scores, _model_specs(mix_runs, {t: sets[t] for t in ("math", "skill")}, MIX_VARIANTS),
                        processes)


def per_task_recovery(table: pd.DataFrame, tasks=("math", "skill"), metric: str = "acc") -> pd.DataFrame:
    """Recovery (as in C0) separately per task: one row per (seed, model, task).

    ``table``: one row per (seed, model) with columns ``<task>_<metric>``; it must hold the models
    "base" and "full" of every seed. recovery = (x(model) − x(base)) / (x(full) − x(base)); the gain
    x(full) − x(base) is returned alongside (recovery is NaN where the gain is 0).
    """
    rows = []
    for seed, part in table.groupby("seed"):
        by_model = part.set_index("model")
        missing = {"base", "full"} - set(by_model.index)
        if missing:
            raise ValueError(f"seed {seed}: per-task recovery needs the models {sorted(missing)}")
        for task in tasks:
            col = f"{task}_{metric}"
            b, f = by_model.loc["base", col], by_model.loc["full", col]
            for model, x in by_model[col].items():
                rows.append({"seed": seed, "model": model, "task": task, "value": float(x), "gain": float(f - b),
                             "recovery": recovery(x, b, f)})
    return pd.DataFrame(rows)


def paired_deltas(table: pd.DataFrame, reference: str = "base") -> pd.DataFrame:
    """Per (axis, measure, model): mean over seeds of x(model) − x(reference) of the same seed, with its
    bootstrap CI. ``table``: one row per (seed, model), columns ``<axis>_<measure>`` (``scores``)."""
    cols = [c for c in table.columns if c not in ("seed", "model")]
    ref = table[table["model"] == reference].set_index("seed")[cols]
    if ref.empty:
        raise ValueError(f"paired_deltas needs the reference model {reference!r} for every seed")
    rows = []
    for model, part in table[table["model"] != reference].groupby("model", sort=False):
        diff = part.set_index("seed")[cols] - ref.loc[part["seed"]].values
        for col in cols:
            axis, measure = col.rsplit("_", 1)
            s = summarize(diff[col].tolist())
            rows.append({"axis": axis, "measure": measure, "model": model, "mean": s["mean"], "ci_lo": s["ci"][0],
                         "ci_hi": s["ci"][1], "n": s["n"]})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# The arms as trained, and the direction of the rank-1 LoRA update
# ----------------------------------------------------------------------------------------------

def arm_summary(runs_by_arm: dict[str, dict[int, Path]]) -> list[dict]:
    """Per (arm, seed), from the run's own logs: training reward over the last quarter of steps and
    the final greedy accuracies (test, knowledge probe, skill); each arm over the seeds it has."""
    rows = []
    seeds = list(dict.fromkeys(s for by_seed in runs_by_arm.values() for s in by_seed))
    for s in seeds:
        for arm, by_seed in runs_by_arm.items():
            if s not in by_seed:
                continue
            m, e = runs.run_curves(by_seed[s])
            last = e.iloc[-1]
            rows.append({"arm": arm, "seed": s, "reward_last_quarter": last_fraction_mean(m, "reward"),
                         "test_acc": last.test_acc, "fact_acc": last.fact_acc, "skill_acc": last.skill_acc})
    return rows


def top_direction_cosines(base_state: dict, a_state: dict, b_state: dict) -> pd.DataFrame:
    """Per target matrix, |cos| between the top singular vectors (u1 and v1) of two updates of the same base
    (e.g. the merged rank-1 LoRA update vs the full-RL update), with the random-vector baseline sqrt(2/(π·dim))."""
    da, db = rank1.deltas(base_state, a_state), rank1.deltas(base_state, b_state)
    rows = []
    for name in da:
        if float(da[name].abs().max()) == 0 or float(db[name].abs().max()) == 0:
            continue  # a zero update has no direction
        ua, _, va = svd.svd_topk(da[name], 1, method="exact")
        ub, _, vb = svd.svd_topk(db[name], 1, method="exact")
        m, n = da[name].shape
        rows.append({"name": name, "type": targets.matrix_type(name), "layer": targets.layer_index(name),
                     "cos_u": abs(float(ua[:, 0] @ ub[:, 0])), "cos_v": abs(float(va[:, 0] @ vb[:, 0])),
                     "baseline_u": float(np.sqrt(2 / (np.pi * m))), "baseline_v": float(np.sqrt(2 / (np.pi * n)))})
    return pd.DataFrame(rows)


def lora_directions(lora_runs: dict[int, Path], full_runs: dict[int, Path]) -> tuple[pd.DataFrame, list[float]]:
    """(per matrix and seed: top_direction_cosines of the merged LoRA update vs the Full-RL update,
    σ2/σ1 of every merged LoRA update — ~0, since a rank-1 LoRA merges to a rank-1 update)."""
    cos, rank_ratio = [], []
    for s in lora_runs:
        base, _, lora = runs.load_run_pair(lora_runs[s])
        full = runs.load_run_pair(full_runs[s])[2]
        cos.append(top_direction_cosines(base.state_dict(), lora.state_dict(), full.state_dict()).assign(seed=s))
        for dW in rank1.deltas(base, lora).values():
            sv = svd.svd_topk(dW, 2, method="exact")[1]
            rank_ratio.append(float(sv[1] / sv[0]) if sv[0] > 0 else 0.0)
    return pd.concat(cos), rank_ratio


def direction_by_type(cos: pd.DataFrame) -> pd.DataFrame:
    return cos.groupby("type")[DIRECTION_COLUMNS].mean()


# ----------------------------------------------------------------------------------------------
# Verdict and c2.json
# ----------------------------------------------------------------------------------------------
