"""Exploration before the real-model experiment's final runs: the learning rate and what a run of the final
length does, on seeds the final runs never use, by rules fixed here before any exploration run was trained.

``python -m rlvr_lowrank smollm2-explore`` trains the smollm2 profile's ``explore_lr_*`` manual experiments
(Full RL only, seeds :data:`EXPLORE_SEEDS`, the final runs' task, batch and length) and writes
``reports/smollm2/exploration.json``.

The rules:

* **Learning rate**: a rate *qualifies* when every one of its seeds (i) logs only finite losses and
  gradient norms, (ii) ends with a higher greedy accuracy on the held-out split than at step 0, and (iii)
  has a mean sampled reward over its last :data:`WINDOW` steps above that over its first :data:`WINDOW`.
  The chosen rate is the largest that qualifies; none qualifying stops the profile (``chosen_lr`` null)
  with the numbers and the rule that failed. The rates are trained from the largest down, both seeds of a
  rate side by side, and the search stops at the first rate that qualifies: the smaller ones cannot
  change the choice, so they are not trained (``not_trained`` lists them).
* **Saturation**: at the chosen rate, the first evaluation step at which every seed's sampled training
  accuracy (evals.jsonl ``sampled_train_acc``, the training's own decoding, every training prompt) is
  >= :data:`SATURATION`; None if it never is. Reported with the sampled train - test gap at the end.
  The final runs' length is fixed (:data:`FINAL_STEPS`, the floor the experiment was designed for) and
  does not depend on it: whether Full RL saturated and opened a gap on the *final* seeds is C1's
  precondition, judged there.
"""
from __future__ import annotations

import numpy as np

from .. import fileio, paths
from ..claims.readings_saturation import SATURATION  # one rule for the exploration and the reading beside C1
from ..training import config, runs
from . import reproduce

PROFILE = "smollm2"
EXPLORE_PREFIX = "explore_lr_"
EXPLORE_SEEDS = (100, 101)
WINDOW = 10
FINAL_STEPS = 100


def run_row(run) -> dict:
    """One exploration run: its rate, the greedy and sampled accuracies at step 0 and at the end, the sampled
    reward of its first and last WINDOW steps, whether every loss and gradient norm is finite, its wall time
    (DONE ``seconds``: two runs side by side on 2 cores)."""
    cfg = runs.read_config(run)
    metrics, evals = runs.run_curves(run)
    finite = bool(np.isfinite(metrics[[c for c in ("loss", "grad_norm") if c in metrics]].to_numpy(float)).all())
    first, last = evals.iloc[0], evals.iloc[-1]
    curve = [{k: (float(r[k]) if k != "step" else int(r[k])) for k in
              ("step", "test_acc", "train_acc", "ood_acc", "fact_acc", "sampled_train_acc", "sampled_test_acc")
              if k in r and r[k] == r[k]} for _, r in evals.iterrows()]
    done = fileio.read_json(run / "DONE")
    return {"experiment": cfg["experiment"], "seed": cfg["seed"], "learning_rate": cfg["train"]["learning_rate"],
            "steps": int(metrics["step"].max()), "finite": finite, "seconds": done.get("seconds"),
            "test_acc_start": float(first["test_acc"]), "test_acc_end": float(last["test_acc"]),
            "reward_first": float(metrics["reward"].head(WINDOW).mean()),
            "reward_last": float(metrics["reward"].tail(WINDOW).mean()),
            "sampled_gap_end": (float(last["sampled_train_acc"] - last["sampled_test_acc"])
                                if "sampled_train_acc" in last else None),
            "curve": curve}


def failures(row: dict) -> list[str]:
    """What keeps a run's rate from qualifying (empty: it qualifies)."""
    out = []
    if not row["finite"]:
        out.append("a non-finite loss or gradient norm")
    if row["test_acc_end"] <= row["test_acc_start"]:
        out.append(f"held-out greedy accuracy did not rise ({row['test_acc_start']:.3f} -> {row['test_acc_end']:.3f})")
    if row["reward_last"] <= row["reward_first"]:
        out.append(f"sampled reward did not rise (first {WINDOW} steps {row['reward_first']:.3f}, "
                   f"last {WINDOW} {row['reward_last']:.3f})")
    return out


