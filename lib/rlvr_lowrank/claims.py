"""The paper's claims made operational: metric, threshold, direction, CI rule, verdict.

The thresholds below were written before any training run of this project was looked at (git
history shows this file landing before the results); they are never moved to make a claim pass.
Each claim quotes the paper's wording (abstract of arXiv 2605.06523, or AlphaRL for C0).

Confidence intervals: percentile bootstrap of the mean over seeds (10,000 resamples, seeded), on
*paired* per-seed differences where two arms share a seed. With 3 seeds a bootstrap interval is
narrow-ish by construction (it spans roughly the observed range); the t-interval is reported next
to it, and a claim needs at least ``MIN_SEEDS`` seeds or it is "inconclusive".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

MIN_SEEDS = 3
N_BOOTSTRAP = 10_000
CI_LEVEL = 0.95

HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str  # the paper's statement (quoted or closely paraphrased, with its source)
    test: str  # our operational test
    thresholds: dict = field(default_factory=dict)


C0 = Claim(
    "C0",
    "AlphaRL (arXiv 2510.00553): the rank-1 subspace of the RL update recovers >99% of the reasoning gain; "
    "2605.06523 abstract: 'enhanced reasoning capabilities ... are primarily concentrated within the rank-1 components'.",
    "recovery = (acc(variant) - acc(base)) / (acc(full) - acc(base)) on the held-out math test, per seed; "
    "holds if the norm-matched rank-1 model's mean recovery >= min_recovery with CI lower bound >= min_recovery_ci_lo, "
    "and the random-direction control's CI upper bound < max_random_recovery. Inconclusive when the full-RL gain "
    "is below min_gain (nothing to recover).",
    {"min_recovery": 0.9, "min_recovery_ci_lo": 0.75, "max_random_recovery": 0.25, "min_gain": 0.1},
)

C1 = Claim(
    "C1",
    "2605.06523 abstract: with Periodic Rank-1 Substitution 'the model can achieve satisfactory performance on the "
    "test set even when its rewards remain relatively low during the training process' (implicit reward overfitting).",
    "paired per seed, PR1S (truncated, K=10) vs Full RL from the same base and seed: Δreward = mean training reward "
    "(Full - PR1S) over the last quarter of steps, CI lower bound > 0 and mean >= min_reward_gap; Δtest = final greedy "
    "test accuracy (Full - PR1S): |mean| <= max_test_gap and CI upper bound <= max_test_gap_ci_hi.",
    {"min_reward_gap": 0.02, "max_test_gap": 0.05, "max_test_gap_ci_hi": 0.10, "last_fraction": 0.25},
)

C2 = Claim(
    "C2",
    "2605.06523 abstract: 'The effective rank-1 component in RLVR don't maintain other model knowledge except "
    "mathematical reasoning capability.'",
    "reading 1 (knowledge the base had): the rank-1 (norm-matched) model keeps math (recovery >= min_math_recovery) "
    "while its knowledge-probe or second-skill accuracy falls below the full-RL model's by >= min_knowledge_drop with "
    "a CI excluding 0; reading 2 (multi-task RL): rank-1 recovery of the skill gain <= max_other_recovery while the "
    "math recovery >= min_math_recovery.",
    {"min_math_recovery": 0.8, "min_knowledge_drop": 0.05, "max_other_recovery": 0.5},
)
# How the two readings combine (fixed with the thresholds, before any C2 result existed): the paper's
# "don't maintain other model knowledge" is about knowledge the model *had*, so reading 1 decides the C2
# verdict; reading 2 is reported next to it with its own verdict. Reading 2 is "inconclusive" when the
# multi-task run did not raise the skill (CI of the skill gain includes 0): there is no gain to keep.

C3 = Claim(
    "C3",
    "2605.06523 abstract: 'The distribution of singular values of almost all linear layers in RLVR-trained model "
    "behaves like heavy-tailed distribution.'",
    "fraction of target matrices of the RL-trained model whose ESD is heavy-tailed (spectra.is_heavy_tailed: "
    "reliable power-law fit preferred over an exponential tail) >= min_fraction ('almost all'), CI over seeds; "
    "reported next to the base model and the entry-shuffled control.",
    {"min_fraction": 0.9},
)

C4 = Claim(
    "C4",
    "2605.06523 abstract: 'the left singular vectors associated with rank-1 components demonstrate a stronger "
    "alignment tendency during training'.",
    "per seed, mean over target matrices and recorded steps of |cos(u1(t), u1(T))| minus the same for v1, and minus "
    "the random-vector baseline: both CIs over seeds have lower bound > 0.",
    {"min_u_minus_v": 0.0, "min_u_minus_baseline": 0.0},
)

CLAIMS = {c.id: c for c in (C0, C1, C2, C3, C4)}


# ----------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------

def bootstrap_ci(values: Sequence[float], level: float = CI_LEVEL, n: int = N_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def t_interval(values: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float]:
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))


def summarize(values: Sequence[float]) -> dict:
    x = [float(v) for v in values]
    return {"mean": float(np.mean(x)) if x else float("nan"), "ci": bootstrap_ci(x), "t_ci": t_interval(x),
            "n": len(x), "values": x}


def recovery(acc_variant: float, acc_base: float, acc_full: float) -> float:
    """(acc(variant) - acc(base)) / (acc(full) - acc(base)); NaN when full RL gained nothing."""
    gain = acc_full - acc_base
    return float("nan") if abs(gain) < 1e-12 else (acc_variant - acc_base) / gain


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------

def verdict_c0(per_seed: dict[str, list[float]], gains: list[float]) -> dict:
    """``per_seed``: variant -> recovery per seed (must include 'normmatch' and 'random')."""
    t = C0.thresholds
    rm, rr = summarize(per_seed["normmatch"]), summarize(per_seed["random"])
    out = {"recovery_normmatch": rm, "recovery_random": rr, "gain": summarize(gains)}
    if len(gains) < MIN_SEEDS:
        return {**out, "verdict": INCONCLUSIVE, "why": f"{len(gains)} seed(s) < {MIN_SEEDS}"}
    if np.mean(gains) < t["min_gain"]:
        return {**out, "verdict": INCONCLUSIVE, "why": f"full-RL gain {np.mean(gains):.3f} < {t['min_gain']}"}
    ok = rm["mean"] >= t["min_recovery"] and rm["ci"][0] >= t["min_recovery_ci_lo"] and rr["ci"][1] < t["max_random_recovery"]
    return {**out, "verdict": HOLDS if ok else FAILS}


def verdict_c1(reward_gap: list[float], test_gap: list[float]) -> dict:
    """Paired per-seed gaps Full - PR1S: training reward (last quarter) and final greedy test accuracy."""
    t = C1.thresholds
    rg, tg = summarize(reward_gap), summarize(test_gap)
    out = {"reward_gap": rg, "test_gap": tg}
    if len(reward_gap) < MIN_SEEDS:
        return {**out, "verdict": INCONCLUSIVE, "why": f"{len(reward_gap)} seed(s) < {MIN_SEEDS}"}
    lower_reward = rg["ci"][0] > 0 and rg["mean"] >= t["min_reward_gap"]
    comparable_test = abs(tg["mean"]) <= t["max_test_gap"] and tg["ci"][1] <= t["max_test_gap_ci_hi"]
    out.update(lower_reward=bool(lower_reward), comparable_test=bool(comparable_test))
    return {**out, "verdict": HOLDS if (lower_reward and comparable_test) else FAILS}


# ----------------------------------------------------------------------------------------------
# C1 from run directories
# ----------------------------------------------------------------------------------------------

def run_curves(run) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    """(metrics, evals) of a finished run as DataFrames (refuses an unfinished run)."""
    import pandas as pd

    from . import io
    from .train import require_done

    run = require_done(run)
    return pd.DataFrame(io.read_jsonl(run / "metrics.jsonl")), pd.DataFrame(io.read_jsonl(run / "evals.jsonl"))


def c1_per_seed(full_run, pr1s_run, last_fraction: float = C1.thresholds["last_fraction"]) -> dict:
    """Paired numbers of one seed: training reward over the last part of training, final evals."""
    fm, fe = run_curves(full_run)
    pm, pe = run_curves(pr1s_run)
    n = int(min(fm["step"].max(), pm["step"].max()))
    start = n - max(1, int(round(last_fraction * n)))
    rf = float(fm.loc[fm["step"] > start, "reward"].mean())
    rp = float(pm.loc[pm["step"] > start, "reward"].mean())
    lf, lp = fe.iloc[-1], pe.iloc[-1]
    return {"reward_full": rf, "reward_pr1s": rp, "reward_gap": rf - rp,
            "test_full": float(lf["test_acc"]), "test_pr1s": float(lp["test_acc"]),
            "test_gap": float(lf["test_acc"] - lp["test_acc"]),
            "train_full": float(lf["train_acc"]), "train_pr1s": float(lp["train_acc"]),
            "gap_train_test_full": float(lf["train_acc"] - lf["test_acc"]),
            "gap_train_test_pr1s": float(lp["train_acc"] - lp["test_acc"])}


# ----------------------------------------------------------------------------------------------
# C0 from run directories
# ----------------------------------------------------------------------------------------------

C0_VARIANTS = [("base", 1), ("full", 1), ("normmatch", 1), ("trunc", 1), ("rankk", 2), ("rankk", 4), ("rankk", 8),
               ("residual", 1), ("random", 1)]


def c0_accuracies(run, items, variants=C0_VARIANTS, seed: int = 0) -> list[dict]:
    """Greedy test accuracy of each substituted model built from a finished run's final weights.

    Models follow AlphaRL's convention (rank1.build_substituted_model): non-target tensors (norms,
    embeddings) stay at base in every variant, including "full" = W0 + ΔW on the target matrices. So
    "full" can differ slightly from the trained model; it is the denominator of the recovery, which
    keeps every variant comparable (only the target-matrix update differs between them).
    """
    from . import evaluate, rank1

    base, tok, trained = load_run_pair(run)
    rows = []
    for variant, k in variants:
        m = rank1.build_substituted_model(base, trained, variant, k=k, seed=seed)
        label = f"rank-{k}" if variant == "rankk" else variant
        rows.append({"variant": label, "k": k, "test_acc": evaluate.greedy_accuracy(m, tok, items).accuracy})
    return rows


# ----------------------------------------------------------------------------------------------
# C2: knowledge loss of the rank-1 component (issue 5)
# ----------------------------------------------------------------------------------------------

C2_AXES = ("math", "fact", "skill")  # math test split, knowledge probe, second (non-math) skill
C2_VARIANTS = (("base", 1), ("full", 1), ("normmatch", 1), ("trunc", 1), ("residual", 1))  # reading 1
C2_MIX_VARIANTS = C2_VARIANTS + (("rankk", 2), ("rankk", 4), ("rankk", 8))  # reading 2: rank-k curves per task


def c2_eval_sets(n_math: int = 300, n_fact: int | None = None, n_skill: int = 300) -> dict:
    """The three C2 axes: held-out math problems (spread over difficulties), facts, reversal test words."""
    from . import tasks

    facts = tasks.load_items("fact")
    return {"math": tasks.spread_subset(tasks.load_items("math", "test"), n_math), "fact": facts[: n_fact or len(facts)],
            "skill": tasks.load_items("skill", "test")[:n_skill]}


def c2_scores(model, tokenizer, sets: dict) -> dict:
    """Per axis: greedy exact-match accuracy and the mean log-likelihood of the correct answer."""
    from . import evaluate, models, tasks

    out = {}
    for axis, items in sets.items():
        # a tokenizer lacking a character of the probe would score <unk> silently: refuse instead
        models.check_charset(tokenizer, [it.prompt + tasks.completion_for(it) for it in items])
        out[f"{axis}_acc"] = evaluate.greedy_accuracy(model, tokenizer, items).accuracy
        out[f"{axis}_logp"] = float(evaluate.answer_logprob(model, tokenizer, items).mean())
    return out


def load_run_pair(run):
    """(base model, tokenizer, trained model) of a finished run; the trained model is its final weights."""
    import copy

    from . import io, models
    from .train import model_dir, require_done

    run = require_done(run)
    base, tok = models.load_model(model_dir(io.read_yaml(run / "config.yaml")))
    trained = copy.deepcopy(base)
    missing, unexpected = trained.load_state_dict(io.load_tensors(run / "final" / "model.safetensors"), strict=False)
    if unexpected or [m for m in missing if m != "lm_head.weight"]:
        raise ValueError(f"{run}/final/model.safetensors does not match the base architecture "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return base, tok, trained


def c2_model_scores(run, sets: dict, variants=C2_VARIANTS, include_trained: bool = False) -> list[dict]:
    """``c2_scores`` of each substituted model built from a finished run (rank1.build_substituted_model),
    plus, with ``include_trained``, of the run's own final model as trained (label = the experiment)."""
    from . import io, rank1

    base, tok, trained = load_run_pair(run)
    rows = []
    for variant, k in variants:
        m = rank1.build_substituted_model(base, trained, variant, k=k)
        rows.append({"model": f"rank-{k}" if variant == "rankk" else variant, **c2_scores(m, tok, sets)})
    if include_trained:
        rows.append({"model": io.read_yaml(run / "config.yaml")["experiment"], **c2_scores(trained, tok, sets)})
    return rows


