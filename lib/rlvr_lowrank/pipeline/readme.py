"""Generated README blocks: every number in the README is written here from pipeline outputs.

Blocks live between ``<!-- BEGIN:<name> -->`` and ``<!-- END:<name> -->`` markers;
``python -m rlvr_lowrank readme`` rewrites them and ``tests/test_readme.py`` fails when the README
and the files it quotes disagree (showyourwork's rule: numbers are never retyped). This module holds
the block machinery and the tiny profile's blocks; the real model's are in pipeline.readme_real_model and
the shared formatting in pipeline.readme_tables.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from .. import claims, fileio, paths
from ..claims import notebooks
from . import readme_real_model as real_model
from .readme_tables import ci, claim_of, fmt, verdict_table, verdict_with_power


def base_metrics_block(metrics: dict | None = None) -> str:
    m = metrics or fileio.read_json(paths.TINY_BASE / "metrics.json")
    probe = m.get("grpo_probe", {})
    after = probe.get("test_greedy_after", {})
    g = m["math_test_greedy"]["accuracy"]
    rows = [
        ("math greedy accuracy (test, n=%d)" % m["math_test_greedy"]["n"], fmt(g), "≤ 0.3"),
        ("math sampled pass@1 (T = 1, 16 samples)", fmt(m["math_test_sampled"]["pass_at_k"]["1"]), "≥ 0.1"),
        ("math pass@16", fmt(m["math_test_sampled"]["pass_at_k"]["16"]), "≥ 0.8"),
        ("knowledge probe greedy accuracy (n=%d)" % m["fact_greedy"]["n"], fmt(m["fact_greedy"]["accuracy"]), "≥ 0.9"),
        ("second skill (word reversal) sampled pass@1", fmt(m["skill_test_sampled"]["pass_at_k"]["1"]),
         "in [0.3, 0.8]"),
        ("greedy test accuracy after the 100-step GRPO probe", fmt(after.get("accuracy", float("nan"))),
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
            e = claim_of(r, cid) or {}
            steps = [e.get("verdict_bootstrap_only"), e.get("verdict_two_valued"), f"**{e.get('verdict', '—')}**"]
            cells.append(" → ".join(x for x in steps if x))
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
        line = f"* **{c['id']}** — {plain}: {verdict_with_power(c)} ({claims.report.deciding(c)})"
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
        lines.append(f"| {key} | {ci(r['ratio'])} | {saved} |")
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


def robustness_block(profiles: tuple[str, ...] = ("tiny", "tiny-long")) -> str:
    """Verdicts of the same claims under the tiny profile and its longer variant, side by side."""
    present = [p for p in profiles if (paths.REPORTS / p / "claims.json").exists()]
    missing = [p for p in profiles if p not in present]
    if len(present) < 2:
        return ("_Not produced yet: `make reproduce PROFILE=tiny-long` writes reports/tiny-long/claims.json "
                f"(missing: {', '.join(missing)})._")
    reports = {p: claims.load_report(p) for p in present}
    lines = verdict_table(reports)
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
                         f"({k}, accuracy ratio {ci(v['ratio'])}).")
            elif ext:
                k, v = max(ext.items(), key=lambda kv: kv[1]["ratio"]["mean"])
                text += f"no extrapolation kept the accuracy (best: {k}, accuracy ratio {ci(v['ratio'])})."
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


BLOCKS = {"timing": timing_block, "provenance": provenance_block, "robustness": robustness_block,
          "base-metrics": base_metrics_block, "claims": claims_block,
          **{cid.lower(): functools.partial(_claim_block, module) for cid, module in claims.MODULES.items()},
          "dynamics": dynamics_block,
          "rule-change": rule_change_block, "findings": findings_block, "figures": figures_block,
          "smollm2-base": real_model.smollm2_base_block, "smollm2-claims": real_model.real_model_claims_block,
          "smollm2-bf16": real_model.smollm2_bf16_block, "smollm2-bench": real_model.smollm2_bench_block,
          "smollm2-lr": real_model.smollm2_lr_block}


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
