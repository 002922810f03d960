"""Benchmark the cost of our callbacks inside TRL's GRPOTrainer, side by side in one process.

Arms (same model, data, seed and GRPOConfig as the tiny profile; only the callbacks differ):
  plain     TRL GRPO, no callback of ours (the reference)
  pr1s+rec  PeriodicRank1Callback (truncated, K = 10) + TrajectoryRecorder (every 5 steps, k = 2)
            -- target: step-time ratio <= 1.05 (PR1S and the recorder must not change what a run costs)
  monitor   SpectralMonitor (every 10 steps) -- target: overhead <= 5% of step time
(all three callbacks live in rlvr_lowrank.callbacks)

Each arm trains ``--steps`` optimizer steps; arms are interleaved over ``--repeats`` rounds (ABCABC...)
so slow drifts of a noisy machine hit every arm alike, and the ratio of median per-round times is
printed (absolute times are not stable here, ratios are). The callbacks' own measured seconds are
printed too: the overhead they add is that time, whatever the noise in the total.

    python benchmarks/bench_training.py --quick      # 10 steps x 2 rounds
    python benchmarks/bench_training.py              # 30 steps x 3 rounds
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from pathlib import Path

import torch


def make_trainer(arm: str, steps: int, out: str):
    from trl import GRPOConfig, GRPOTrainer

    from rlvr_lowrank import config, models, paths, train
    from rlvr_lowrank.callbacks import PeriodicRank1Callback, SpectralMonitor, TrajectoryRecorder

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
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