def per_task_recovery(scores: "pd.DataFrame", tasks=("math", "skill"), metric: str = "acc") -> "pd.DataFrame":
    """Recovery (as in C0) separately per task: one row per (seed, model, task).

    ``scores``: one row per (seed, model) with columns ``<task>_<metric>``; it must hold the models
    "base" and "full" of every seed. recovery = (x(model) − x(base)) / (x(full) − x(base)); the gain
    x(full) − x(base) is returned alongside (recovery is NaN where the gain is 0).
    """
    import pandas as pd

    rows = []
    for seed, part in scores.groupby("seed"):
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


def paired_deltas(scores: "pd.DataFrame", reference: str = "base") -> "pd.DataFrame":
    """Per (axis, measure, model): mean over seeds of x(model) − x(reference) of the same seed, with its
    bootstrap CI. ``scores``: one row per (seed, model), columns ``<axis>_<measure>`` (c2_scores)."""
    import pandas as pd

    cols = [c for c in scores.columns if c not in ("seed", "model")]
    ref = scores[scores["model"] == reference].set_index("seed")[cols]
    if ref.empty:
        raise ValueError(f"paired_deltas needs the reference model {reference!r} for every seed")
    rows = []
    for model, part in scores[scores["model"] != reference].groupby("model", sort=False):
        diff = part.set_index("seed")[cols] - ref.loc[part["seed"]].values
        for col in cols:
            axis, measure = col.rsplit("_", 1)
            s = summarize(diff[col].tolist())
            rows.append({"axis": axis, "measure": measure, "model": model, "mean": s["mean"], "ci_lo": s["ci"][0],
                         "ci_hi": s["ci"][1], "n": s["n"]})
    return pd.DataFrame(rows)


