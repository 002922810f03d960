"""Notebook 06's computations (not one of the paper's claims): AlphaRL's premise that the rank-1 update grows
along a line early enough to be extrapolated, measured on a profile's Full-RL runs, and ``dynamics.json``, the
file the README's dynamics block reads.

Three readings, each per seed:

* :func:`pls_rows` -- partial least squares of a signal (held-out accuracy; the training reward as an EMA over
  10 steps) on the rank-1 trajectory (analysis.dynamics.linear_dynamics): R² in sample and leave-one-out;
* :func:`extrapolation_rows` -- the model built from ΔW at an early window's end, and from ΔW extrapolated from
  that window to the final step (RELEX-style and AlphaRL-style, analysis.dynamics), scored on held-out math
  against the trained model (W0 + ΔW_T; non-targets at base, as in C0), greedy through the kv sampler;
* :func:`sigma1_growth` -- the mean σ1(ΔW_t) over target matrices, beside the line fitted on the window.

:func:`summary` turns the extrapolation rows into accuracy ratios with intervals and the steps an extrapolation
saves when it keeps ``retention`` of the trained model's accuracy; :func:`write_report` writes dynamics.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from .. import fileio, paths
from ..analysis import dynamics, rank1
from ..training import runs
from . import fast_eval, stats

REWARD_EMA_SPAN = 10  # the training reward is smoothed over 10 steps before the PLS fit (its per-step noise)
METHODS = ("window end", "RELEX-style", "AlphaRL-style")  # "window end": the stop-early reference


def pls_rows(full_runs: Mapping[int, Path]) -> pd.DataFrame:
    """One row per seed, signal and matrix type: PLS of the signal on the rank-1 trajectory (T, r2, r2_loo)."""
    out = []
    for s, run in full_runs.items():
        traj, (metrics, evals) = runs.load_trajectory(run), runs.run_curves(run)
        reward = metrics.assign(reward_ema=metrics["reward"].ewm(span=REWARD_EMA_SPAN).mean())[["step", "reward_ema"]]
        out.append(dynamics.linear_dynamics(traj, evals, "test_acc").assign(seed=s, signal="test accuracy"))
        out.append(dynamics.linear_dynamics(traj, reward, "reward_ema").assign(
            seed=s, signal=f"training reward (EMA {REWARD_EMA_SPAN})"))
    return pd.concat(out, ignore_index=True)


def extrapolation_rows(full_runs: Mapping[int, Path], items: Sequence, windows: Sequence[int]) -> list[dict]:
    """Per seed, window and method: greedy held-out accuracy of the model built from that window, beside the
    trained model's (``trained_acc``) and the run's final trajectory step."""
    rows = []
    for s, run in full_runs.items():
        base, tok, trained = runs.load_run_pair(run)
        traj = runs.load_trajectory(run)
        final = int(traj.steps.max())

        def acc(model):
            return fast_eval.greedy_accuracy(model, tok, items).accuracy  # kv sampler: generate's completions

        full_acc = acc(rank1.build_substituted_model(base, trained, "full"))
        for w in windows:
            hits = np.flatnonzero(traj.steps == w)
            if not len(hits):
                raise ValueError(f"{run}: no trajectory point at step {w} (recorded: {traj.steps.tolist()}); "
                                 "choose WINDOWS among the recorded steps (trajectory.every)")
            i = int(hits[0])
            at_w = {n: torch.from_numpy((traj.U[n][i] * traj.S[n][i]) @ traj.V[n][i].T).float() for n in traj.names}
            deltas = {"window end": at_w, "RELEX-style": dynamics.extrapolate_relex(traj, w, final),
                      "AlphaRL-style": dynamics.extrapolate_alpharl(traj, w, final)}
            for method in METHODS:
                rows.append({"seed": s, "window": w, "method": method,
                             "test_acc": acc(dynamics.build_model_from_deltas(base, deltas[method])),
                             "trained_acc": full_acc, "final_step": final})
    return rows


def sigma1_growth(full_runs: Mapping[int, Path], window: int) -> pd.DataFrame:
    """Per step (> 0), the mean over seeds of the mean σ1(ΔW_t) over target matrices (``observed``) and of the
    line fitted to it on steps 1..``window`` (``linear from window``)."""
    out = []
    for s, run in full_runs.items():
        traj = runs.load_trajectory(run)
        sigma = np.mean([traj.S[n][:, 0] for n in traj.names], axis=0)
        fit = (traj.steps > 0) & (traj.steps <= window)
        if fit.sum() < 2:
            raise ValueError(f"{run}: fewer than 2 trajectory points in steps 1..{window} (recorded: "
                             f"{traj.steps.tolist()}); a line needs two: choose a later window (WINDOWS) or a profile "
                             "with a smaller trajectory.every")
        slope, icpt = np.polyfit(traj.steps[fit], sigma[fit], 1)
        out += [{"seed": s, "step": int(t), "observed": float(x), "linear from window": float(slope * t + icpt)}
                for t, x in zip(traj.steps, sigma) if t > 0]
    return pd.DataFrame(out).groupby("step")[["observed", "linear from window"]].mean()


def summary(rows: Sequence[dict], retention: float) -> dict:
    """``"<method> @ <window>"`` -> the accuracy ratio (test_acc / trained_acc; stats.summarize over seeds) and the
    fraction of steps saved, 1 − window / final step, when the mean ratio keeps ``retention`` (0 otherwise; None
    for the window end, which is the stop-early reference, not an extrapolation)."""
    extra = pd.DataFrame(rows)
    extra["ratio"] = extra["test_acc"] / extra["trained_acc"]
    out = {}
    for (w, method), part in extra.groupby(["window", "method"], sort=True):
        r = stats.summarize(part["ratio"].tolist())
        saved = (1 - w / part["final_step"].iloc[0]) if r["mean"] >= retention else 0.0
        out[f"{method} @ {w}"] = {"ratio": r, "steps_saved": None if method == "window end" else saved}
    return out


def write_report(profile: str, seeds: Sequence[int], windows: Sequence[int], summary_: dict, pls: pd.DataFrame,
                 rows: Sequence[dict], growth: pd.DataFrame, window: int) -> dict:
    """reports/<profile>/dynamics.json (what pipeline.readme_details reads): the extrapolation summary, the median
    PLS R² per signal, the rows, and σ1 growth at the window and at the final step beside the line's value."""
    last = int(growth.index.max())
    med = pls.groupby("signal")[["r2", "r2_loo"]].median()
    report = {"profile": profile, "seeds": list(seeds), "windows": list(windows), "extrapolation": summary_,
              "pls_median": med.to_dict("index"), "per_run": list(rows),
              "sigma1_growth": {"window": window, "at_window": float(growth.loc[window, "observed"]),
                                "final_step": last,
                                "at_final": float(growth.loc[last, "observed"]),
                                "linear_at_final": float(growth.loc[last, "linear from window"])}}
    fileio.write_json(paths.report_dir(profile) / "dynamics.json", report)
    return report
