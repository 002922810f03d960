"""The C2 readings (claims.readings.ADDED: added after tiny's results were seen; no verdict reads them), measured
in notebook 03 and written to ``reports/<profile>/readings_c2.json``.

* **Random-direction control** (:func:`random_control`). C2 asks whether the rank-1 part of the update loses
  knowledge. A loss could come from *any* perturbation of that size, not from RL's direction. The control is
  a random rank-1 direction of the same Frobenius norm, ‖ΔW‖_F a bᵀ with a, b random unit vectors, the same
  size as the norm-matched rank-1 model ‖ΔW‖_F u1 v1ᵀ (analysis.rank1, variant "random"), scored on the same
  probes. For each probe and seed, d = acc(random) − acc(rank-1): how much more the rank-1 model loses than a
  random direction. The rank-1 loss is **specific to RL's direction** when d's mean is ≥ ``min_knowledge_drop``
  (C2's own threshold) and both intervals' lower bounds are above 0. It is **no larger than a random
  direction's** when both upper bounds are below ``min_knowledge_drop``. Otherwise it is undecided.
* **Forward KL as a covariate** (:func:`kl_covariate`). RL's Razor (arXiv 2509.04259) finds that forgetting
  under fine-tuning tracks the forward KL D_KL(π_base ‖ π_model) on the training prompts. Estimator: draw
  ``KL_SAMPLES`` completions per training prompt (at most ``KL_PROMPTS`` prompts, spread over the training
  set) from the base at temperature 1 (the full distribution, as the model defines it), at most the task's
  evaluation length. Score each completion under both models (sampling.scoring). The estimate is
  KL = mean over completions of log π_base(y|x) − log π_model(y|x): Monte Carlo, unbiased, and with the
  standard error of that mean. A completion cut at the length limit makes it the KL between the
  distributions of the first ``max_new_tokens`` tokens. The same completions serve every model. Models:
  the full-RL update, the norm-matched rank-1 model and the PR1S arm's trained model, for every seed. Each
  model's forgetting (acc(base) − acc(model) on the knowledge probe and on the second skill) comes from
  C2's score rows. The reading is Spearman's ρ of KL against forgetting over all (model, seed) points. It
  is a description, not a test: the points share seeds, and RL's Razor's claim is about many fine-tunes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats as scipy_stats

from .. import fileio, paths
from ..analysis import rank1
from ..sampling import kv_sampler, scoring
from ..world import evaluate, tasks
from . import c2, parallel, readings, suites
from .base import interval, score_models
from .stats import fmt_both, summarize

THRESHOLD = readings.THRESHOLDS["C2"]  # {"min_knowledge_drop": C2's own}
KL_PROMPTS = 64     # training prompts the KL is estimated on (spread over the training set)
KL_SAMPLES = 4      # base completions per prompt
KL_SEED = 0         # the sampling seed (a forked RNG: the caller's stream is untouched)
SPECIFIC, NOT_LARGER, UNDECIDED = "specific to RL's direction", "no larger than a random direction's", "undecided"


# ----------------------------------------------------------------------------------------------
# Random-direction control
# ----------------------------------------------------------------------------------------------

def random_rows(full_runs: dict[int, Path], sets: dict, processes: int = 1) -> list[dict]:
    """C2's score rows (same probes and scoring as c2.measure_reading1) of the random-direction model per seed."""
    specs = [(s, {"model": "random"}, (run, sets, "random", 1), "random", False) for s, run in full_runs.items()]
    return score_models(c2.model_scores, specs, processes)


def classify_control(d: Sequence[float], margin: float = THRESHOLD["min_knowledge_drop"]) -> dict:
    """d per seed = acc(random) − acc(rank-1) on one probe -> its summary and class (module docstring)."""
    s = summarize(d)
    if len(s["values"]) >= 2 and s["mean"] >= margin and readings.under_both(lambda k: interval(s, k)[0] > 0):
        cls = SPECIFIC
    elif len(s["values"]) >= 2 and readings.under_both(lambda k: interval(s, k)[1] < margin):
        cls = NOT_LARGER
    else:
        cls = UNDECIDED
    return {"random_minus_rank1": s, "class": cls}


def random_control(score_rows: Sequence[dict], random: Sequence[dict]) -> dict:
    """Per probe (fact, skill): the rank-1 model's and the random direction's loss against the base (mean over
    seeds) and the classified paired difference."""
    wide = pd.DataFrame(list(score_rows) + list(random)).set_index(["seed", "model"])
    seeds = sorted({r["seed"] for r in random})
    out = {}
    for axis in ("fact", "skill"):
        col = f"{axis}_acc"
        acc = lambda m: [float(wide.loc[(s, m), col]) for s in seeds]  # noqa: E731
        base, rank_1, rand = acc("base"), acc("normmatch"), acc("random")
        out[axis] = {"loss_rank1": float(np.mean(np.subtract(base, rank_1))),
                     "loss_random": float(np.mean(np.subtract(base, rand))),
                     **classify_control(list(np.subtract(rand, rank_1)))}
    return out


# ----------------------------------------------------------------------------------------------
# Forward KL on the training prompts
# ----------------------------------------------------------------------------------------------

