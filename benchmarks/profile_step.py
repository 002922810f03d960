"""Where a GRPO step of the smollm2 profile spends its time, measured with torch.profiler.

TRL's GRPOTrainer on SmolLM2-135M-Instruct (the dequantized Q4_1 GGUF) with the smollm2 profile's settings
(`configs/smollm2.yaml`: 1 prompt x 8 completions, 12 new tokens), as the profile trains (its sampler and
fp32: "before") and on the fast path (``train: {precision: bf16, sampler: kv}``: "after"), at 1 and at 2 torch
threads, without this project's callbacks (evaluations, the trajectory recorder: they run
every 50 and every 5 steps, not in every step). The first ``--warmup`` steps of each setting are not
counted. Each counted step is split into three phases by markers (``torch.profiler.record_function``)
placed around TRL's rollout call and around ``optimizer.step()``:

  generation   the rollout (sampling the completions, whichever sampler the profile selects)
  optimizer    AdamW's step
  loss         everything else in the step: the loss forward and backward, the reward, TRL's bookkeeping

A step runs from the trainer's ``on_step_begin`` to its ``on_step_end``; the logging that transformers does
after ``on_step_end`` is left out.

and each phase's wall time into the self time of the aten operators run inside it, by kind: matmuls of the
LM head (an operand with the vocabulary's size), other matmuls, attention, softmax / log-softmax / gather
(the log-probabilities), the optimizer's foreach kernels, every other operator; and the time outside any
operator ("outside ops": Python, TRL and transformers code, the autograd engine's own work). Intra-op worker
threads record no events, so an operator's self time is the calling thread's wall time inside it.

    python benchmarks/profile_step.py --quick                          # 1 warm-up + 2 counted steps
    python benchmarks/profile_step.py --out reports/smollm2/profile_step.json   # 2 warm-up + 4 counted

The report file is rendered into docs/speed.md by ``python -m rlvr_lowrank readme`` (block
``smollm2-profile``). Run it on a quiet machine: it prints the load average before it starts.
"""
from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from pathlib import Path

import torch

PHASES = ("generation", "loss", "optimizer")
KINDS = ("matmul, LM head", "matmul, other", "attention", "log-probabilities", "optimizer kernels", "other ops")
MATMUL = re.compile(r"^aten::(mm|addmm|bmm|baddbmm|matmul|linear|_mkl_linear|mkldnn_linear|_addmm_activation)$")
ATTENTION = re.compile(r"scaled_dot_product|_flash_attention|_efficient_attention|attention")
LOGPROB = re.compile(r"^aten::(_?log_softmax|_?softmax|gather|logsumexp|nll_loss|cross_entropy|"
                     r"_log_softmax_backward_data|_softmax_backward_data)")
OPTIMIZER_OP = re.compile(r"^aten::_foreach_|^Optimizer\.|adam", re.I)
MARKERS = {f"phase::{p}" for p in ("generation", "optimizer")} | {"phase::step"}


def kind_of(name: str, shapes, vocab: int) -> str:
    """The kind of one profiler event (an aten operator) by its name and input shapes."""
    if MATMUL.match(name):
        dims = {d for s in (shapes or []) for d in (s or [])}
        return "matmul, LM head" if vocab in dims else "matmul, other"
    if ATTENTION.search(name):
        return "attention"
    if LOGPROB.match(name):
        return "log-probabilities"
    if OPTIMIZER_OP.search(name):
        return "optimizer kernels"
    return "other ops"


def split(events, vocab: int) -> dict:
    """Sum the events' self times per phase and kind, and each phase's wall time, over the counted steps.

    ``events``: the profiler's FunctionEvents. Phase markers give time ranges (µs); an operator belongs to
    the marker range that contains its start, and to ``loss`` when it lies in a step but in neither marker."""
    ranges = {p: [] for p in ("step", "generation", "optimizer")}
    for e in events:
        if e.name in MARKERS:
            ranges[e.name.split("::")[1]].append((e.time_range.start, e.time_range.end))
    steps = sorted(ranges["step"])

    def phase_of(t: float) -> str | None:
        for p in ("generation", "optimizer"):
            if any(a <= t < b for a, b in ranges[p]):
                return p
        return "loss" if any(a <= t < b for a, b in steps) else None

    out = {p: {k: 0.0 for k in KINDS} for p in PHASES}
    for e in events:
        if e.name in MARKERS or e.name.startswith("ProfilerStep"):
            continue
        p = phase_of(e.time_range.start)
        if p is not None:
            out[p][kind_of(e.name, getattr(e, "input_shapes", None), vocab)] += e.self_cpu_time_total / 1e6
    wall = {p: sum(b - a for a, b in ranges[p]) / 1e6 for p in ("generation", "optimizer")}
    wall["loss"] = sum(b - a for a, b in steps) / 1e6 - wall["generation"] - wall["optimizer"]
    table = {}
    for p in PHASES:
        ops = sum(out[p].values())
        table[p] = {"wall_s": wall[p], **out[p], "outside ops": wall[p] - ops}
    return {"n_steps": len(steps), "phases": table}


class Markers:
    """Trainer callback placing the step and optimizer markers (record_function, entered and left by hand)."""

    def __init__(self, counted_from: int):
        from transformers import TrainerCallback

        self.counted_from, self.open = counted_from, {}
        outer = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                if state.global_step >= outer.counted_from:
                    outer._enter("step")

            def on_pre_optimizer_step(self, args, state, control, **kw):
                if "step" in outer.open:
                    outer._enter("optimizer")

            def on_optimizer_step(self, args, state, control, **kw):
                outer._exit("optimizer")

            def on_step_end(self, args, state, control, **kw):
                outer._exit("step")

        self.callback = _Callback()

    def _enter(self, name):
        rf = torch.profiler.record_function(f"phase::{name}")
        rf.__enter__()
        self.open[name] = rf

    def _exit(self, name):
        rf = self.open.pop(name, None)
        if rf is not None:
            rf.__exit__(None, None, None)