def verdict_c2(math_recovery: list[float], fact_drop: list[float], skill_drop: list[float],
               mix_math_recovery: list[float] | None = None, mix_skill_recovery: list[float] | None = None,
               mix_skill_gain: list[float] | None = None) -> dict:
    """C2 (see ``C2``): reading 1 from the single-task runs, reading 2 from the multi-task runs.

    ``fact_drop`` / ``skill_drop``: per seed, accuracy of the full model minus that of the norm-matched
    rank-1 model on the knowledge probe / second skill. Reading 1 decides the verdict.
    """
    t = C2.thresholds
    mr, fd, sd = summarize(math_recovery), summarize(fact_drop), summarize(skill_drop)
    out = {"math_recovery": mr, "fact_drop": fd, "skill_drop": sd}
    if len(math_recovery) < MIN_SEEDS:
        out.update(verdict=INCONCLUSIVE, why=f"{len(math_recovery)} seed(s) < {MIN_SEEDS}")
    else:
        keeps_math = mr["mean"] >= t["min_math_recovery"]
        loses = [name for name, d in (("knowledge probe", fd), ("second skill", sd))
                 if d["mean"] >= t["min_knowledge_drop"] and d["ci"][0] > 0]
        out.update(keeps_math=bool(keeps_math), loses=loses, verdict=HOLDS if keeps_math and loses else FAILS)
    if mix_math_recovery is not None:
        r2 = {"math_recovery": summarize(mix_math_recovery), "skill_recovery": summarize(mix_skill_recovery),
              "skill_gain": summarize(mix_skill_gain)}
        if len(mix_math_recovery) < MIN_SEEDS:
            r2.update(verdict=INCONCLUSIVE, why=f"{len(mix_math_recovery)} seed(s) < {MIN_SEEDS}")
        elif r2["skill_gain"]["ci"][0] <= 0:
            r2.update(verdict=INCONCLUSIVE, why="multi-task RL did not raise the skill (gain CI includes 0)")
        else:
            ok = (r2["math_recovery"]["mean"] >= t["min_math_recovery"]
                  and r2["skill_recovery"]["mean"] <= t["max_other_recovery"])
            r2["verdict"] = HOLDS if ok else FAILS
        out["reading2"] = r2
    return out