def kl_prompts(profile: str, n: int = KL_PROMPTS) -> list[tasks.Item]:
    return tasks.spread_subset(suites.math_rl_train(profile), n)


def base_samples(base, tok, items: Sequence[tasks.Item], n_samples: int = KL_SAMPLES, seed: int = KL_SEED,
                 max_new_tokens: int | None = None) -> tuple[list[list[int]], list[list[int]], np.ndarray]:
    """(prompt ids, completion ids, log π_base of each completion): ``n_samples`` per prompt at temperature 1,
    each at most ``max_new_tokens`` long (default: the longest evaluation length of the items' tasks)."""
    prompts = [tok(evaluate.prompt_text(tok, it))["input_ids"] for it in items for _ in range(n_samples)]
    new = max_new_tokens or max(evaluate.MAX_NEW_TOKENS[it.task] for it in items)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        done = kv_sampler.sample(base.eval(), prompts, new, [tok.eos_token_id], tok.pad_token_id, do_sample=True)
    completions = done.lists()
    return prompts, completions, _logprobs(base, prompts, completions)


def _logprobs(model, prompts, completions) -> np.ndarray:
    got = scoring.completion_logprobs(model, prompts, completions)
    if got is None:
        raise ValueError(f"the KL reading needs a model the kv scorer supports, not {type(model).__name__}")
    return got


def forward_kl(model, samples) -> dict:
    """D_KL(π_base ‖ π_model) from :func:`base_samples`: the mean of log π_base − log π_model and its standard error."""
    prompts, completions, base_logp = samples
    diff = base_logp - _logprobs(model, prompts, completions)
    return {"kl": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff))), "n": len(diff)}


def kl_covariate(full_runs: dict[int, Path], pr1s_runs: dict[int, Path] | None, profile: str, pr1s: str | None,
                 score_rows: Sequence[dict]) -> dict:
    """KL of each (model, seed) with its forgetting from ``score_rows``, and Spearman's ρ over the points."""
    first = next(iter(full_runs.values()))
    base, tok, _ = parallel.run_pair(first)
    samples = base_samples(base, tok, kl_prompts(profile))
    wide = pd.DataFrame(list(score_rows)).set_index(["seed", "model"])
    points = []
    for s, run in full_runs.items():
        base_s, _, trained = parallel.run_pair(run)
        models = {"full": rank1.build_substituted_model(base_s, trained, "full"),
                  "normmatch": rank1.build_substituted_model(base_s, trained, "normmatch")}
        if pr1s and pr1s_runs and s in pr1s_runs:
            models[pr1s] = parallel.run_pair(pr1s_runs[s])[2]
        for name, m in models.items():
            kl = forward_kl(m, samples)
            points.append({"seed": s, "model": name, **kl,
                           **{f"{ax}_loss": float(wide.loc[(s, "base"), f"{ax}_acc"] - wide.loc[(s, name), f"{ax}_acc"])
                              for ax in ("fact", "skill")}})
    rho = {}
    for ax in ("fact", "skill"):
        x, y = [p["kl"] for p in points], [p[f"{ax}_loss"] for p in points]
        r = scipy_stats.spearmanr(x, y) if len(set(y)) > 1 and len(set(x)) > 1 else None
        rho[ax] = None if r is None else {"rho": float(r.statistic), "p": float(r.pvalue), "n": len(points)}
    return {"estimator": "mean over base samples of log π_base(y|x) − log π_model(y|x), temperature 1",
            "prompts": len(samples[0]) // KL_SAMPLES, "samples_per_prompt": KL_SAMPLES,
            "points": points, "spearman": rho,
            "kl_by_model": {m: summarize([p["kl"] for p in points if p["model"] == m])
                            for m in dict.fromkeys(p["model"] for p in points)}}


# ----------------------------------------------------------------------------------------------
# The file and its sentences
# ----------------------------------------------------------------------------------------------

def c2_readings(profile: str, score_rows: Sequence[dict], random: Sequence[dict], kl: dict) -> dict:
    out = {"added": readings.ADDED, "threshold": THRESHOLD, "random_control": random_control(score_rows, random),
           "kl_covariate": kl}
    fileio.write_json(paths.report_dir(profile) / "readings_c2.json", out)
    return out


def lines(result: dict) -> list[str]:
    """The sentences notebook 03 prints."""
    out = []
    for axis, r in result["random_control"].items():
        d = r["random_minus_rank1"]
        name = "knowledge probe" if axis == "fact" else "second skill"
        out.append(f"{name}: loss vs base, rank-1 {r['loss_rank1']:.3f}, random direction {r['loss_random']:.3f}; "
                   f"acc(random) − acc(rank-1) {fmt_both(d)}: {r['class']}")
    kl = result["kl_covariate"]
    for m, s in kl["kl_by_model"].items():
        out.append(f"forward KL(base ‖ {m}) on {kl['prompts']} training prompts × {kl['samples_per_prompt']}: "
                   f"{s['mean']:.4f} nats (mean over seeds)")
    for ax, r in kl["spearman"].items():
        out.append(f"Spearman ρ(KL, {ax} loss) over {r['n']} models: {r['rho']:.2f} (p {r['p']:.2g})" if r else
                   f"Spearman ρ(KL, {ax} loss): not defined (no variation)")
    return out
