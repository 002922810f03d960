"""The C1 reading from run directories (added after tiny's results were seen; readings.c1_reading decides it).

Per seed, the *final* evaluation of the paired Full and PR1S runs: sampled accuracy on the RL training problems
and on held-out problems under the training's own decoding (evals.jsonl ``sampled_train_acc``,
``sampled_test_acc``: training.sampled_eval), fed to ``readings.c1_reading`` (difference-in-differences of
train − test, Full − PR1S, against min_did; TOST for |Δtest| ≤ tost_margin). At a substitution step a PR1S
run's row holds the evaluation before and after that substitution (``pre/…``, ``post/…``); the one its config
named before the run (``eval.pr1s_phase``) fills the unsuffixed columns and decides; the other phase is
reported beside it (``by_phase``). How often each training prompt was seen (prompt_counts.json,
training.prompt_counts) is summarised per arm: without revisits the sampled training reward cannot overfit.
Beside it, ``post_saturation``: the held-out accuracy change after Full RL's training accuracy saturated, Full vs
PR1S (claims.readings_saturation, its rule fixed before smollm2's final runs).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .. import fileio
from ..training import prompt_counts
from . import readings, readings_saturation, run_config

COLUMNS = ("sampled_train_acc", "sampled_test_acc")
PHASES = ("pre", "post")


def final_row(run: Path) -> dict:
    """The evals.jsonl row of the run's last evaluation step."""
    rows = fileio.read_jsonl(Path(run) / "evals.jsonl")
    if not rows:
        raise ValueError(f"{run}: evals.jsonl has no rows")
    return max(rows, key=lambda r: r["step"])


def sampled(row: Mapping, phase: str | None = None) -> tuple[float, float] | None:
    """(sampled train accuracy, sampled test accuracy) of one evals.jsonl row: the ``phase`` ("pre"/"post")
    columns when the row has them, else the unsuffixed ones (the deciding phase, or the only state); None when
    the row has no sampled columns (a run trained before they were recorded)."""
    keys = [f"{phase}/{c}" if phase and f"{phase}/{c}" in row else c for c in COLUMNS]
    if not all(k in row for k in keys):
        return None
    return float(row[keys[0]]), float(row[keys[1]])


def deciding_phase(run: Path) -> str:
    """The ``eval.pr1s_phase`` a run's config named before it was trained (the typed config: a run made before
    the key existed is refused as earlier code by its identity before it gets here)."""
    return run_config.typed_config(run).eval.pr1s_phase


def measure(full_runs: Mapping[int, Path], pr1s_runs: Mapping[int, Path], phase: str | None = None) -> list[dict]:
    """One row per seed of both arms: the final sampled accuracies (the PR1S run's ``phase``, default its deciding
    one) and the step they were read at; seeds missing a sampled column give no row."""
    out = []
    for s in sorted(set(full_runs) & set(pr1s_runs)):
        fr, pr = final_row(full_runs[s]), final_row(pr1s_runs[s])
        f, p = sampled(fr), sampled(pr, phase)
        if f is None or p is None:
            continue
        out.append({"seed": s, "step_full": fr["step"], "step_pr1s": pr["step"], "phase": pr.get("phase"),
                    "full_train": f[0], "full_test": f[1], "pr1s_train": p[0], "pr1s_test": p[1]})
    return out


def _reading_of(rows: list[dict]) -> dict:
    return readings.c1_reading([r["full_train"] for r in rows], [r["full_test"] for r in rows],
                               [r["pr1s_train"] for r in rows], [r["pr1s_test"] for r in rows])


def seen_summary(run_set: Mapping[int, Path]) -> dict | None:
    """Over an arm's seeds, the mean and the maximum of prompt_counts.json's per-run summaries (None: no run
    recorded its counts)."""
    counts = [c for c in (prompt_counts.read(r) for r in run_set.values()) if c is not None]
    if not counts:
        return None
    return {"runs": len(counts), "n_prompts": counts[0]["n_prompts"],
            "mean_seen": float(np.mean([c["summary"]["mean"] for c in counts])),
            "max_seen": float(max(c["summary"]["max"] for c in counts)),
            "min_seen": float(min(c["summary"]["min"] for c in counts)),
            "never_seen": float(np.mean([c["summary"]["never_seen"] for c in counts])),
            "seen_more_than_once": float(np.mean([c["summary"]["seen_more_than_once"] for c in counts]))}


def reading(full_runs: Mapping[int, Path], pr1s_runs: Mapping[int, Path]) -> dict:
    """readings.c1_reading of the paired runs at their final evaluation, in the deciding phase, with the other
    phase (``by_phase``, where the PR1S runs' final rows have both), the per-seed rows and the prompt counts."""
    phases = {deciding_phase(r) for r in pr1s_runs.values()}
    rows = measure(full_runs, pr1s_runs)
    seen = {"full": seen_summary(full_runs), "pr1s": seen_summary(pr1s_runs)}
    if not rows:
        return {"added": readings.ADDED, "prompts_seen": seen,
                "reading": "C1 sampled train − test not measured: the runs' evals.jsonl have no sampled_train_acc / "
                           "sampled_test_acc (trained before eval.n_sampled_train existed, or with it 0)"}
    post = readings_saturation.reading(full_runs, pr1s_runs)
    out = {**_reading_of(rows), "per_seed": rows, "phase": sorted(phases),
           "prompts_seen": seen, "post_saturation": post,
           "means": {k: float(np.mean([r[k] for r in rows])) for k in ("full_train", "full_test", "pr1s_train",
                                                                      "pr1s_test")}}
    by_phase = {}
    for ph in PHASES:
        ph_rows = measure(full_runs, pr1s_runs, ph)
        if ph_rows and all(r["phase"] for r in ph_rows):  # the final rows hold both phases
            by_phase[ph] = {k: v for k, v in _reading_of(ph_rows).items() if k != "added"}
    if by_phase:
        out["by_phase"] = by_phase
    mean_seen = seen["pr1s"]["mean_seen"] if seen["pr1s"] else float("nan")
    out["reading"] += (f" [sampled, final step, PR1S phase {'/'.join(out['phase'] or ['-'])}; {len(rows)} seed(s); "
                       f"each training prompt seen {mean_seen:.3g} times on average]; {post['reading']}")
    return out