def profile_setting(base, tok, threads: int, warmup: int, steps: int, precision: str = "profile") -> dict:
    """One thread setting. ``precision``: "profile" trains as configs/smollm2.yaml does (GRPOTrainer, fp32);
    "bf16" the fast path (train.FastGRPOTrainer with ``train: {precision: bf16, sampler: kv}``)."""
    import copy

    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank.training import config, train

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fast = {"precision": "bf16", "sampler": "kv"} if precision == "bf16" else {}
    cfg = config.resolve("smollm2", "full", 0, {"train": {"max_steps": warmup + steps, **fast}})
    trainer_class = train.FastGRPOTrainer if train.run_precision(cfg) == "bf16" else GRPOTrainer
    model = copy.deepcopy(base)
    extra = train.rollout_kwargs(cfg)  # the profile's sampler, as training passes it to GRPOTrainer
    if "rollout_func" in extra:  # the kv sampler: TRL calls rollout_func(prompts, trainer)
        inner = extra["rollout_func"]

        def marked_rollout(prompts, trainer):
            with torch.profiler.record_function("phase::generation"):
                return inner(prompts, trainer)

        extra["rollout_func"] = marked_rollout
    else:  # the generate path: TRL calls the model's generate
        gen = model.generate

        def marked_generate(*a, **kw):
            with torch.profiler.record_function("phase::generation"):
                return gen(*a, **kw)

        model.generate = marked_generate
    with tempfile.TemporaryDirectory() as out:
        kwargs = train.grpo_kwargs(cfg, Path(out), quiet=True)
        kwargs.update(save_strategy="no", log_level="error", disable_tqdm=True)
        markers = Markers(counted_from=warmup)
        trainer = trainer_class(model=model, reward_funcs=train.reward_function(cfg), args=GRPOConfig(**kwargs),
                                train_dataset=train.train_dataset(cfg), processing_class=tok,
                                callbacks=[markers.callback], **extra)
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        t0 = time.perf_counter()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as prof:
            trainer.train()
        total = time.perf_counter() - t0
    res = split(prof.events(), vocab=int(base.config.vocab_size))
    if not res["n_steps"] or not all(res["phases"][p]["wall_s"] > 0 for p in ("generation", "optimizer")):
        raise RuntimeError(f"a phase marker never fired ({res}): TRL's rollout or optimizer call has moved; "
                           "this split would be wrong")
    over = {p: -row["outside ops"] for p, row in res["phases"].items() if row["outside ops"] < 0}
    if over:  # operator self times that add up to more than the phase's wall time cannot be a split of it
        res["phases"] = {p: {"wall_s": row["wall_s"]} for p, row in res["phases"].items()}
        res["kind_split_withheld"] = (f"operator self times exceed the wall time of {sorted(over)} by up to "
                                      f"{max(over.values()) / res['n_steps']:.2f} s per step (the profiler's event "
                                      "tree inside autograd and TRL's chunked log-probability function is not a "
                                      "partition of the time); only the phases' wall times are kept")
    res.update(threads=threads, warmup=warmup, sampler=cfg.train.get("sampler", "generate"),
               precision=train.run_precision(cfg), train_wall_s=total)
    return res


def show(res: dict) -> None:
    n = res["n_steps"]
    step = sum(v["wall_s"] for v in res["phases"].values()) / n
    print(f"\n{res['threads']} thread(s), sampler {res['sampler']}, {res['precision']}: {step:.2f} s per step "
          f"(mean of {n} counted steps, under the profiler)")
    cols = ("wall_s",) + (() if "kind_split_withheld" in res else KINDS + ("outside ops",))
    print("  " + "phase".ljust(11) + "".join(c[:17].rjust(18) for c in cols))
    for p, row in res["phases"].items():
        print("  " + p.ljust(11) + "".join(f"{row[c] / n:18.3f}" for c in cols))
    if "kind_split_withheld" in res:
        print("  by operator kind: withheld, " + res["kind_split_withheld"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 warm-up and 2 counted steps per setting")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--precision", nargs="+", default=["profile", "bf16"], choices=["profile", "bf16"],
                    help="profile: as configs/smollm2.yaml trains (before); bf16: the fast path (after)")
    ap.add_argument("--out", default=None, help="write the measurements to this JSON file")
    a = ap.parse_args()
    warmup, steps = (1, 2) if a.quick else (2, 4)

    from rlvr_lowrank import fileio, models
    from rlvr_lowrank.pipeline.reproduce import cpu_record

    load = os.getloadavg()[0]
    cpu = cpu_record()
    print(f"CPU {cpu['model']}, bf16 feature {cpu['bf16_feature']}; load average {load:.2f} on "
          f"{os.cpu_count()} logical CPUs before the run", flush=True)
    base, tok = models.load_smollm2()
    tok.padding_side = "left"  # as training sets it (training.train._load_base)
    results = []
    for precision in a.precision:
        for threads in a.threads:
            res = profile_setting(base, tok, threads, warmup, steps, precision)
            show(res)
            results.append(res)
    if a.out:
        fileio.write_json(a.out, {"cpu": cpu, "load_average_before": load, "cpu_count": os.cpu_count(),
                                  "torch": torch.__version__, "kinds": list(KINDS), "settings": results})
        print(f"written: {a.out}")


if __name__ == "__main__":
    main()
