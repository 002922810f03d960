"""Today's fp32 TRL step vs the fast path, on the smollm2 profile, in the three ways this project trains.

Arms (same model, task, batch and GRPOConfig as ``configs/smollm2.yaml``'s ``full`` arm; only these differ):
  today   TRL's GRPOTrainer in fp32 sampling with ``model.generate`` (train.precision: fp32, sampler: generate)
  profile TRL's GRPOTrainer in fp32 with the kv sampler's rollouts: what configs/smollm2.yaml trains with now
  fast    train.FastGRPOTrainer: the loss forward/backward on bf16 copies with fp32 masters (precision.Bf16Compute)
          and rollouts from the kv sampler in fp32 (train.precision: bf16, sampler: kv). On a CPU without
          native bf16 the run falls back to fp32 (precision.effective_precision) and this says so.

Settings:
  1x1     one process, 1 torch thread
  2x1     two processes side by side, 1 thread each (how ``make reproduce`` trains: two runs share 2 cores);
          the two start every arm together (a barrier), so each arm is timed under the same neighbour
  1x2     one process, 2 threads

Each arm trains ``--steps`` steps per round; the first step of each is warm-up and not counted; arms are
interleaved over ``--repeats`` rounds. Printed per setting and arm: the median step and its split into
generation (TRL's rollout call), the optimizer step and the rest (loss forward + backward, rewards, TRL's
bookkeeping); the today : fast ratio (goal >= 3) and the profile : fast ratio. Then the floor: the
arithmetic of one step (forward + backward over the batch's tokens, the sampled tokens' forward) divided by
the bf16 matmul rate measured here on a SmolLM2-shaped matmul, per thread count, and the memory side of
sampling: the machine's read rate and the rate at which the decode step's matmuls (at the rollout's rows,
weights not in cache) read their weights, fp32 and bf16. Then the same-batch agreement of the gradients
(fp32 vs fast; also the fast path with attention left in bf16). Then rollout sampling with
fp32 vs bf16 sampler weights, and evaluation: greedy answers and answer log-likelihoods, items per second,
``generate`` / the plain forward vs the kv sampler / the kv scorer (bench_sampler's measurements).
Everything goes to ``--out`` (JSON) with the CPU, its bf16 support and the load average.

    python benchmarks/bench_fast_path.py --quick       # 1 round of 2 steps, settings 1x1 and 1x2
    python benchmarks/bench_fast_path.py --out reports/smollm2/bench_fast_path.json   # 2 rounds of 3 steps, all
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sampler import bench_greedy, bench_scoring, cpu_name  # noqa: E402
from bench_training import StepTimer, loss_and_gradient, within_tolerance  # noqa: E402

ARMS = {"today": {"precision": "fp32", "sampler": "generate"}, "profile": {"precision": "fp32", "sampler": "kv"},
        "fast": {"precision": "bf16", "sampler": "kv"}}
SETTINGS = {"1x1": (1, 1), "2x1": (2, 1), "1x2": (1, 2)}  # processes, threads
GOAL = 3.0


def make_trainer(arm: str, base, tok, steps: int, out: str, profile: str = "smollm2"):
    """A trainer of ``profile``'s ``full`` experiment in ``arm``'s settings on a copy of ``base``, with timers."""
    import copy

    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank.training import config, train

    cfg = config.resolve(profile, "full", 0, {"train": {"max_steps": steps, **ARMS[arm]}})
    kwargs = train.grpo_kwargs(cfg, Path(out), quiet=True)
    kwargs.update(save_strategy="no", log_level="error", disable_tqdm=True)
    timer = StepTimer()
    fast = train.run_precision(cfg) == "bf16"
    cls = train.FastGRPOTrainer if fast else GRPOTrainer
    model = copy.deepcopy(base)
    trainer = cls(model=model, reward_funcs=train.reward_function(cfg), args=GRPOConfig(**kwargs),
                  train_dataset=train.train_dataset(cfg), processing_class=tok, callbacks=[timer.callback],
                  **train.rollout_kwargs(cfg))
    trainer.remove_callback(PrinterCallback)
    gen: list[float] = []

    def timed(fn):
        def call(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                gen.append(time.perf_counter() - t0)
        return call

    if getattr(trainer, "rollout_func", None) is not None:
        trainer.rollout_func = timed(trainer.rollout_func)
    else:
        model.generate = timed(model.generate)
    return trainer, timer, gen, fast


def run_rounds(base, tok, steps: int, repeats: int, threads: int, barrier=None) -> dict:
    """Per arm: the counted steps' seconds (step, generation, optimizer) over all rounds."""
    torch.set_num_threads(threads)
    per = {a: {"step": [], "generation": [], "optimizer": []} for a in ARMS}
    fast_is_bf16 = None
    for _ in range(repeats):
        for arm in ARMS:
            with tempfile.TemporaryDirectory() as out:
                trainer, timer, gen, fast = make_trainer(arm, base, tok, steps, out)
                if arm == "fast":
                    fast_is_bf16 = fast
                if barrier is not None:
                    barrier.wait()
                trainer.train()
            per[arm]["step"] += timer.steps[1:]
            per[arm]["generation"] += gen[1:]  # one rollout per step (steps_per_generation = 1)
            per[arm]["optimizer"] += timer.optimizer[1:]
    return {"samples": per, "fast_is_bf16": fast_is_bf16}


