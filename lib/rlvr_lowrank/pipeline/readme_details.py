"""Generated blocks of the docs pages about the tiny profiles (docs/results.md, docs/world.md,
docs/rule_history.md, docs/methods.md): the base model's metrics, which code computed each profile's reports,
the claims table and each claim's own block, the findings, the linear dynamics, tiny against tiny-long, the
rule history and the tiny profiles' size. Registered, with the README's own blocks, in pipeline.readme.
"""
from __future__ import annotations

from .. import claims, fileio, paths
from ..claims import notebooks, stats
from ..training import config
from . import readme_tables
from .readme_tables import (
           NOT_YET,
           TRACKED_PROFILES,
           claim_of,
           default_profile,
           fmt,
           provenance,
           timing,
           verdict_table,
           verdict_with_power,
)


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


def claim_block(module) -> str:
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
    report = readme_tables.load_report("tiny")
    return claims.results_table(report) + f"\n\nProfile `tiny`, config hash `{report['config_hash']}`; " \
        "details per claim in [`reports/tiny/claims.md`](reports/tiny/claims.md)."


def provenance_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """Per tracked profile: the commit whose code wrote its reports, and whether today's code would give the
    same runs (recorded run hashes against today's; claims.report.provenance)."""
    lines = ["| profile | reports computed by | today's code |", "|---|---|---|"]
    for p in profiles:
        if not (paths.REPORTS / p).is_dir():
            continue
        pv = provenance(p)
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
    return readme_tables.load_report("tiny") if (paths.REPORTS / "tiny" / "claims.json").exists() else None


def rule_change_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """Once per claim and tracked profile: the verdict under each rule in turn (bootstrap CI alone → both
    intervals, two-valued → the five classes in force), and why each rule changed."""
    reports = [readme_tables.load_report(p) for p in profiles if (paths.REPORTS / p / "claims.json").exists()]
    if not reports:
        return NOT_YET
    lines = [f"Rule history. (1) {claims.report.RULE} Why: {claims.base.WHY_TIGHTENED}. (2) "
             f"{claims.report.VOCABULARY} (3) {claims.report.PRECONDITION} Why: the claim is about reward "
             "*overfitting*, which a run that did not overfit cannot show.", "",
             "| claim | " + " | ".join(f"{r['profile']}: bootstrap only → both intervals → class (→ with (3))"
                                      for r in reports) + " |", "|---|" + "---|" * len(reports)]
    for cid in claims.CLAIMS:
        cells = []
        for r in reports:
            e = claim_of(r, cid) or {}
            before = e.get("verdict_before_precondition")
            steps = [e.get("verdict_bootstrap_only"), e.get("verdict_two_valued"),
                     before if before and before != e.get("verdict") else None, f"**{e.get('verdict', '—')}**"]
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


def dynamics_block() -> str:
    path = paths.REPORTS / "tiny" / "dynamics.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 06 writes reports/tiny/dynamics.json)._"
    v = fileio.read_json(path)
    lines = ["| extrapolation (window → final step) | test accuracy / trained model's (95% CI) | steps saved |",
             "|---|---|---|"]
    for key, r in v["extrapolation"].items():
        saved = "— (stop-early reference)" if r["steps_saved"] is None else f"{r['steps_saved']:.2f}"
        lines.append(f"| {key} | {stats.fmt_mean_ci(r['ratio'], 3)} | {saved} |")
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
    reports = {p: readme_tables.load_report(p) for p in present}
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
                         f"({k}, accuracy ratio {stats.fmt_mean_ci(v['ratio'], 3)}).")
            elif ext:
                k, v = max(ext.items(), key=lambda kv: kv[1]["ratio"]["mean"])
                text += (f"no extrapolation kept the accuracy (best: {k}, accuracy ratio "
                         f"{stats.fmt_mean_ci(v['ratio'], 3)}).")
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


# the default profile's goal for a cold `make reproduce` on 2 cores, set before it was sized
TINY_BUDGET_S = 20 * 60


def budget_block(profiles: tuple[str, ...] = ("tiny", "tiny-long")) -> str:
    """The size of the tiny profiles (arms, runs, steps, completions sampled) from their configs, beside their
    measured cold `make reproduce` times (reports/<profile>/timing.json) and the default profile's budget."""
    lines = ["| profile | arms | runs (seeds per arm) | GRPO steps × completions per run | completions sampled in "
             "all | cold `make reproduce` |", "|---|---|---|---|---|---|"]
    total = {}
    for p in profiles:
        exps = list(config.load_profile(p)["experiments"])
        seeds = {e: config.seeds_of(p, e) for e in exps}
        shapes = {e: config.resolve(p, e, seeds[e][0]).train for e in exps}
        shape = sorted({(t.get("max_steps"), t.get("per_device_train_batch_size")) for t in shapes.values()})
        total[p] = sum(len(seeds[e]) * shapes[e]["max_steps"] * shapes[e]["per_device_train_batch_size"] for e in exps)
        cold = timing(p).get("cold")
        time = (f"{cold['total_s'] / 60:.1f} min ({cold['runs_trained']} runs, {cold['processes']} processes on "
                f"{cold['cpu_count']} cores)" if cold else "not recorded")
        if cold and p == default_profile():
            within = "within" if cold["total_s"] <= TINY_BUDGET_S else "over"
            time += f", {within} the {TINY_BUDGET_S // 60}-minute budget"
        lines.append(f"| {p} | {len(exps)} | {sum(map(len, seeds.values()))} ("
                     + ", ".join(str(len(s)) for s in seeds.values()) + ") | "
                     + ", ".join(f"{a} × {b}" for a, b in shape) + f" | {total[p]:,} | {time} |")
    if len(total) == 2:
        (a, ta), (b, tb) = total.items()
        lines += ["", f"{b} samples {tb / ta:.1f}× the completions of {a} (`configs/{a}.yaml`, `configs/{b}.yaml`; "
                      "times: `reports/<profile>/timing.json`)."]
    return "\n".join(lines)
