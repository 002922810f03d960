"""Post-saturation generalisation beside C1: does held-out accuracy keep rising after the training reward
saturates, and does it under PR1S too?

1-shot RLVR (Wang et al., arXiv 2504.20571) trained on a single problem and saw test accuracy keep rising for
about 1,400 steps after the training accuracy had saturated. C1 says PR1S keeps test accuracy while its training
reward stays low; this reading asks the neighbouring question on the same paired runs. It decides no verdict.

The rule, fixed before the final runs were trained:

* **Saturation step** of a seed: the first evaluation step at which *Full RL's* sampled accuracy on the RL
  training problems (evals.jsonl ``sampled_train_acc``: every training problem, the training's own decoding)
  is >= :data:`SATURATION` (0.9, the exploration's rule: ``pipeline.exploration``). PR1S is read at the same
  steps as its Full partner, so both arms are compared over the same window whether or not PR1S saturates.
* **Post-saturation change** of an arm: greedy held-out accuracy (``test_acc``; a PR1S run's deciding phase,
  ``eval.pr1s_phase``) at the last evaluation minus at the saturation step. A seed whose saturation step is its
  last evaluation has no window after it and gives no row.
* Reported: per seed, and over the seeds with a window, each arm's change and the paired difference Full − PR1S
  (mean, bootstrap and t intervals: ``stats.summarize``). "Untestable here" with the numbers when no seed has a
  window (Full never saturated, or only at its last evaluation).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .. import fileio
from .stats import fmt_both, summarize

SATURATION = 0.9  # sampled training accuracy counted as saturated (the exploration's rule)
SOURCE = "1-shot RLVR (arXiv 2504.20571): test accuracy kept rising after the training accuracy saturated"


def _evals(run: Path) -> dict[int, dict]:
    rows = fileio.read_jsonl(Path(run) / "evals.jsonl")
    if not rows:
        raise ValueError(f"{run}: evals.jsonl has no rows")
    return {int(r["step"]): r for r in rows}


def saturation_step(evals: Mapping[int, dict]) -> int | None:
    """The first evaluation step whose ``sampled_train_acc`` is >= SATURATION; None if none is (or the run has
    no sampled accuracies)."""
    hits = [s for s in sorted(evals) if evals[s].get("sampled_train_acc") is not None
            and float(evals[s]["sampled_train_acc"]) >= SATURATION]
    return hits[0] if hits else None


def per_seed(full_run: Path, pr1s_run: Path) -> dict:
    """One seed: Full's saturation step, its last evaluation step and (where there is a window between them) the
    greedy held-out accuracy change of both arms over it."""
    fe, pe = _evals(full_run), _evals(pr1s_run)
    last = max(fe)
    t_s = saturation_step(fe)
    row = {"saturation_step": t_s, "last_step": last,
           "max_sampled_train_full": max((float(r["sampled_train_acc"]) for r in fe.values()
                                          if r.get("sampled_train_acc") is not None), default=float("nan"))}
    if t_s is None or t_s >= last or t_s not in pe or last not in pe:
        return row
    return {**row, "full_change": float(fe[last]["test_acc"] - fe[t_s]["test_acc"]),
            "pr1s_change": float(pe[last]["test_acc"] - pe[t_s]["test_acc"]),
            "full_test_at_saturation": float(fe[t_s]["test_acc"]),
            "pr1s_test_at_saturation": float(pe[t_s]["test_acc"])}


def reading(full_runs: Mapping[int, Path], pr1s_runs: Mapping[int, Path]) -> dict:
    """The reading over the seeds both arms have: per-seed rows, the summaries and one sentence (``reading``)."""
    seeds = sorted(set(full_runs) & set(pr1s_runs))
    rows = [{"seed": s, **per_seed(full_runs[s], pr1s_runs[s])} for s in seeds]
    with_window = [r for r in rows if "full_change" in r]
    out = {"rule": {"saturation": SATURATION, "signal": "Full's sampled_train_acc at an evaluation step",
                    "change": "greedy test_acc at the last evaluation minus at the saturation step"},
           "source": SOURCE, "per_seed": rows, "n_with_window": len(with_window)}
    if not with_window:
        steps = [r["saturation_step"] for r in rows]
        peak = max((r["max_sampled_train_full"] for r in rows), default=float("nan"))
        why = (f"Full's sampled training accuracy never reached {SATURATION} (highest {peak:.2f})"
               if all(s is None for s in steps) else
               f"Full saturated only at its last evaluation (saturation steps {steps}), leaving no window after it")
        out["reading"] = f"post-saturation generalisation untestable here: {why}; {len(rows)} seed(s)"
        return out
    full = summarize([r["full_change"] for r in with_window])
    pr1s = summarize([r["pr1s_change"] for r in with_window])
    diff = summarize([r["full_change"] - r["pr1s_change"] for r in with_window])
    out.update(full_change=full, pr1s_change=pr1s, difference=diff)
    steps = sorted({r["saturation_step"] for r in with_window})
    out["reading"] = (f"post-saturation generalisation ({len(with_window)} of {len(rows)} seed(s) saturated before the "
                      f"last evaluation, at step(s) {steps}): held-out greedy accuracy change from then to the end, "
                      f"Full {fmt_both(full)}; PR1S {fmt_both(pr1s)}; Full − PR1S {fmt_both(diff)}")
    return out