def top_direction_cosines(base_state: dict, a_state: dict, b_state: dict) -> "pd.DataFrame":
    """Per target matrix, |cos| between the top singular vectors (u1 and v1) of two updates of the same base
    (e.g. the merged rank-1 LoRA update vs the full-RL update), with the random-vector baseline sqrt(2/(π·dim))."""
    import pandas as pd

    from . import rank1

    da, db = rank1.deltas(base_state, a_state), rank1.deltas(base_state, b_state)
    rows = []
    for name in da:
        if float(da[name].abs().max()) == 0 or float(db[name].abs().max()) == 0:
            continue  # a zero update has no direction
        ua, _, va = rank1.svd_topk(da[name], 1, method="exact")
        ub, _, vb = rank1.svd_topk(db[name], 1, method="exact")
        m, n = da[name].shape
        rows.append({"name": name, "type": rank1.matrix_type(name), "layer": rank1.layer_index(name),
                     "cos_u": abs(float(ua[:, 0] @ ub[:, 0])), "cos_v": abs(float(va[:, 0] @ vb[:, 0])),
                     "baseline_u": float(np.sqrt(2 / (np.pi * m))), "baseline_v": float(np.sqrt(2 / (np.pi * n)))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# C3: heavy-tailed singular-value distributions
# ----------------------------------------------------------------------------------------------

def heavy_tail_fractions(table: "pd.DataFrame", suffix: str = "") -> dict:
    """Fractions of matrices called heavy-tailed in an ``spectra.analyze_model`` table.

    ``strict`` is the pre-registered C3 test (spectra.is_heavy_tailed: reliable fit, power law beats an
    exponential tail with p < 0.05, 1.5 <= alpha <= 6). ``ww_band`` is the weaker reading common in
    the WeightWatcher literature (a reliable fit with alpha <= 6, no likelihood-ratio test); it is
    reported for information and never decides the verdict. ``suffix`` selects e.g. "_shuffled" or
    "_delta" columns.
    """
    ht, rel, alpha = table[f"heavy_tailed{suffix}"], table[f"reliable{suffix}"], table[f"alpha{suffix}"]
    return {"strict": float(ht.mean()), "ww_band": float((rel & (alpha <= 6.0)).mean()),
            "reliable": float(rel.mean()), "median_alpha": float(alpha.median()), "n": int(len(table))}


def verdict_c3(fraction_rl: list[float]) -> dict:
    """Per-seed strict heavy-tailed fraction of the RL-trained model's target matrices.

    Holds when the mean over seeds is >= min_fraction ("almost all"); the CI is reported.
    """
    f = summarize(fraction_rl)
    out = {"fraction_rl": f}
    if len(fraction_rl) < MIN_SEEDS:
        return {**out, "verdict": INCONCLUSIVE, "why": f"{len(fraction_rl)} seed(s) < {MIN_SEEDS}"}
    return {**out, "verdict": HOLDS if f["mean"] >= C3.thresholds["min_fraction"] else FAILS}


# ----------------------------------------------------------------------------------------------
# C4: alignment of the rank-1 singular vectors over training
# ----------------------------------------------------------------------------------------------

def trajectory_alignment(run) -> "pd.DataFrame":
    """``spectra.alignment_table`` of a finished run's trajectory (component 0 = the rank-1 direction).

    Steps where ΔW_t = 0 (step 0, before any update) are dropped: their singular vectors are
    arbitrary. The final step is kept in the table (cos_final = 1 there by definition) and excluded by
    :func:`c4_per_seed`.
    """
    from . import spectra, trajectory

    traj = trajectory.load_trajectory(run)
    by_step = {}
    for t, step in enumerate(traj.steps):
        factors = {n: (traj.U[n][t], traj.S[n][t], traj.V[n][t]) for n in traj.names if traj.S[n][t][0] > 0}
        if factors:
            by_step[int(step)] = factors
    if len(by_step) < 2:
        raise ValueError(f"{run}: fewer than two recorded steps with a non-zero update; nothing to align")
    return spectra.alignment_table(by_step)


def c4_per_seed(table: "pd.DataFrame") -> dict:
    """One seed's C4 numbers: mean |cos(x(t), x(T))| over matrices and recorded steps t < T, for
    x = u1 (left) and v1 (right), the random-vector baselines, and the pre-registered differences.
    ``*_excess`` subtracts each side's own chance level (u and v can have different dimensions)."""
    t = table[table["step"] < table.groupby("name")["step"].transform("max")]
    u, v = t[t["side"] == "u"], t[t["side"] == "v"]
    out = {"u_cos_final": float(u["cos_final"].mean()), "v_cos_final": float(v["cos_final"].mean()),
           "u_baseline": float(u["baseline"].mean()), "v_baseline": float(v["baseline"].mean()),
           "u_cos_prev": float(u["cos_prev"].mean()), "v_cos_prev": float(v["cos_prev"].mean())}
    out["u_minus_v"] = out["u_cos_final"] - out["v_cos_final"]
    out["u_minus_baseline"] = out["u_cos_final"] - out["u_baseline"]
    out["u_excess_minus_v_excess"] = (out["u_cos_final"] - out["u_baseline"]) - (out["v_cos_final"] - out["v_baseline"])
    return out


def verdict_c4(u_minus_v: list[float], u_minus_baseline: list[float]) -> dict:
    """Holds when the CIs over seeds of both differences have lower bounds above the thresholds (0)."""
    t = C4.thresholds
    a, b = summarize(u_minus_v), summarize(u_minus_baseline)
    out = {"u_minus_v": a, "u_minus_baseline": b}
    if len(u_minus_v) < MIN_SEEDS:
        return {**out, "verdict": INCONCLUSIVE, "why": f"{len(u_minus_v)} seed(s) < {MIN_SEEDS}"}
    ok = a["ci"][0] > t["min_u_minus_v"] and b["ci"][0] > t["min_u_minus_baseline"]
    return {**out, "verdict": HOLDS if ok else FAILS}


def run_spectra(run, base_state: dict) -> "pd.DataFrame":
    """``spectra.analyze_model`` of a finished run's final weights with the entry-shuffled control and
    the fit of ΔW = W − W_base (``*_shuffled`` and ``*_delta`` columns)."""
    from . import io, spectra
    from .train import require_done

    run = require_done(run)
    trained = io.load_tensors(run / "final" / "model.safetensors")
    unknown = sorted(set(trained) - set(base_state))
    if unknown:
        raise ValueError(f"{run}/final/model.safetensors has tensors the base model lacks: {unknown[:3]}; "
                         "was it trained from another base?")
    state = {**base_state, **trained}
    return spectra.analyze_model(state, shuffled_control=True, include_delta_from=base_state)


# ----------------------------------------------------------------------------------------------
# The claims report: reports/<profile>/claims.json and claims.md from the notebooks' c*.json
# ----------------------------------------------------------------------------------------------

# claim -> (notebook that measures it, figure it rests on, headline quantities as (label, key) in cN.json)
SOURCES = {
    "C0": ("01_rank1_dominance", "fig01_rank1_dominance", [("rank-1 norm-matched recovery", ("recovery", "normmatch")),
                                                          ("random-direction recovery", ("recovery", "random"))]),
    "C1": ("02_reward_overfitting", "fig02_reward_overfitting", [("Δ training reward (Full − PR1S)", ("reward_gap",)),
                                                                ("Δ test accuracy (Full − PR1S)", ("test_gap",))]),
    "C2": ("03_knowledge_loss", "fig03_knowledge_loss", [("rank-1 math recovery", ("math_recovery",)),
                                                        ("fact drop (full − rank-1)", ("fact_drop",)),
                                                        ("skill drop (full − rank-1)", ("skill_drop",)),
                                                        ("multi-task RL: rank-1 skill recovery",
                                                         ("reading2", "skill_recovery"))]),
    "C3": ("04_heavy_tails", "fig04_heavy_tailed_fraction", [("heavy-tailed fraction, Full-RL model", ("fraction_rl",))]),
    "C4": ("05_alignment", "fig05_alignment", [("u-alignment − v-alignment", ("u_minus_v",)),
                                              ("u-alignment − random baseline", ("u_minus_baseline",))]),
}
NOT_RUN = "not run"


def profile_hash(profile: str) -> str:
    """Hash of the profile's configuration; a claims report records it so a stale report is detected."""
    from . import io, profiles

    return io.config_hash(profiles.load(profile))


def _dig(d: dict, keys: tuple) -> dict | None:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d if isinstance(d, dict) and "mean" in d else None


def build_report(profile: str) -> dict:
    """Gather C0–C4 from ``reports/<profile>/c*.json`` into ``claims.json`` and ``claims.md``.

    A claim whose notebook has not written its file is reported as "not run" with the command that
    produces it; a file written for another profile is an error (never silently mixed).
    """
    from . import io, paths

    out_dir = paths.REPORTS / profile
    claims_out = []
    for cid, (notebook, figure, quantities) in SOURCES.items():
        claim = CLAIMS[cid]
        entry = {"id": cid, "paper": claim.paper, "test": claim.test, "thresholds": claim.thresholds,
                 "notebook": f"notebooks/{notebook}.ipynb", "figure": f"figures/{profile}/{figure}.png"}
        path = out_dir / f"{cid.lower()}.json"
        if not path.exists():
            entry.update(verdict=NOT_RUN, why=f"reports/{profile}/{path.name} is missing: run "
                                              f"`python -m rlvr_lowrank notebook {notebook} --profile {profile}`",
                         measured=[], seeds=0)
        else:
            res = io.read_json(path)
            if res.get("profile") != profile:
                raise ValueError(f"{path} was written for profile {res.get('profile')!r}, not {profile!r}; "
                                 f"re-run `python -m rlvr_lowrank notebook {notebook} --profile {profile}`")
            measured = []
            for label, keys in quantities:
                s = _dig(res, keys)
                if s is not None:
                    measured.append({"quantity": label, "mean": s["mean"], "ci": list(s["ci"]), "n": s["n"]})
            entry.update(verdict=res["verdict"], why=res.get("why", ""), measured=measured,
                         seeds=max((m["n"] for m in measured), default=0))
        claims_out.append(entry)
    report = {"profile": profile, "config_hash": profile_hash(profile), "claims": claims_out}
    io.write_json(out_dir / "claims.json", report)
    io.write_text(out_dir / "claims.md", report_markdown(report))
    return report


def _fmt_measured(measured: list[dict]) -> str:
    if not measured:
        return "—"
    return "; ".join(f"{m['quantity']}: {m['mean']:.3f} [{m['ci'][0]:.3f}, {m['ci'][1]:.3f}]" for m in measured)


def results_table(report: dict) -> str:
    """The markdown results table (README and claims.md): one row per claim."""
    lines = ["| claim | measured (mean [95% CI]) | seeds | verdict | notebook → figure |", "|---|---|---|---|---|"]
    for c in report["claims"]:
        nb = c["notebook"].split("/")[-1]
        lines.append(f"| {c['id']} | {_fmt_measured(c['measured'])} | {c['seeds']} | **{c['verdict']}** | "
                     f"`{nb}` → `{c['figure'].split('/')[-1]}` |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    lines = [f"# Claims report — profile `{report['profile']}` (config hash {report['config_hash']})", "",
             "Generated by `python -m rlvr_lowrank claims` from the notebooks' outputs; do not edit.", "",
             results_table(report), ""]
    for c in report["claims"]:
        lines += [f"## {c['id']}: {c['verdict']}", "", f"**Paper.** {c['paper']}", "", f"**Test.** {c['test']}", "",
                  f"**Thresholds.** {c['thresholds']}", "", f"**Measured.** {_fmt_measured(c['measured'])} "
                  f"({c['seeds']} seeds)." + (f" {c['why']}" if c.get("why") else ""), "",
                  f"Notebook `{c['notebook']}`, figure `{c['figure']}`.", ""]
    return "\n".join(lines)


def load_report(profile: str) -> dict:
    """``reports/<profile>/claims.json``, refusing one from another profile or an outdated config."""
    from . import io, paths

    path = paths.REPORTS / profile / "claims.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m rlvr_lowrank claims --profile {profile}` "
                                f"(or `make reproduce PROFILE={profile}`)")
    report = io.read_json(path)
    if report.get("profile") != profile:
        raise ValueError(f"{path} belongs to profile {report.get('profile')!r}, not {profile!r}")
    if report.get("config_hash") != profile_hash(profile):
        raise ValueError(f"{path} was made with config hash {report.get('config_hash')}, but configs/{profile}.yaml "
                         f"now hashes to {profile_hash(profile)}: re-run `make reproduce PROFILE={profile}`")
    return report
