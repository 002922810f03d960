"""The README's and docs/speed.md's blocks about the real model's speed, from reports/smollm2/: the training
benchmark (bench_training), the earlier bf16 path and its learning curve, where a step's time goes
(profile_step), the sampler (bench_sampler), the fast path (bench_fast_path) with what this design can
reach on the machine measured, and the fast path's learning curves against fp32 (bench_fast_curves).
pipeline.readme registers them.
"""
from __future__ import annotations

from .readme_real_model import SMOLLM2_NOTE, smollm2_report


def smollm2_bench_block() -> str:
    """fp32 vs bf16 GRPO steps on SmolLM2 (reports/smollm2/bench_training.json,
    benchmarks/bench_training.py --smollm2)."""
    b = smollm2_report("bench_training.json")
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


def smollm2_bf16_block() -> str:
    """The learning curve of the bf16 path beside fp32, one seed (reports/smollm2/bf16_curve.json)."""
    r = smollm2_report("bf16_curve.json")
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
    d = smollm2_report("profile_step.json")
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
    d = smollm2_report("bench_sampler.json")
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
    d = smollm2_report("bench_fast_path.json")
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
              _design_bound(d) + _sampling_memory(d), "",
              "Evaluation, 1 thread" + (f" (measured in a later run of the benchmark's evaluation alone, load "
                                        f"average {d['evaluation']['load_average_before']:.2f} before it)"
                                        if "load_average_before" in d["evaluation"] else "")
              + f": greedy answers of {g['items']} chat items {gi['generate']:.1f} → "
              f"{gi['kv']:.1f} items/s ({g['ratio_generate_to_kv']:.2f}×, "
              + ("identical answers" if g["identical_completions"] else "**answers differ**")
              + _greedy_floor(g)
              + f"); answer log-likelihoods of {sc['items']} probe items {si['plain']:.1f} → {si['kv']:.1f} "
              f"items/s ({sc['ratio_plain_to_kv']:.2f}×, largest difference {sc['max_abs_difference_nats']:.1e} "
              "nats). Both in fp32: model variants are never evaluated in bf16."]
    ag = d.get("agreement")
    if ag:
        t = ag["tolerances"]
        lines += ["", "Same batch (the first batch of an fp32 run with a non-zero advantage: identical completions "
                      "and advantages), fp32 vs fast from the base weights: loss "
                      f"{ag['loss_fp32']:.5f} vs {ag['loss_fast']:.5f}, gradient norm {ag['grad_norm_fp32']:.4g} vs "
                      f"{ag['grad_norm_fast']:.4g}, gradient cosine {ag['grad_cosine']:.5f} (the same path with "
                      f"attention in bf16: {ag['grad_cosine_bf16_attention']:.5f}; the earlier bf16 design, "
                      f"autocast over TRL's loss, on the same batch: {ag['grad_cosine_earlier_autocast']:.5f}; "
                      "fp32 arithmetic at the bf16-rounded weights, i.e. the weights' rounding alone: "
                      f"{ag['grad_cosine_rounded_weights_fp32']:.5f}): "
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


def _greedy_floor(g: dict) -> str:
    """The fp32 floor of greedy evaluation and the largest ratio it allows."""
    f = g["floor"]
    return (f"; the least arithmetic any exact greedy evaluation of these items does is {f['gflop_min']:.0f} GFLOP, "
            f"{f['floor_seconds_fp32']:.2f} s at the fp32 matmul rate measured here, so an fp32 evaluation can be "
            f"at most {f['max_ratio_generate_to_fp32']:.2f}× faster than `generate` on this machine")


def _sampling_memory(d: dict) -> str:
    """What bounds fp32 sampling on the measured CPU: the weights it reads per rollout against the machine's
    read rate and against the rate the decode step's matmuls read them at the rollout's few rows."""
    f = d["step_flops"]
    rates = {t: v["memory_gbps"] for t, v in d["floor"].items()}
    parts = "; ".join(f"{t} thread(s): read {m['read']:.1f} GB/s → {f['decode_gb_fp32'] / m['read']:.2f} s, while "
                      f"the matmuls read their weights at {m['fp32_matmul']:.1f} GB/s in fp32 "
                      f"({m['bf16_matmul']:.1f} in bf16)" for t, m in rates.items())
    return (f" Sampling's own floor is memory: the decode steps of one rollout read {f['decode_gb_fp32']:.2f} GB of "
            f"fp32 weights, and at {f['sequences']} rows a decode matmul reads its weights slower than the "
            f"machine can: {parts}.")


def smollm2_fast_curves_block() -> str:
    """fp32 vs the fast path's final greedy test accuracy on smollm2, judged by the margin fixed in the benchmark
    (benchmarks/bench_fast_curves.py -> reports/smollm2/bench_fast_curves.json)."""
    d = smollm2_report("bench_fast_curves.json")
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
