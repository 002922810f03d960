"""Generated README blocks: every number in the README is written here from pipeline outputs.

Blocks live between ``<!-- BEGIN:<name> -->`` and ``<!-- END:<name> -->`` markers;
``python -m rlvr_lowrank readme`` rewrites them and ``tests/test_readme.py`` fails when the README
and the files it quotes disagree (showyourwork's rule: numbers are never retyped).
"""
from __future__ import annotations

import re
from pathlib import Path

from . import io, paths


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def base_metrics_block(metrics: dict | None = None) -> str:
    m = metrics or io.read_json(paths.TINY_BASE / "metrics.json")
    probe = m.get("grpo_probe", {})
    after = probe.get("test_greedy_after", {})
    g = m["math_test_greedy"]["accuracy"]
    rows = [
        ("math greedy accuracy (test, n=%d)" % m["math_test_greedy"]["n"], _fmt(g), "≤ 0.3"),
        ("math sampled pass@1 (T = 1, 16 samples)", _fmt(m["math_test_sampled"]["pass_at_k"]["1"]), "≥ 0.1"),
        ("math pass@16", _fmt(m["math_test_sampled"]["pass_at_k"]["16"]), "≥ 0.8"),
        ("knowledge probe greedy accuracy (n=%d)" % m["fact_greedy"]["n"], _fmt(m["fact_greedy"]["accuracy"]), "≥ 0.9"),
        ("second skill (word reversal) sampled pass@1", _fmt(m["skill_test_sampled"]["pass_at_k"]["1"]), "in [0.3, 0.8]"),
        ("greedy test accuracy after the 100-step GRPO probe", _fmt(after.get("accuracy", float("nan"))),
         "gain ≥ 0.3 and ≤ 0.95"),
    ]
    by_d = after.get("by_difficulty", {})
    lines = ["| base model metric | value | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines.append("")
    lines.append(f"{m['n_parameters']:,} parameters; pretrained in {m['pretrain_seconds']:.0f} s "
                 f"({m['pretrain_config']['steps']} steps, {m['machine']}). GRPO probe: {probe.get('seconds', 0):.0f} s, "
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


def c1_block() -> str:
    path = paths.REPORTS / "tiny" / "c1.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 02 writes reports/tiny/c1.json)._"
    v = io.read_json(path)
    r, t = v["reward_gap"], v["test_gap"]
    ps = v["per_seed"]
    mean = lambda k: sum(p[k] for p in ps) / len(ps)  # noqa: E731
    return "\n".join([
        "| C1 quantity (Full RL − PR1S, paired per seed) | mean | 95% bootstrap CI | seeds |",
        "|---|---|---|---|",
        f"| Δ training reward, last quarter of steps | {r['mean']:.3f} | [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}] | {r['n']} |",
        f"| Δ final greedy test accuracy | {t['mean']:.3f} | [{t['ci'][0]:.3f}, {t['ci'][1]:.3f}] | {t['n']} |",
        "",
        f"Final greedy accuracy on the RL training problems vs the test set: Full RL {mean('train_full'):.3f} vs "
        f"{mean('test_full'):.3f}; PR1S ({v['pr1s']}) {mean('train_pr1s'):.3f} vs {mean('test_pr1s'):.3f}. "
        f"Training reward over the last quarter: Full {mean('reward_full'):.3f}, PR1S {mean('reward_pr1s'):.3f}.",
        "",
        f"**Verdict (profile tiny): C1 {v['verdict']}** (thresholds in `claims.C1`: Δreward CI lower bound > 0 and "
        "mean ≥ 0.02; |Δtest| ≤ 0.05 with CI upper bound ≤ 0.10)." + (f" {v['why']}." if v.get("why") else ""),
    ])


def c0_block() -> str:
    path = paths.REPORTS / "tiny" / "c0.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 01 writes reports/tiny/c0.json)._"
    v = io.read_json(path)
    lines = ["| substituted model (base + update of ΔW) | recovery of the full-RL gain | 95% bootstrap CI | seeds |",
             "|---|---|---|---|"]
    for name in ("normmatch", "trunc", "rank-2", "rank-4", "rank-8", "residual", "random"):
        x = v["recovery"].get(name)
        if x:
            lines.append(f"| {name} | {x['mean']:.3f} | [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}] | {x['n']} |")
    lines += ["", f"Full-RL gain in greedy test accuracy over the base: {v['gain']['mean']:.3f} "
              f"[{v['gain']['ci'][0]:.3f}, {v['gain']['ci'][1]:.3f}].", "",
              f"**Verdict (profile tiny): C0 {v['verdict']}** (thresholds in `claims.C0`: norm-matched rank-1 recovery "
              "≥ 0.9 with CI lower bound ≥ 0.75; random-direction control CI upper bound < 0.25)."
              + (f" {v['why']}." if v.get("why") else "")]
    return "\n".join(lines)


def claims_block() -> str:
    """The results table, from reports/tiny/claims.json (refused if stale: other profile or config)."""
    from . import claims

    if not (paths.REPORTS / "tiny" / "claims.json").exists():
        return "_Not produced yet: run `make reproduce` (notebook 07 writes reports/tiny/claims.json)._"
    report = claims.load_report("tiny")
    return claims.results_table(report) + f"\n\nProfile `tiny`, config hash `{report['config_hash']}`; " \
        "details per claim in [`reports/tiny/claims.md`](reports/tiny/claims.md)."


def c3_block() -> str:
    path = paths.REPORTS / "tiny" / "c3.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 04 writes reports/tiny/c3.json)._"
    v = io.read_json(path)
    lines = ["| model | heavy-tailed fraction (pre-registered test) | weaker WW reading (reliable, α ≤ 6) | "
             "entry-shuffled control | median α |", "|---|---|---|---|---|"]
    for model, s in v["models"].items():
        if model == "smollm2":
            lines.append(f"| SmolLM2-135M-Instruct (Q4_1, dequantized) | {s['strict']:.3f} | {s['ww_band']:.3f} | "
                         f"{s['shuffled']:.3f} | {s['median_alpha']:.2f} |")
        else:
            lines.append(f"| {model} ({s['strict']['n']} seed(s)) | {_ci(s['strict'])} | {_ci(s['ww_band'])} | "
                         f"{_ci(s['shuffled'])} | {s['median_alpha']['mean']:.2f} |")
    f = v["fraction_rl"]
    lines += ["", f"**Verdict (profile tiny): C3 {v['verdict']}**: heavy-tailed fraction of the Full-RL model "
              f"{_ci(f)} over {f['n']} seeds (threshold in `claims.C3`: "
              "mean ≥ 0.9)." + (f" {v['why']}." if v.get("why") else "")]
    return "\n".join(lines)


def c4_block() -> str:
    path = paths.REPORTS / "tiny" / "c4.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 05 writes reports/tiny/c4.json)._"
    v = io.read_json(path)
    lines = ["| arm | mean \\|cos(u1(t), u1(T))\\| | mean \\|cos(v1(t), v1(T))\\| | u − v (95% CI) | "
             "u − random baseline (95% CI) | verdict |", "|---|---|---|---|---|---|"]
    for arm, r in v["by_arm"].items():
        ps = r["per_seed"]
        mean = lambda k: sum(p[k] for p in ps) / len(ps)  # noqa: E731
        a, b = r["u_minus_v"], r["u_minus_baseline"]
        lines.append(f"| {arm} ({len(ps)} seeds) | {mean('u_cos_final'):.3f} | {mean('v_cos_final'):.3f} | "
                     f"{a['mean']:.3f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}] | {b['mean']:.3f} [{b['ci'][0]:.3f}, "
                     f"{b['ci'][1]:.3f}] | {r['verdict']} |")
    lines += ["", f"**Verdict (profile tiny, arm {v['arms'][0]}): C4 {v['verdict']}** (thresholds in `claims.C4`: "
              "both CI lower bounds > 0)."]
    return "\n".join(lines)


def c2_block() -> str:
    path = paths.REPORTS / "tiny" / "c2.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 03 writes reports/tiny/c2.json)._"
    v = io.read_json(path)
    import pandas as pd

    scores = pd.DataFrame(v["scores"]).drop(columns="seed").groupby("model", sort=False).mean()
    cols = [f"{a}_{m}" for m in ("acc", "logp") for a in ("math", "fact", "skill")]
    lines = ["| model (mean over seeds) | math acc | fact acc | skill acc | math log p | fact log p | skill log p |",
             "|---|---|---|---|---|---|---|"]
    for model, row in scores.iterrows():
        lines.append(f"| {model} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
    r2 = v.get("reading2", {})
    lora = v.get("lora", {})
    cos = lora.get("direction_cosines", {})
    lines += ["",
              f"**Reading 1** (knowledge the base had; rank-1 = norm-matched rank-1 of the Full-RL update): math recovery "
              f"{_ci(v['math_recovery'])}, knowledge-probe drop (full − rank-1) {_ci(v['fact_drop'])}, skill drop "
              f"{_ci(v['skill_drop'])} over {v['math_recovery']['n']} seeds. "
              f"**Verdict (profile tiny): C2 {v['verdict']}** (thresholds in `claims.C2`: math recovery ≥ 0.8 and a "
              "drop ≥ 0.05 with CI lower bound > 0 on the probe or the skill)." + (f" {v['why']}." if v.get("why") else ""),
              ""]
    if r2:
        lines.append(f"**Reading 2** (multi-task RL, math + reversal rewards): full-RL skill gain {_ci(r2['skill_gain'])}; "
                     f"rank-1 recovery of the math gain {_ci(r2['math_recovery'])}, of the skill gain "
                     f"{_ci(r2['skill_recovery'])}; verdict: **{r2['verdict']}**" + (f" ({r2['why']})" if r2.get("why") else "")
                     + " (holds if math recovery ≥ 0.8 while skill recovery ≤ 0.5).")
        lines.append("")
    if cos:
        mean = lambda k: sum(c[k] for c in cos.values()) / len(cos)  # noqa: E731
        lines.append(f"**Rank-1 LoRA arm:** the merged LoRA update has rank 1 (max σ2/σ1 = "
                     f"{lora['max_sigma2_over_sigma1']:.1e}); |cos| of its direction with the full update's top "
                     f"singular vectors, mean over matrix types: u1 {mean('cos_u'):.3f}, v1 {mean('cos_v'):.3f} "
                     f"(random baselines {mean('baseline_u'):.3f}, {mean('baseline_v'):.3f}).")
    return "\n".join(lines)


def dynamics_block() -> str:
    path = paths.REPORTS / "tiny" / "dynamics.json"
    if not path.exists():
        return "_Not produced yet: run `make reproduce` (notebook 06 writes reports/tiny/dynamics.json)._"
    v = io.read_json(path)
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
        f"{signal}: R² {m['r2']:.2f}, leave-one-out R² {m['r2_loo']:.2f}" for signal, m in v["pls_median"].items()) + ".")
    return "\n".join(lines)


def robustness_block(profiles: tuple[str, ...] = ("tiny", "tiny-long")) -> str:
    """Verdicts of the same claims under the tiny profile and its longer variant, side by side."""
    from . import claims

    present = [p for p in profiles if (paths.REPORTS / p / "claims.json").exists()]
    missing = [p for p in profiles if p not in present]
    if len(present) < 2:
        return ("_Not produced yet: `make reproduce PROFILE=tiny-long` writes reports/tiny-long/claims.json "
                f"(missing: {', '.join(missing)})._")
    reports = {p: claims.load_report(p) for p in present}
    head = "| claim | " + " | ".join(f"{p}: first quantity, mean [95% CI] | {p}: verdict" for p in present) + " |"
    lines = [head, "|---|" + "---|---|" * len(present)]
    ids = [c["id"] for c in reports[present[0]]["claims"]]
    for cid in ids:
        cells = []
        for p in present:
            c = next((c for c in reports[p]["claims"] if c["id"] == cid), None)
            if c is None or not c.get("measured"):
                cells += ["—", c["verdict"] if c else "—"]
                continue
            m = c["measured"][0]
            cells += [f"{m['quantity']}: {_ci(m)}", f"**{c['verdict']}**"]
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    for p in present:
        dyn = paths.REPORTS / p / "dynamics.json"
        if dyn.exists():
            d = io.read_json(dyn)
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
        cold = io.read_json(tfile).get("cold") if tfile.exists() else None
        if cold:
            times.append(f"{p} {cold['total_s'] / 60:.1f} min ({cold['runs_trained']} runs, {cold['processes']} processes)")
    lines.append("Config hashes: " + ", ".join(f"{p} `{reports[p]['config_hash']}`" for p in present) + "."
                 + (" Cold `make reproduce` times: " + "; ".join(times) + "." if times else ""))
    return "\n".join(lines)


def timing_block() -> str:
    path = paths.REPORTS / "tiny" / "timing.json"
    if not path.exists():
        return "_Not measured yet: `make reproduce` writes reports/tiny/timing.json._"
    t = io.read_json(path)
    lines = []
    if "cold" in t:
        c = t["cold"]
        lines.append(f"Last `make reproduce` that trained every run from nothing: **{c['total_s'] / 60:.1f} min** in all "
                     f"({c['setup_s']:.0f} s setting up `.venv`, then {c['runs_trained']} GRPO runs and "
                     f"{c['notebooks_executed']} notebooks in {c['jobs_wall_s']:.0f} s with {c['processes']} processes "
                     f"on {c['cpu_count']} cores).")
    if "warm" in t:
        lines.append(f"Run again with nothing changed, it reuses all {t['warm']['runs_cached']} runs and "
                     f"{t['warm']['notebooks_cached']} notebooks in **{t['warm']['total_s']:.0f} s**.")
    if not lines:
        return "_No cold or warm `make reproduce` recorded yet in reports/tiny/timing.json._"
    return " ".join(lines) + " Measured by `make reproduce` itself (`reports/tiny/timing.json`)."


BLOCKS = {"timing": timing_block, "robustness": robustness_block, "base-metrics": base_metrics_block, "claims": claims_block, "c0": c0_block, "c1": c1_block,
          "c2": c2_block, "c3": c3_block, "c4": c4_block, "dynamics": dynamics_block}


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
        io.write_text(path, new)
    return new != old
