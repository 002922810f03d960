"""Benchmark the cost of our callbacks inside TRL's GRPOTrainer, side by side in one process.

Arms (same model, data, seed and GRPOConfig as the tiny profile; only the callbacks differ):
  plain     TRL GRPO, no callback of ours (the reference)
  pr1s+rec  PeriodicRank1Callback (truncated, K = 10) + TrajectoryRecorder (every 5 steps, k = 2)
            -- target: step-time ratio <= 1.05 (PR1S and the recorder must not change what a run costs)
  monitor   SpectralMonitor (every 10 steps) -- target: overhead <= 5% of step time
(the callbacks live in rlvr_lowrank.training: pr1s, trajectory, monitor)

Each arm trains ``--steps`` optimizer steps; arms are interleaved over ``--repeats`` rounds (ABCABC...)
so slow drifts of a noisy machine hit every arm alike, and the ratio of median per-round times is
printed (absolute times are not stable here, ratios are). The callbacks' own measured seconds are
printed too: the overhead they add is that time, whatever the noise in the total.

    python benchmarks/bench_training.py --quick      # 10 steps x 2 rounds
    python benchmarks/bench_training.py              # 30 steps x 3 rounds

The SmolLM2 case (``--smollm2``): TRL GRPO on SmolLM2-135M-Instruct (the dequantized Q4_1 GGUF) with
the smollm2 profile's task and batch, fp32 vs ``train.precision: bf16`` (precision.Bf16Compute: the loss
forward and backward on bf16 copies, the LM head in fp32 at the completion tokens, fp32 sampling and master
weights), on 2 threads. ``bench_fast_path.py`` is the fuller comparison (three settings, the kv sampler).
Arms interleaved as above; the first step of each arm is warm-up and not counted. Printed: the
fp32 : bf16 step-time ratio (goal >= 2.5), and each arm's split of a step into generation, the
optimizer step and the rest (loss forward + backward + TRL's bookkeeping). Then agreement on one
batch: the batch TRL built at the fp32 arm's first step (its completions and advantages) is scored by
the fp32 loss and by the bf16 loss from the same base weights; the loss and the gradient must agree
within tolerances fixed before the first measurement (AGREEMENT below).

    python benchmarks/bench_training.py --smollm2 --quick                   # 4 steps x 2 rounds
    python benchmarks/bench_training.py --smollm2 --out reports/smollm2/bench_training.json
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def make_trainer(arm: str, steps: int, out: str):
    # rlvr_lowrank.models first: it sets the offline HF environment before trl imports transformers
    from rlvr_lowrank import models, paths
    from rlvr_lowrank.training import config, train
    from rlvr_lowrank.training.monitor import SpectralMonitor
    from rlvr_lowrank.training.pr1s import PeriodicRank1Callback
    from rlvr_lowrank.training.trajectory import TrajectoryRecorder

    # isort: split
    from trl import GRPOConfig, GRPOTrainer

    cfg = config.resolve("tiny", "full", 0, {"train": {"max_steps": steps}, "checkpoint_every": 0})
    torch.manual_seed(0)
    model, tok = models.load_model(paths.TINY_BASE)
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    kwargs = train.grpo_kwargs(cfg, Path(out), quiet=True)
    kwargs.update(save_strategy="no", log_level="error")
    callbacks = []
    if arm == "pr1s+rec":
        callbacks = [PeriodicRank1Callback(base_state=base, every=10, variant="trunc"),
                     TrajectoryRecorder(base_state=base, out_dir=f"{out}/trajectory", every=5, k=2)]
    elif arm == "monitor":
        callbacks = [SpectralMonitor(every=10, base_state=base)]
    trainer = GRPOTrainer(model=model, reward_funcs=train.reward_function(cfg), args=GRPOConfig(**kwargs),
                          train_dataset=train.train_dataset(cfg), processing_class=tok, callbacks=callbacks)
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer, callbacks


def callback_seconds(callbacks) -> float:
    total = 0.0
    for cb in callbacks:
        total += getattr(cb, "seconds", 0.0)
    return total


# Fixed before the first measurement: bf16 rounds to 8 significant bits (relative error ~0.4% per value).
# With beta = 0 and one update per batch the importance ratio is exactly 1, so the loss values must agree
# closely; the gradient is a sum over many bf16 products and gets a looser bound.
AGREEMENT = {"loss_atol": 1e-3, "loss_rtol": 1e-2, "grad_norm_rtol": 0.05, "grad_cosine_min": 0.99}


def within_tolerance(loss_ref: float, grad_ref, loss: float, grad, t: dict) -> bool:
    """Loss, gradient norm and gradient cosine of one batch against a reference, by tolerances ``t``
    (``loss_atol``, ``loss_rtol``, ``grad_norm_rtol``, ``grad_cosine_min``)."""
    cos = float(torch.nn.functional.cosine_similarity(grad, grad_ref, dim=0))
    return bool(abs(loss - loss_ref) <= t["loss_atol"] + t["loss_rtol"] * abs(loss_ref)
                and abs(float(grad.norm() / grad_ref.norm()) - 1) <= t["grad_norm_rtol"]
                and cos >= t["grad_cosine_min"])


class StepTimer:
    """Trainer callback: wall time of each optimizer step and of its optimizer.step() call."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self
        self.steps, self.optimizer = [], []

        class _Callback(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer._t0 = time.perf_counter()

            def on_pre_optimizer_step(self, args, state, control, **kw):
                timer._o0 = time.perf_counter()

            def on_optimizer_step(self, args, state, control, **kw):
                timer.optimizer.append(time.perf_counter() - timer._o0)

            def on_step_end(self, args, state, control, **kw):
                timer.steps.append(time.perf_counter() - timer._t0)

        self.callback = _Callback()


def smollm2_trainer(arm: str, base, tok, steps: int, out: str, capture: dict | None = None):
    """A GRPOTrainer (fp32) or train.FastGRPOTrainer (bf16) on a fresh copy of the base weights."""
    import copy

    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank.training import config, train

    cfg = config.resolve("smollm2", "full", 0, {"train": {"max_steps": steps, "precision": arm}})
    kwargs = train.grpo_kwargs(cfg, Path(out), quiet=True)
    kwargs.update(save_strategy="no", log_level="error", disable_tqdm=True)
    timer = StepTimer()

    class Capturing(GRPOTrainer):  # keeps the first batch TRL builds with a gradient (a non-zero advantage)
        def compute_loss(self, model, inputs, **kw):
            if capture is not None and bool(inputs["advantages"].abs().sum() > 0):
                capture.setdefault("inputs", inputs)
            return super().compute_loss(model, inputs, **kw)

    cls = train.FastGRPOTrainer if arm == "bf16" else Capturing
    model = copy.deepcopy(base)
    trainer = cls(model=model, reward_funcs=train.reward_function(cfg), args=GRPOConfig(**kwargs),
                  train_dataset=train.train_dataset(cfg), processing_class=tok, callbacks=[timer.callback])
    gen_calls: list[float] = []  # seconds of each generate call
    inner = model.generate

    def timed_generate(*a, **kw):
        t0 = time.perf_counter()
        out_ = inner(*a, **kw)
        gen_calls.append(time.perf_counter() - t0)
        return out_

    model.generate = timed_generate
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer, timer, gen_calls


def loss_and_gradient(trainer, inputs):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    if hasattr(trainer, "gradients_to_masters"):  # the fast path: its gradients land on bf16 copies first
        trainer.gradients_to_masters()
    grad = torch.cat([p.grad.detach().flatten().double() for p in trainer.model.parameters() if p.grad is not None])
    return float(loss.detach()), grad  # float64: a 135M-term dot product in float32 can leave the cosine above 1


def bench_smollm2(steps: int, repeats: int, out_path: str | None) -> None:
    import platform

    from rlvr_lowrank import fileio, models
    from rlvr_lowrank.training import precision

    torch.set_num_threads(2)
    feature = precision.cpu_bf16_feature()
    if feature is None:
        print("this CPU has no native bf16 (amx_bf16/avx512_bf16): nothing to compare; "
              "the bf16 path falls back to fp32")
        return
    t0 = time.perf_counter()
    base, tok = models.load_smollm2()
    print(f"SmolLM2-135M-Instruct (dequantized Q4_1 GGUF) loaded in {time.perf_counter() - t0:.1f} s; CPU {feature}",
          flush=True)
    arms = ["fp32", "bf16"]
    per = {a: {"step": [], "generation": [], "optimizer": []} for a in arms}
    capture: dict = {}
    for r in range(repeats):
        for arm in arms:
            with tempfile.TemporaryDirectory() as out:
                trainer, timer, gen_calls = smollm2_trainer(arm, base, tok, steps, out, capture if r == 0 else None)
                trainer.train()
            # one generation per step here (steps_per_generation = 1); step 1 is warm-up
            per[arm]["step"] += timer.steps[1:]
            per[arm]["generation"] += gen_calls[1:]
            per[arm]["optimizer"] += timer.optimizer[1:]
        print(f"round {r + 1}/{repeats}: " + ", ".join(
            f"{a} {statistics.median(per[a]['step']):.2f} s/step" for a in arms), flush=True)
    med = {a: {k: statistics.median(v) for k, v in per[a].items()} for a in arms}
    ratio = med["fp32"]["step"] / med["bf16"]["step"]
    print(f"\nGRPO on SmolLM2-135M-Instruct, {steps} steps x {repeats} rounds (first step of each not counted), "
          f"2 threads, median seconds per step:")
    for a in arms:
        m = med[a]
        rest = m["step"] - m["generation"] - m["optimizer"]
        print(f"  {a}: {m['step']:.2f} s = generation {m['generation']:.2f} + optimizer {m['optimizer']:.2f} "
              f"+ loss forward/backward and the rest {rest:.2f}")
    rest_ratio = (med["fp32"]["step"] - med["fp32"]["generation"]) / (med["bf16"]["step"] - med["bf16"]["generation"])
    print(f"  fp32 : bf16 step-time ratio {ratio:.2f} (goal >= 2.5); generation "
          f"{med['fp32']['generation'] / med['bf16']['generation']:.2f}x, rest "
          f"{rest_ratio:.2f}x")

    if "inputs" not in capture:
        print("  same batch: no fp32 step had a non-zero advantage (every group's rewards equal), so there is no "
              "gradient to compare; run more --steps")
        return
    with tempfile.TemporaryDirectory() as out:
        ref, _, _ = smollm2_trainer("fp32", base, tok, 1, out)
        fast, _, _ = smollm2_trainer("bf16", base, tok, 1, out)
        l32, g32 = loss_and_gradient(ref, capture["inputs"])
        l16, g16 = loss_and_gradient(fast, capture["inputs"])
    agree = {"loss_fp32": l32, "loss_bf16": l16,
             "grad_norm_fp32": float(g32.norm()), "grad_norm_bf16": float(g16.norm()),
             "grad_cosine": float(torch.nn.functional.cosine_similarity(g16, g32, dim=0))}
    t = AGREEMENT
    agree["within_tolerance"] = within_tolerance(l32, g32, l16, g16, t)
    print(f"  same batch: loss fp32 {l32:.6f} / bf16 {l16:.6f}; gradient norm {agree['grad_norm_fp32']:.4g} / "
          f"{agree['grad_norm_bf16']:.4g}; cosine {agree['grad_cosine']:.4f} -> "
          f"{'within' if agree['within_tolerance'] else 'OUTSIDE'} the tolerances {t}")
    if out_path:
        fileio.write_json(out_path, {"steps": steps, "repeats": repeats, "threads": 2, "cpu_bf16_feature": feature,
                                 "machine": platform.processor() or platform.machine(), "median_seconds": med,
                                 "ratio_fp32_to_bf16": ratio, "samples": per, "agreement": agree,
                                 "tolerances": AGREEMENT, "torch": torch.__version__})
        print(f"  written: {out_path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--smollm2", action="store_true", help="the SmolLM2 case: fp32 vs bf16 GRPO step time")
    ap.add_argument("--out", default=None, help="--smollm2: write the measurements to this JSON file")
    args = ap.parse_args()
    if args.smollm2:
        return bench_smollm2(args.steps or (4 if args.quick else 8),
                             args.repeats or 2 if args.quick else args.repeats or 3, args.out)
    steps = args.steps or (10 if args.quick else 30)
    repeats = args.repeats or (2 if args.quick else 3)
    torch.set_num_threads(1)  # as in the tiny profile (two runs share two cores)
    arms = ["plain", "pr1s+rec", "monitor"]
    times = {a: [] for a in arms}
    cb_secs = {a: [] for a in arms}
    for r in range(repeats):
        for arm in arms:
            with tempfile.TemporaryDirectory() as out:
                trainer, callbacks = make_trainer(arm, steps, out)
                t0 = time.perf_counter()
                trainer.train()
                times[arm].append((time.perf_counter() - t0) / steps)
                cb_secs[arm].append(callback_seconds(callbacks) / steps)
        print(f"round {r + 1}/{repeats}: " + ", ".join(f"{a} {times[a][-1]:.3f} s/step" for a in arms), flush=True)
    ref = statistics.median(times["plain"])
    print(f"\nGRPO on the tiny profile, {steps} steps x {repeats} rounds, 1 thread, median seconds per step:")
    for arm, target in (("pr1s+rec", 1.05), ("monitor", 1.05)):
        ratio = statistics.median(times[arm]) / ref
        own = statistics.median(cb_secs[arm]) / ref
        print(f"  {arm:<9} step-time ratio vs plain TRL: {ratio:.3f} (target <= {target}); "
              f"time inside the callbacks: {own:.1%} of a plain step")
    print(f"  plain TRL: {ref:.3f} s/step")


if __name__ == "__main__":
    main()
