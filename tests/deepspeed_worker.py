"""torchrun worker for the optional DeepSpeed check (tests/test_sharded.py, skipped unless deepspeed imports):
PR1S on the tiny model under a real DeepSpeed ZeRO engine on CPU (DS_ACCELERATOR=cpu, gloo, torch AdamW).

    DS_ACCELERATOR=cpu torchrun --nproc_per_node 2 tests/deepspeed_worker.py --stage 2 --out DIR

It first shows why the fp32 master matters (a plain in-place edit of the module parameter is overwritten at
the next step, deepspeedai/DeepSpeed#2424), then runs 6 steps with PR1S every 2 and checks, after each substitution,
that ΔW of the fp32 master is rank 1 (σ2/σ1 < 1e-6), that the module copy equals it and the ranks agree.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist

from rlvr_lowrank import models, paths
from rlvr_lowrank.models import sharding
from rlvr_lowrank.training import pr1s


def main() -> None:
    import deepspeed

    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--bf16", action="store_true", help="bf16 module weights, fp32 master (the GPU setting)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    deepspeed.init_distributed(dist_backend="gloo")
    torch.manual_seed(0)
    model, _ = models.load_model(paths.TINY_BASE)
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg = {"train_micro_batch_size_per_gpu": 2, "gradient_accumulation_steps": 1, "zero_allow_untested_optimizer": True,
           "zero_optimization": {"stage": a.stage, "overlap_comm": False, "contiguous_gradients": False,
                                 "reduce_bucket_size": 10**8, "allgather_bucket_size": 10**8},
           "steps_per_print": 10**9, "wall_clock_breakdown": False, "bf16": {"enabled": a.bf16}}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    engine, opt, _, _ = deepspeed.initialize(model=model, optimizer=opt, config=cfg)
    rank = dist.get_rank()

    def step(i):
        g = torch.Generator().manual_seed(1000 * i + rank)
        ids = torch.randint(3, 50, (2, 24), generator=g)
        loss = engine(input_ids=ids, labels=ids).loss
        engine.backward(loss)
        engine.step()

    name = "model.layers.0.mlp.down_proj.weight"
    p = dict(engine.module.named_parameters())[name]
    res = {"stage": a.stage, "bf16": a.bf16, "module_dtype": str(p.dtype), "linked": sharding.is_deepspeed_param(p),
           "strategy": sharding.detect(engine)}
    # 1. what goes wrong without the master: edit the module copy only, take one step, look again
    step(0)
    before = sharding.full_weight(p).clone()
    if a.stage < 3:
        with torch.no_grad():
            p.data.add_(1.0)
        step(100)
        # the module copy after the step: refreshed from the fp32 master, which never saw the +1.0
        res["plain_edit_survives_step"] = bool((p.detach().float() - before).abs().mean() > 0.5)
    # 2. PR1S through the fp32 master
    cb = pr1s.PeriodicRank1Callback(base_state, every=2, variant="trunc")
    base_now = {n: sharding.full_weight(q).float().clone() for n, q in engine.module.named_parameters()}
    cb.base_state = {n: base_now[n].cpu() for n in cb.base_state}  # anchor = weights after step 1
    ratios = {}
    for i in range(1, 7):
        step(i)
        cb.on_step_end(SimpleNamespace(), SimpleNamespace(global_step=i, is_world_process_zero=rank == 0), None,
                       model=engine, optimizer=opt)
        if i % 2 == 0:
            worst = 0.0
            for n, q in engine.module.named_parameters():
                if n in cb.base_state:
                    full = sharding.full_weight(q).double()
                    s = torch.linalg.svdvals(full - cb.base_state[n].double())
                    worst = max(worst, float(s[1] / s[0]))
            ratios[i] = worst
            sharding.assert_ranks_agree("master", sharding.full_weight(p), "fp32 master after substitution")
    res["ratios"] = ratios
    master = sharding.full_weight(p)  # the module copy the next forward uses must be the master, rounded
    if a.stage < 3:
        res["module_equals_master"] = bool(torch.equal(p.detach(), master.to(p.dtype)))
    else:
        with deepspeed.zero.GatheredParameters([p]):
            res["module_equals_master"] = bool(torch.equal(p.detach(), master.to(p.dtype)))
    (a.out).mkdir(parents=True, exist_ok=True)
    (a.out / f"zero{a.stage}{'_bf16' if a.bf16 else ''}_rank{rank}.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