def _worker(steps, repeats, barrier, queue):
    from rlvr_lowrank import models

    base, tok = models.load_smollm2()
    queue.put(run_rounds(base, tok, steps, repeats, 1, barrier))


def two_processes(steps: int, repeats: int) -> dict:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(steps, repeats, barrier, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    merged = {a: {k: sum((r["samples"][a][k] for r in results), []) for k in ("step", "generation", "optimizer")}
              for a in ARMS}
    return {"samples": merged, "fast_is_bf16": results[0]["fast_is_bf16"]}


def summarise(samples: dict) -> dict:
    med = {a: {k: statistics.median(v) for k, v in s.items()} for a, s in samples.items()}
    for m in med.values():
        m["rest"] = m["step"] - m["generation"] - m["optimizer"]
    return {"median_seconds": med, "ratio_today_to_fast": med["today"]["step"] / med["fast"]["step"],
            "ratio_profile_to_fast": med["profile"]["step"] / med["fast"]["step"],
            "ratio_by_phase": {k: med["today"][k] / med["fast"][k] for k in ("generation", "optimizer", "rest")}}


def matmul_rates(threads: int) -> dict:
    """GFLOP/s of a SmolLM2-shaped matmul (512 x 576 @ 576 x 1536) in fp32 and bf16 at ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(512, 576), torch.randn(576, 1536)
    out = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x, y = a.to(dt), b.to(dt)
        for _ in range(3):
            x @ y
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(10):
                x @ y
            best = min(best, time.perf_counter() - t0)
        out[name] = 10 * 2 * 512 * 576 * 1536 / best / 1e9
    return out


def memory_rates(threads: int, rows: int) -> dict:
    """GB/s at ``threads`` threads: reading 512 MiB of fp32 (a sum: the machine's read rate), and the weights a
    decode step's fp32 and bf16 matmuls read at ``rows`` rows (the rollout's batch), over a stack of
    SmolLM2-shaped 1536 x 576 matrices larger than the last-level cache, so each is read from memory as in
    sampling."""
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    big = torch.ones(128 * 1024 * 1024)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        big.sum()
        best = min(best, time.perf_counter() - t0)
    out = {"read": big.numel() * 4 / best / 1e9}
    del big
    x = torch.randn(rows, 576)
    for name, dt in (("fp32_matmul", torch.float32), ("bf16_matmul", torch.bfloat16)):
        stack = torch.randn(96, 1536, 576).to(dt)  # 340 MB in fp32, 170 MB in bf16
        xs = x.to(dt)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for w in stack:
                F.linear(xs, w)
            best = min(best, time.perf_counter() - t0)
        out[name] = stack.numel() * stack.element_size() / best / 1e9
    return out


def matmul_params(base) -> tuple[int, int]:
    """(weights of the decoder's matmuls, weights of the LM head): each token through the model costs about
    2 x the first in FLOPs, and each position the head scores 2 x the second."""
    body = sum(p.numel() for n, p in base.named_parameters()
               if p.dim() == 2 and "embed" not in n and "lm_head" not in n)
    return body, base.lm_head.weight.numel()


def step_flops(base, tok) -> dict:
    """The arithmetic of one smollm2 step: forward + backward (3x a forward) over prompt + completion of every
    sequence, the LM head at the completion positions only (TRL's fused head), plus sampling's forward of
    each new token (prefill counted as one forward per distinct prompt). Completions are taken at their
    maximum length: the floor is that of the longest step."""
    from rlvr_lowrank.training import config, rollout, train

    cfg = config.resolve("smollm2", "full", 0)
    t = cfg.train
    g, new = t["num_generations"], t["max_completion_length"]
    batch = t["per_device_train_batch_size"]
    prompts = train.train_dataset(cfg)["prompt"][:batch // g]
    p_len = max(map(len, rollout.prompt_token_ids(prompts, tok)))
    body, head = matmul_params(base)
    loss = 3 * 2 * (body * batch * (p_len + new) + head * batch * new)
    sampling = 2 * (body + head) * (batch * new + batch // g * p_len)
    # each decode step (every new token but the last, which is never fed back) reads every weight matrix once
    decode_bytes = 4 * (body + head) * (new - 1)
    return {"prompt_tokens": p_len, "completion_tokens": new, "sequences": batch, "gflop_loss": loss / 1e9,
            "gflop_sampling": sampling / 1e9, "gflop_step": (loss + sampling) / 1e9,
            "decode_gb_fp32": decode_bytes / 1e9}


def sampler_weights(base, tok, repeats: int) -> dict:
    """Rollout sampling (the profile's prompts, G completions each, its new tokens and temperature), 1 thread,
    by the kv sampler with: the fp32 weights; ``sampling.Bf16Weights`` (bf16 ``hi + lo``: keeps an update
    smaller than half a bf16 ulp, two bf16 matmuls per layer); a plain bf16 copy (``hi`` alone: one matmul,
    rounds such an update away, so no setting uses it; timed to show what rounding would buy). Median seconds."""
    import torch.nn.functional as F

    from rlvr_lowrank import sampling
    from rlvr_lowrank.training import config, rollout, train

    cfg = config.resolve("smollm2", "full", 0)
    t = cfg.train
    g = t["num_generations"]
    prompts = [p for p in train.train_dataset(cfg)["prompt"][:t["per_device_train_batch_size"] // g] for _ in range(g)]
    ids = rollout.prompt_token_ids(prompts, tok)
    weights = sampling.Bf16Weights(base)

    class PlainBf16(sampling.KVSampler):
        def _linear(self, x, mod):
            hi, _ = self.bf16.pair(self._name(mod.weight))
            y = F.linear(x.to(torch.bfloat16), hi).float()
            return y if mod.bias is None else y + mod.bias

    arms = {"fp32": sampling.KVSampler(base), "bf16 hi+lo": sampling.KVSampler(base, bf16=weights),
            "bf16 plain": PlainBf16(base, bf16=weights)}
    torch.set_num_threads(1)
    times = {a: [] for a in arms}
    for r in range(repeats + 1):
        for arm, s in arms.items():
            t0 = time.perf_counter()
            with torch.no_grad():
                s.generate(ids, t["max_completion_length"], [tok.eos_token_id], tok.pad_token_id, do_sample=True,
                           temperature=t["temperature"])
            if r:
                times[arm].append(time.perf_counter() - t0)
    med = {a: statistics.median(v) for a, v in times.items()}
    return {"sequences": len(ids), "max_new_tokens": t["max_completion_length"], "threads": 1,
            "median_seconds": med, "ratio_fp32_to": {a: med["fp32"] / m for a, m in med.items() if a != "fp32"}}


# Fixed before the first measurement of the fast path: with identical completions the importance ratio is 1, so
# the losses agree to rounding; the gradient is evaluated at the bf16-rounded weights (cosine as the CI test)
AGREEMENT = {"loss_atol": 1e-3, "loss_rtol": 1e-2, "grad_norm_rtol": 0.05, "grad_cosine_min": 0.999}


class _PassThrough(torch.overrides.TorchFunctionMode):
    """A torch-function mode that changes nothing: the fast path with its attention in bf16 (agreement())."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def agreement(base, tok) -> dict:
    """One batch TRL built in fp32 (its completions and advantages; the first of up to 8 steps whose advantages
    are not all zero, since a group with equal rewards has no gradient), scored by the fp32 loss and by the
    fast path's from the base weights: the losses, the gradient norms and the gradient cosine, against
    AGREEMENT."""
    from rlvr_lowrank.training import precision

    torch.set_num_threads(2)
    captured = {}
    with tempfile.TemporaryDirectory() as out:
        ref, _, _, _ = make_trainer("profile", base, tok, 8, out)
        inner = ref.compute_loss

        def capture(model, inputs, **kw):
            if bool(inputs["advantages"].abs().sum() > 0):
                captured.setdefault("inputs", inputs)
                ref.control.should_training_stop = True
            return inner(model, inputs, **kw)

        ref.compute_loss = capture
        ref.train()
        ref.compute_loss = inner
        if "inputs" not in captured:
            raise RuntimeError("8 steps gave no batch with a non-zero advantage: no gradient to compare")
        fresh, _, _, _ = make_trainer("profile", base, tok, 1, out)
        fast, _, _, is_bf16 = make_trainer("fast", base, tok, 1, out)
        l32, g32 = loss_and_gradient(fresh, captured["inputs"])
        l16, g16 = loss_and_gradient(fast, captured["inputs"])
        # for the record: the same fast path with attention left in bf16 (its design before Fp32Attention);
        # compute_loss looks the mode up in the module at each call, so a pass-through mode stands in for it
        fp32_attention = precision.Fp32Attention
        precision.Fp32Attention = _PassThrough
        try:
            _, g_bf16_attention = loss_and_gradient(fast, captured["inputs"])
        finally:
            precision.Fp32Attention = fp32_attention
        # for scale: the earlier bf16 design (TRL's own loss under bf16 autocast) on the same batch
        earlier, _, _, _ = make_trainer("profile", base, tok, 1, out)
        plain = earlier.compute_loss

        def autocast_loss(model, inputs, **kw):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return plain(model, inputs, **kw)

        earlier.compute_loss = autocast_loss
        _, g_ac = loss_and_gradient(earlier, captured["inputs"])
        # where the disagreement comes from: fp32 arithmetic at the weights the fast path sees (bf16-rounded
        # copies, embedding and LM head fp32), i.e. the weights' rounding alone, without bf16 activations
        rounded, _, _, _ = make_trainer("profile", base, tok, 1, out)
        with torch.no_grad():
            for master in precision.compute_weights(rounded.model).values():
                master.copy_(master.bfloat16().float())
        _, g_rw = loss_and_gradient(rounded, captured["inputs"])
    cos = float(torch.nn.functional.cosine_similarity(g16, g32, dim=0))
    within = within_tolerance(l32, g32, l16, g16, AGREEMENT)
    return {"loss_fp32": l32, "loss_fast": l16, "grad_norm_fp32": float(g32.norm()),
            "grad_norm_fast": float(g16.norm()), "grad_cosine": cos, "fast_is_bf16": is_bf16,
            "grad_cosine_earlier_autocast": float(torch.nn.functional.cosine_similarity(g_ac, g32, dim=0)),
            "grad_cosine_bf16_attention": float(torch.nn.functional.cosine_similarity(g_bf16_attention, g32, dim=0)),
            "grad_cosine_rounded_weights_fp32": float(torch.nn.functional.cosine_similarity(g_rw, g32, dim=0)),
            "tolerances": AGREEMENT, "within_tolerance": bool(within)}


def greedy_floor(base, tok, items, generate_seconds: float) -> dict:
    """The least arithmetic any exact greedy evaluation of ``items`` does (the prompts' common prefix once,
    each prompt's remaining tokens once, each fed-back answer token once; the LM head at each prompt's last
    position and at each fed-back token), at the fp32 matmul rate measured here at 1 thread: the fp32 floor of
    greedy evaluation, and the largest ratio over ``generate`` an fp32 evaluation can have on this machine."""
    from rlvr_lowrank import sampling
    from rlvr_lowrank.sampling import kv_sampler
    from rlvr_lowrank.world import evaluate

    ids = tok([evaluate.prompt_text(tok, it) for it in items])["input_ids"]
    done = sampling.sample(base, ids, evaluate._max_new_tokens(items), [tok.eos_token_id], tok.pad_token_id)
    answers = done.lengths.tolist()
    c = kv_sampler._common_prefix([list(p) for p in ids])
    body, head = matmul_params(base)
    tokens = c + sum(len(p) - c for p in ids) + sum(n - 1 for n in answers)
    gflop = 2 * (body * tokens + head * sum(answers)) / 1e9
    rate = matmul_rates(1)["fp32"]
    return {"items": len(items), "body_tokens": tokens, "answer_tokens": sum(answers), "gflop_min": gflop,
            "matmul_gflops_fp32": rate, "floor_seconds_fp32": gflop / rate,
            "max_ratio_generate_to_fp32": generate_seconds / (gflop / rate)}


def evaluation(base, tok, quick: bool) -> dict:
    """Greedy answers and answer log-likelihoods, items per second before and after (bench_sampler's
    measurements), and greedy evaluation's fp32 floor (greedy_floor), at 1 thread."""
    from rlvr_lowrank.world import chat_tasks, tasks

    torch.set_num_threads(1)
    n_items, reps = (10, 1) if quick else (60, 2)
    g = bench_greedy(base, tok, "smollm2", n_items, reps)
    items = tasks.spread_subset(chat_tasks.arithmetic_items("test"), g["items"])  # bench_greedy's items
    g["floor"] = greedy_floor(base, tok, items, g["median_seconds"]["generate"])
    return {"greedy": g, "scoring": bench_scoring(base, tok, "smollm2", n_items, reps), "threads": 1}


def _evaluation_line(ev: dict) -> str:
    g, sc = ev["greedy"], ev["scoring"]
    gi = g["items_per_second"]
    return (f"evaluation, 1 thread: greedy {gi['generate']:.1f} -> {gi['kv']:.1f} items/s "
            f"({g['ratio_generate_to_kv']:.2f}x, identical answers: {g['identical_completions']}; its fp32 "
            f"floor {g['floor']['floor_seconds_fp32']:.2f} s for {g['floor']['gflop_min']:.0f} GFLOP, so at most "
            f"{g['floor']['max_ratio_generate_to_fp32']:.2f}x in fp32 here); log-likelihoods "
            f"{sc['items_per_second']['plain']:.1f} -> {sc['items_per_second']['kv']:.1f} items/s "
            f"({sc['ratio_plain_to_kv']:.2f}x, largest difference {sc['max_abs_difference_nats']:.1e} nats)")


def _agreement_line(ag: dict) -> str:
    return (f"same batch, fp32 vs fast: loss {ag['loss_fp32']:.6f} / {ag['loss_fast']:.6f}; gradient norm "
            f"{ag['grad_norm_fp32']:.4g} / {ag['grad_norm_fast']:.4g}; cosine {ag['grad_cosine']:.5f} (attention "
            f"left in bf16: {ag['grad_cosine_bf16_attention']:.5f}; the earlier autocast design: "
            f"{ag['grad_cosine_earlier_autocast']:.5f}; fp32 arithmetic at the bf16-rounded "
            f"weights: {ag['grad_cosine_rounded_weights_fp32']:.5f}) -> "
            f"{'within' if ag['within_tolerance'] else 'OUTSIDE'} the tolerances {ag['tolerances']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round of 2 steps; settings 1x1 and 1x2; 10 eval items")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--settings", default=None, help="comma-separated, of 1x1,2x1,1x2 (default: all; --quick 1x1,1x2)")
    ap.add_argument("--out", default=None, help="write the measurements and ratios to this JSON file")
    ap.add_argument("--agreement-only", action="store_true",
                    help="only the same-batch agreement, added to the existing --out file")
    ap.add_argument("--evaluation-only", action="store_true",
                    help="only the evaluation measurements and their floor, added to the existing --out file")
    args = ap.parse_args()
    steps = args.steps or (2 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else 2)
    settings = (args.settings or ("1x1,1x2" if args.quick else "1x1,2x1,1x2")).split(",")
    if unknown := [s for s in settings if s not in SETTINGS]:
        sys.exit(f"unknown setting(s) {unknown}; choose from {list(SETTINGS)}")

    from rlvr_lowrank import fileio, models
    from rlvr_lowrank.training import precision

    feature = precision.cpu_bf16_feature()
    load = os.getloadavg()[0]
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores; native bf16: {feature or 'none (the fast path runs in fp32)'}; "
          f"load average {load:.2f}", flush=True)
    base, tok = models.load_smollm2()
    if args.agreement_only or args.evaluation_only:
        flag = "--agreement-only" if args.agreement_only else "--evaluation-only"
        if not (args.out and Path(args.out).is_file()):
            sys.exit(f"{flag} adds to an existing report: give it as --out")
        report = json.loads(Path(args.out).read_text())
        if args.agreement_only:
            report["agreement"] = ag = agreement(base, tok)
            print(_agreement_line(ag))
        else:
            report["evaluation"] = evaluation(base, tok, args.quick)
            report["evaluation"]["load_average_before"] = load
            print(_evaluation_line(report["evaluation"]))
        fileio.write_json(args.out, report)
        return print(f"written: {args.out}")
    report = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "bf16_feature": feature, "load_average_before": load,
              "torch": torch.__version__, "steps": steps, "repeats": repeats, "arms": ARMS, "goal": GOAL,
              "settings": {}}
    for name in settings:
        procs, threads = SETTINGS[name]
        got = (two_processes(steps, repeats) if procs == 2 else run_rounds(base, tok, steps, repeats, threads))
        s = summarise(got["samples"])
        s.update(samples=got["samples"], fast_is_bf16=got["fast_is_bf16"], processes=procs, threads=threads)
        report["settings"][name] = s
        print(f"\n{name} ({procs} process(es) x {threads} thread(s)), median seconds per step"
              f"{'' if got['fast_is_bf16'] else ' (fast path in fp32: no native bf16)'}:")
        for arm, m in s["median_seconds"].items():
            print(f"  {arm:<5} {m['step']:6.2f} = generation {m['generation']:.2f} + optimizer {m['optimizer']:.2f} "
                  f"+ loss forward/backward and the rest {m['rest']:.2f}")
        r = s["ratio_by_phase"]
        print(f"  today : fast {s['ratio_today_to_fast']:.2f}x (goal >= {GOAL:g}); generation {r['generation']:.2f}x, "
              f"rest {r['rest']:.2f}x; profile : fast {s['ratio_profile_to_fast']:.2f}x", flush=True)

    flops = step_flops(base, tok)
    report["step_flops"] = flops
    report["floor"] = {}
    for threads in sorted({SETTINGS[n][1] for n in settings}):
        rates = matmul_rates(threads)
        floor = flops["gflop_step"] / rates["bf16"]
        memory = memory_rates(threads, flops["sequences"])
        report["floor"][str(threads)] = {"matmul_gflops": rates, "floor_seconds_bf16": floor,
                                         "floor_seconds_fp32": flops["gflop_step"] / rates["fp32"],
                                         "memory_gbps": memory}
        print(f"floor at {threads} thread(s): {flops['gflop_step']:.0f} GFLOP per step / {rates['bf16']:.0f} GFLOP/s "
              f"bf16 ({rates['fp32']:.0f} fp32) = {floor:.2f} s; memory read {memory['read']:.1f} GB/s, decode "
              f"matmuls at {flops['sequences']} rows read their weights at {memory['fp32_matmul']:.1f} GB/s fp32, "
              f"{memory['bf16_matmul']:.1f} bf16", flush=True)
    report["agreement"] = ag = agreement(base, tok)
    print(_agreement_line(ag), flush=True)
    report["sampler_weights"] = sw = sampler_weights(base, tok, 1 if args.quick else 3)
    print(f"rollout sampling, {sw['sequences']} x {sw['max_new_tokens']} tokens, 1 thread: " + ", ".join(
        f"{a} {m:.2f} s" for a, m in sw["median_seconds"].items()), flush=True)
    report["evaluation"] = evaluation(base, tok, args.quick)
    print(_evaluation_line(report["evaluation"]))
    if args.out:
        fileio.write_json(args.out, report)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
