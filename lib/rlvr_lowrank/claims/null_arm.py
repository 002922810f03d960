"""The null arm: the same quantity on RL and on GRPO with a random reward, RL − null with a Welch interval and
its minimum detectable effect (MDE), at matched steps and at matched ‖ΔW‖/‖W‖.

Why a null: an effect that GRPO with a reward drawn Bernoulli(p) independently of the completion also shows
(world.random_reward) is not evidence about RL with a *verifiable* reward; it belongs to any GRPO fine-tune
of this model (Spurious Rewards, arXiv 2506.10947: random rewards lifted Qwen2.5-Math-7B, not Llama3/OLMo2).
These readings were added after tiny's results were seen; they stand beside the pre-registered verdicts and
change none of them.

The two arms are independent runs (the null's seed k shares nothing with RL's seed k but the number), so the
comparison is Welch's two-sample one, never paired: ``welch_interval`` (95%, Welch–Satterthwaite df) and
``power.min_detectable_effect_two_sample`` (80% power, two-sided α = 0.05, from the observed sds). "The null
does not show it" is only ever said with that MDE beside it: a difference below the MDE would likely go unseen.

Matching, two ways (each run is read on its own curves, interpolated linearly between recorded points):

* **matched steps** (``at_matched_steps``): every run at the largest step that every run of both arms recorded.
* **matched ‖ΔW‖/‖W‖** (``at_matched_norm``): the null's update is driven by gradients whose sign is a coin
  flip, so it grows roughly like a random walk (∝ √t) while RL's grows with a consistent sign (∝ t); at equal
  steps RL has moved further. So every run is read at the first step its relative update
  ‖ΔW_t‖_F / ‖W_t‖_F (all target matrices together, ``relative_update``) reaches r* = the smallest final value
  over the runs of both arms, i.e. the largest level every run reaches. It needs ‖ΔW_t‖_F in the trajectory
  (the ``|dF`` entries of trajectory.snapshot); older trajectories lack them and the reading says so.

A profile without a null arm (``arms: null_arm:`` unmapped) gets ``NO_NULL_ARM``, never a comparison with
nothing.
"""
from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy import stats as sps

from ..training import config, runs
from . import notebooks, power, stats
from .stats import summarize

NO_NULL_ARM = "no null arm"
LEVEL = 0.95  # the interval of every claim (claims.stats.CI_LEVEL)
ADDED_AFTER = "added after tiny's results were seen; beside the pre-registered verdicts, changing none"


def null_experiment(profile: str) -> str | None:
    """The profile's null-arm experiment (``arms: null_arm:``), or None when it has none."""
    return notebooks.arms(profile).get("null_arm")