def saturation_step(rows: list[dict]) -> int | None:
    """The first evaluation step at which every run's sampled training accuracy is >= SATURATION."""
    by_step: dict[int, list[float]] = {}
    for r in rows:
        for point in r["curve"]:
            if "sampled_train_acc" in point:
                by_step.setdefault(point["step"], []).append(point["sampled_train_acc"])
    hits = [s for s, v in sorted(by_step.items()) if len(v) == len(rows) and min(v) >= SATURATION]
    return hits[0] if hits else None


def decide(rows: list[dict]) -> dict:
    """Apply the module's rules to the exploration runs."""
    rates = sorted({r["learning_rate"] for r in rows})
    per_rate = {}
    for lr in rates:
        mine = [r for r in rows if r["learning_rate"] == lr]
        why = {f"seed{r['seed']}": failures(r) for r in mine}
        per_rate[f"{lr:g}"] = {"seeds": [r["seed"] for r in mine], "qualifies": not any(why.values()),
                               "failures": {k: v for k, v in why.items() if v}}
    ok = [lr for lr in rates if per_rate[f"{lr:g}"]["qualifies"]]
    chosen = max(ok) if ok else None
    out = {"rates": per_rate, "chosen_lr": chosen,
           "why": (f"the largest qualifying rate of {[f'{x:g}' for x in rates]}" if ok else
                   "no rate qualifies: every rate has a seed that fails the rule (see failures); the final runs "
                   "are not started")}
    if chosen is not None:
        mine = [r for r in rows if r["learning_rate"] == chosen]
        out["saturation_step"] = saturation_step(mine)
        out["sampled_gap_end"] = [r["sampled_gap_end"] for r in mine]
        out["test_acc_end"] = [r["test_acc_end"] for r in mine]
    return out


def explore(jobs: int = 2) -> dict:
    """Train the profile's exploration runs (reusing finished ones) and write reports/smollm2/exploration.json."""
    prof = config.load_profile(PROFILE)
    names = sorted(e for e in prof.get("manual_experiments") or {} if e.startswith(EXPLORE_PREFIX))
    if not names:
        raise SystemExit(f"configs/{PROFILE}.yaml defines no {EXPLORE_PREFIX}* manual experiment")
    bad = [(e, s) for e in names for s in config.seeds_of(PROFILE, e) if s not in EXPLORE_SEEDS]
    if bad:
        raise SystemExit(f"exploration runs must use the exploration seeds {list(EXPLORE_SEEDS)}, never a final "
                         f"run's; got {bad}")
    by_rate = sorted(names, key=lambda e: -config.resolve(PROFILE, e, EXPLORE_SEEDS[0]).train["learning_rate"])
    rows, not_trained = [], []
    for i, name in enumerate(by_rate):  # largest rate first; stop at the first that qualifies
        done = reproduce.train_all(PROFILE, processes=jobs, experiments=[name])
        rows += [run_row(r) for r in done]
        if decide(rows)["chosen_lr"] is not None:
            not_trained = by_rate[i + 1:]
            break
    rows.sort(key=lambda r: (r["learning_rate"], r["seed"]))
    result = {"not_trained": not_trained,
              "rules": {"window": WINDOW, "saturation": SATURATION, "final_steps": FINAL_STEPS,
                        "seeds": list(EXPLORE_SEEDS),
                        "learning_rate": "largest rate whose every seed is finite, raises held-out greedy accuracy "
                                         "and raises the sampled reward (last vs first window)"},
              "runs": rows, **decide(rows)}
    fileio.write_json(paths.report_dir(PROFILE) / "exploration.json", result)
    return {k: v for k, v in result.items() if k not in ("runs",)}
