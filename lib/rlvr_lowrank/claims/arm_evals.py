"""Each arm's own evaluations side by side, with the random-reward null arm: is the held-out gain RL's?

Notebook 02 decides C1 on Full RL and PR1S. An accuracy gain belongs to RL with a verifiable reward only if
GRPO with a random reward (the null arm, claims.null_arm) over the same steps does not show it too: on a
chat model a few steps of any fine-tune can fix the answer *format* and lift exact-match accuracy without
learning arithmetic. So, per arm and seed, the runs' evals.jsonl give

* ``table``: every evaluation step's mean over seeds (with ``stats.summarize``) of greedy held-out accuracy
  (``test_acc``), greedy accuracy on the RL training problems (``train_acc``), out-of-distribution accuracy
  (``ood_acc``, where the task has an OOD set) and the sampled accuracies (``sampled_train_acc``,
  ``sampled_test_acc``); a PR1S run's unsuffixed columns are its deciding phase (``eval.pr1s_phase``);
* ``gains``: per seed, the change of each column from the first evaluation (step 0: the base model) to the
  last, and for Full RL and PR1S each against the null with ``null_arm.compare`` (Welch interval, MDE80;
  the arms are independent runs). Without a null arm the comparisons say "no null arm".

Added after tiny's results were seen; reported beside the verdicts, changing none.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from .. import fileio
from ..training import config, runs
from . import null_arm
from .stats import summarize

COLUMNS = ("test_acc", "train_acc", "ood_acc", "sampled_train_acc", "sampled_test_acc")
GAIN_COLUMNS = ("test_acc", "ood_acc")  # the held-out gains compared with the null
NULL_LABEL = "null (random reward)"


def null_runs(profile: str, experiment: str | None) -> tuple[dict[int, Path] | None, list[int]]:
    """The null arm's finished runs ({seed: run}, None without a null arm) and the seeds not finished yet.

    The pipeline may execute a notebook while the null arm's last run still trains (the notebook's other arms
    are done): the reading then uses the finished seeds and names the others, and the notebook's fingerprint
    (the DONE markers of what it reads) makes the next ``make reproduce`` execute it again on every seed. A
    finished run from another config is refused as always (runs.require_run)."""
    if not experiment:
        return None, []
    seeds = config.seeds_of(profile, experiment)
    done = [s for s in seeds if runs.is_done(runs.run_dir(profile, experiment, s))]
    return {s: runs.require_run(profile, experiment, s) for s in done}, [s for s in seeds if s not in done]


def _rows(run: Path) -> list[dict]:
    rows = sorted(fileio.read_jsonl(Path(run) / "evals.jsonl"), key=lambda r: r["step"])
    if not rows:
        raise ValueError(f"{run}: evals.jsonl has no rows")
    return rows


def table(arm_runs: Mapping[str, Mapping[int, Path]]) -> list[dict]:
    """One row per (arm, step, column): the summary over the arm's seeds that evaluated at that step."""
    values: dict[tuple, list[float]] = {}
    for arm, by_seed in arm_runs.items():
        for run in by_seed.values():
            for r in _rows(run):
                for col in COLUMNS:
                    if r.get(col) is not None:
                        values.setdefault((arm, int(r["step"]), col), []).append(float(r[col]))
    return [{"arm": arm, "step": step, "column": col, **summarize(v)} for (arm, step, col), v in values.items()]


def gains(by_seed: Mapping[int, Path], column: str) -> dict[int, float]:
    """{seed: last evaluation − first evaluation} of ``column`` (seeds whose runs lack it are left out)."""
    out = {}
    for seed, run in by_seed.items():
        rows = [r for r in _rows(run) if r.get(column) is not None]
        if len(rows) >= 2:
            out[seed] = float(rows[-1][column] - rows[0][column])
    return out


def reading(arm_runs: Mapping[str, Mapping[int, Path]], null: Mapping[int, Path] | None,
            null_unfinished: list[int] | None = None) -> dict:
    """``table`` of every arm (the null included), the per-seed gains, each RL arm against the null, and the
    lines to print. ``arm_runs``: label -> seed -> run (e.g. {"Full RL": ..., "PR1S": ...}); ``null``: the
    null arm's runs by seed (None: no null arm); ``null_unfinished``: its seeds not finished (named)."""
    every = {**arm_runs, **({NULL_LABEL: null} if null else {})}
    out = {"added": null_arm.ADDED_AFTER, "table": table(every), "gains": {}, "vs_null": [],
           "null_unfinished": list(null_unfinished or [])}
    lines = ([f"null arm: seed(s) {out['null_unfinished']} still training when this ran; read on the finished ones "
              "(the next `make reproduce` executes this notebook again on every seed)"] if null_unfinished else [])
    for col in GAIN_COLUMNS:
        per_arm = {arm: gains(runs_, col) for arm, runs_ in every.items()}
        if not any(per_arm.values()):
            continue
        out["gains"][col] = {arm: {"per_seed": g, **summarize(list(g.values()))} for arm, g in per_arm.items()}
        lines.append(f"{col}, first → last evaluation: " + "; ".join(
            f"{arm} {s['mean']:+.3f} (n = {s['n']})" for arm, s in out["gains"][col].items()))
        null_gain = per_arm.get(NULL_LABEL) if null else None
        for arm in arm_runs:
            c = null_arm.compare(per_arm[arm], null_gain, f"{col} gain, {arm}", "first → last evaluation")
            out["vs_null"].append({"arm": arm, "column": col, **c})
            lines.append(c["reading"])
    out["lines"] = lines
    return out