def _finite(values) -> np.ndarray:
    x = np.asarray(list(values.values()) if isinstance(values, Mapping) else list(values), dtype=float)
    return x[np.isfinite(x)]


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Welch's interval of mean(a) − mean(b) (what scipy.stats.ttest_ind(a, b, equal_var=False)
    .confidence_interval gives); NaN when an arm has fewer than two values; the point itself when both sds are 0."""
    a, b = _finite(a), _finite(b)
    if min(len(a), len(b)) < 2:
        return (float("nan"), float("nan"))
    d = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return (d, d)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return (d - half, d + half)


def compare(rl, null, quantity: str, matched: str = "") -> dict:
    """RL − null for one quantity: both arms' summaries, the difference of means, its Welch interval, the
    two-sample MDE, and a sentence. ``rl`` / ``null``: one value per seed (a sequence or {seed: value});
    ``null`` None or empty -> ``{"quantity", "matched", "null": NO_NULL_ARM, "reading": ...}``."""
    out = {"quantity": quantity, "matched": matched, "added": ADDED_AFTER}
    if null is None or len(_finite(null)) == 0:
        return {**out, "null": NO_NULL_ARM, "reading": f"{quantity}: {NO_NULL_ARM} in this profile; not compared"}
    a, b = _finite(rl), _finite(null)
    sa, sb = power.sd_over_seeds(a), power.sd_over_seeds(b)
    mde = power.min_detectable_effect_two_sample(sa, len(a), sb, len(b))
    out.update(rl=summarize(a), null=summarize(b), difference=float(a.mean() - b.mean()) if len(a) else float("nan"),
               welch_ci=welch_interval(a, b), mde=mde)
    out["reading"] = reading(out)
    return out


def reading(c: dict) -> str:
    """One sentence for a ``compare`` result: the difference, its interval, and what the interval allows."""
    if c.get("null") == NO_NULL_ARM:
        return c["reading"]
    lo, hi = c["welch_ci"]
    mde = c["mde"]
    mde_s = mde if power.is_no_variation(mde) else f"{mde:.3g}"
    where = f" at {c['matched']}" if c.get("matched") else ""
    head = (f"{c['quantity']}{where}: RL {c['rl']['mean']:.3g} vs null {c['null']['mean']:.3g}, RL − null "
            f"{c['difference']:.3g}, Welch 95% {stats.fmt_pair(lo, hi, 3, 'g')} "
            f"({c['rl']['n']} vs {c['null']['n']} seeds)")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return head + "; fewer than two seeds in an arm: no interval, no test"
    if lo > 0 or hi < 0:
        return head + f"; RL and the null differ (MDE80 {mde_s})"
    return head + (f"; no difference detected: a true difference below the MDE80 of {mde_s} would likely go unseen "
                   "(absence of a difference is not shown)")


# ----------------------------------------------------------------------------------------------
# Matching
# ----------------------------------------------------------------------------------------------

def value_at(xs: Sequence[float], ys: Sequence[float], x: float) -> float:
    """``ys`` at ``x`` by linear interpolation over increasing ``xs``; NaN outside [xs[0], xs[-1]]."""
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(xs) == 0 or not np.isfinite(x) or x < xs[0] or x > xs[-1]:
        return float("nan")
    return float(np.interp(x, xs, ys))


def first_crossing(steps: Sequence[float], level: Sequence[float], target: float) -> float:
    """The first step (interpolated linearly between recorded steps) where the curve ``level`` reaches
    ``target``; NaN if it never does."""
    steps, level = np.asarray(steps, dtype=float), np.asarray(level, dtype=float)
    hit = np.nonzero(level >= target)[0]
    if len(hit) == 0:
        return float("nan")
    i = int(hit[0])
    if i == 0 or level[i] == level[i - 1]:
        return float(steps[i])
    return float(steps[i - 1] + (target - level[i - 1]) / (level[i] - level[i - 1]) * (steps[i] - steps[i - 1]))


Curve = tuple  # (steps, values) of one run


def at_matched_steps(rl: Mapping[int, Curve], null: Mapping[int, Curve]) -> tuple[dict, dict, float]:
    """Every run's value at the largest step recorded by every run of both arms: ({seed: value} of RL,
    {seed: value} of the null, that step)."""
    everyone = list(rl.values()) + list(null.values())
    common = set.intersection(*(set(np.asarray(s, dtype=float).tolist()) for s, _ in everyone))
    if not common:
        return {}, {}, float("nan")
    step = max(common)
    return ({k: value_at(s, v, step) for k, (s, v) in rl.items()},
            {k: value_at(s, v, step) for k, (s, v) in null.items()}, step)


def at_matched_norm(rl: Mapping[int, tuple], null: Mapping[int, tuple]) -> tuple[dict, dict, float]:
    """Every run's value where its relative update first reaches r* (see the module doc). Each run is
    ``(norm_steps, rel_update, value_steps, values)``. Returns ({seed: value} of RL, of the null, r*)."""
    everyone = list(rl.values()) + list(null.values())
    target = min(float(np.asarray(r, dtype=float)[-1]) for _, r, _, _ in everyone)
    if not target > 0:
        return {}, {}, float("nan")

    def read(run):
        ns, r, vs, v = run
        return value_at(vs, v, first_crossing(ns, r, target))

    return {k: read(x) for k, x in rl.items()}, {k: read(x) for k, x in null.items()}, target


# ----------------------------------------------------------------------------------------------
# Quantities from a run's trajectory and evaluations
# ----------------------------------------------------------------------------------------------

def relative_update(traj: runs.Trajectory) -> np.ndarray | None:
    """‖ΔW_t‖_F / ‖W_t‖_F over all target matrices together, per recorded step (‖W_t‖_F from the recorded
    singular values of W_t, or its recorded norm: the recorder need not have kept step 0); None when the
    trajectory has no ‖ΔW_t‖_F
    (recorded before the recorder kept it)."""
    if traj.dF is None or traj.WF is None or not traj.names:
        return None
    num = np.sqrt(sum(np.asarray(traj.dF[n], dtype=float) ** 2 for n in traj.names))
    den = np.sqrt(sum(np.asarray(traj.WF[n], dtype=float) ** 2 for n in traj.names))
    return num / den


def rank1_share(traj: runs.Trajectory) -> np.ndarray | None:
    """σ1(ΔW_t) / ‖ΔW_t‖_F averaged over the target matrices, per recorded step (1 for a rank-1 update, about
    (√m + √n)/√(mn) for an m × n Gaussian one); NaN at step 0 (ΔW = 0). None without ‖ΔW_t‖_F records."""
    if traj.dF is None:
        return None
    if not traj.names:
        return None
    per = np.stack([np.asarray(traj.S[n][:, 0], dtype=float) / np.where(traj.dF[n] > 0, traj.dF[n], np.nan)
                    for n in traj.names])
    counted = np.isfinite(per).sum(axis=0)
    return np.where(counted > 0, np.nansum(per, axis=0) / np.maximum(counted, 1), np.nan)


TRAJECTORY_QUANTITIES: dict[str, Callable] = {"relative update ‖ΔW‖/‖W‖": relative_update,
                                              "rank-1 share σ1/‖ΔW‖_F": rank1_share}
EVAL_QUANTITIES = {"greedy test accuracy": "test_acc", "greedy train accuracy": "train_acc",
                   "knowledge accuracy": "fact_acc", "second-skill accuracy": "skill_acc"}  # evals.jsonl columns


def run_curves(run) -> dict:
    """{quantity: (steps, values)} of one finished run, plus ``"_norm"``: (steps, relative update), starting
    at (0, 0) (ΔW_0 = 0), or None."""
    traj = runs.load_trajectory(run)
    rel = relative_update(traj)
    steps = np.asarray(traj.steps, dtype=float)
    norm = None if rel is None else ((steps, rel) if steps[0] == 0 else (np.r_[0.0, steps], np.r_[0.0, rel]))
    out = {"_norm": norm}
    for name, fn in TRAJECTORY_QUANTITIES.items():
        v = fn(traj)
        if v is not None:
            out[name] = (traj.steps, v)
    _, evals = runs.run_curves(run)
    for name, col in EVAL_QUANTITIES.items():
        if col in evals:
            out[name] = (evals["step"].to_numpy(dtype=float), evals[col].to_numpy(dtype=float))
    return out


def compare_curves(rl: Mapping[int, dict], null: Mapping[int, dict] | None) -> list[dict]:
    """``compare`` of every quantity both arms have, at matched steps and (where both arms' trajectories give
    ‖ΔW‖/‖W‖) at matched relative update. ``rl`` / ``null``: {seed: run_curves(run)}; null None or empty ->
    one "no null arm" entry per RL quantity."""
    names = [q for q in next(iter(rl.values())) if not q.startswith("_")] if rl else []
    if not null:
        return [compare([], None, q) for q in names]
    out = []
    for q in names:
        if not all(q in c for c in null.values()) or not all(q in c for c in rl.values()):
            continue
        a, b, step = at_matched_steps({k: c[q] for k, c in rl.items()}, {k: c[q] for k, c in null.items()})
        out.append(compare(a, b, q, f"step {step:g}"))
        if all(c["_norm"] is not None for c in [*rl.values(), *null.values()]):
            a, b, r = at_matched_norm({k: (*c["_norm"], *c[q]) for k, c in rl.items()},
                                      {k: (*c["_norm"], *c[q]) for k, c in null.items()})
            out.append(compare(a, b, q, f"‖ΔW‖/‖W‖ = {r:.3g}"))
        else:
            out.append({"quantity": q, "matched": "‖ΔW‖/‖W‖", "added": ADDED_AFTER,
                        "reading": f"{q}: no matched-‖ΔW‖ reading (a trajectory records no ‖ΔW_t‖_F)"})
    return out


def readings(profile: str, rl_experiment: str, seeds: Sequence[int]) -> list[dict]:
    """The null-arm readings of a profile's finished runs: ``rl_experiment`` (e.g. Full RL) against the null
    arm on its own seeds (config.seeds_of); "no null arm" entries when the profile maps none."""
    rl = {s: run_curves(runs.require_run(profile, rl_experiment, s)) for s in seeds}
    name = null_experiment(profile)
    null = None if name is None else {s: run_curves(runs.require_run(profile, name, s))
                                      for s in config.seeds_of(profile, name)}
    return compare_curves(rl, null)
