"""torchrun worker for tests/test_sharded.py: PR1S, the trajectory recorder and the spectral monitor under real
torch FSDP2 (torch.distributed.fsdp.fully_shard, gloo on CPU), in a plain training loop on the shipped tiny
model (data/models/tiny-base).

Why a plain loop and not TRL's GRPOTrainer: accelerate (1.15) applies its FSDP config only on accelerator
devices; with the CPU settings the Trainer needs here (use_cpu=True) AcceleratorState never sets
DistributedType.FSDP and the model is wrapped in DDP instead (docs/sharded_training.md).

    torchrun --nproc_per_node 2 tests/fsdp2_worker.py <phase> [<phase> ...] --out DIR

Phases (run in the order given, in one process group):
  layout    bad input: a 2-D mesh, a Shard(1) layout and FSDP1 are refused (by name);
            optimizer_state="reset" under FSDP2
  equiv     recorder + monitor outputs on FSDP2-sharded, perturbed weights (rank 0 writes; compared by the test)
  full      8 steps, PR1S every 2, uninterrupted; DONE only if the ranks agree
  part      the same run, checkpointed (torch.distributed.checkpoint) at step 4, stopped after step 5
  resume    the interrupted run resumed from its step-4 checkpoint in a fresh process group, to step 8
  disagree  rank 1 computes a different substitute (fault injection): the run must stop, no DONE
Every rank writes <out>/<run>/rank<r>.json; rank 0 writes <out>/<run>/DONE.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist

from rlvr_lowrank import models, paths
from rlvr_lowrank.analysis import rank1, targets
from rlvr_lowrank.models import sharding
from rlvr_lowrank.training import pr1s

STEPS, EVERY, CKPT_AT, STOP_AFTER = 8, 2, 4, 5
LR = 1e-2  # large enough that σ1 of ΔW is ~1e7 x the fp32 rounding noise of W (the rank-1 check needs it)


def perturbed(seed: int = 0):
    """The tiny base model and a 'trained' copy: every target moved by a seeded rank-3 + small dense update."""
    base, _ = models.load_model(paths.TINY_BASE)
    trained, _ = models.load_model(paths.TINY_BASE)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if targets.is_target(name, p.ndim):
                m, n = p.shape
                low = torch.randn(m, 3, generator=g) @ (torch.randn(3, n, generator=g)
                                                        * torch.tensor([[3.0], [1.0], [0.5]]))
                p.add_(1e-3 * low + 1e-4 * torch.randn(m, n, generator=g))
    return base, trained


def shard(model, mesh, placement_fn=None):
    from torch.distributed.fsdp import fully_shard

    kw = {"shard_placement_fn": placement_fn} if placement_fn is not None else {}
    for layer in model.model.layers:
        fully_shard(layer, mesh=mesh, **kw)
    fully_shard(model, mesh=mesh, **kw)
    return model


def mesh1d():
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh("cpu", (dist.get_world_size(),))


def write(out: Path, name: str, obj) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(obj, indent=1, sort_keys=True))


# ---------------------------------------------------------------------------------------------------------

def phase_layout(out: Path) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard

    res = {}
    base, _ = models.load_model(paths.TINY_BASE)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    # a 2-D mesh (HSDP: replicate over dim 0, shard over dim 1), as fully_shard builds it
    m2 = init_device_mesh("cpu", (1, dist.get_world_size()), mesh_dim_names=("replicate", "shard"))
    model = shard(models.load_model(paths.TINY_BASE)[0], m2)
    try:
        pr1s.PeriodicRank1Callback(base_state, every=1).substitute(model, None, step=1)
        res["mesh2d"] = "accepted"
    except sharding.ShardingError as e:
        res["mesh2d"] = str(e)
    # rows are not what FSDP2 shards here: Shard(1) through fully_shard's shard_placement_fn
    model = shard(models.load_model(paths.TINY_BASE)[0], mesh1d(),
                  placement_fn=lambda p: Shard(1) if p.ndim == 2 else Shard(0))
    try:
        pr1s.PeriodicRank1Callback(base_state, every=1).substitute(model, None, step=1)
        res["shard1"] = "accepted"
    except sharding.ShardingError as e:
        res["shard1"] = str(e)
    # FSDP1 (flat parameters, no per-matrix view): refused, with the fix
    from torch.distributed.fsdp import FullyShardedDataParallel

    model = FullyShardedDataParallel(models.load_model(paths.TINY_BASE)[0], device_id=torch.device("cpu"),
                                     use_orig_params=True)
    try:
        pr1s.PeriodicRank1Callback(base_state, every=1).substitute(model, None, step=1)
        res["fsdp1"] = "accepted"
    except NotImplementedError as e:
        res["fsdp1"] = str(e)
    del model
    # optimizer_state="reset": the (sharded DTensor) Adam moments of every target are dropped, the others kept
    model = shard(models.load_model(paths.TINY_BASE)[0], mesh1d())
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    train_step(model, opt, 1)
    cb = pr1s.PeriodicRank1Callback(base_state, every=1, optimizer_state="reset")
    cb.substitute(model, opt, step=1, write_log=False)
    named = dict(model.named_parameters())
    res["reset_targets_without_state"] = sum(named[n] not in opt.state for n in cb.base_state)
    res["reset_non_targets_with_state"] = sum(p in opt.state for n, p in named.items() if n not in cb.base_state)
    res["n_targets"] = len(cb.base_state)
    res["moment_type"] = type(next(iter(opt.state.values()))["exp_avg"]).__name__
    train_step(model, opt, 2)  # Adam re-initialises the dropped entries lazily
    res["after_next_step_with_state"] = sum(named[n] in opt.state for n in cb.base_state)
    write(out / "layout", f"rank{dist.get_rank()}.json", res)


def phase_equiv(out: Path) -> None:
    from rlvr_lowrank.training.monitor import SpectralMonitor
    from rlvr_lowrank.training.trajectory import TrajectoryRecorder

    base, trained = perturbed()
    base_state = {k: v.clone() for k, v in base.state_dict().items()}
    shard(trained, mesh1d())
    placements = {n: str(tuple(p.placements)) for n, p in trained.named_parameters() if targets.is_target(n, p.ndim)}
    assert all(pl == "(Shard(dim=0),)" for pl in placements.values()), placements
    d = out / "equiv" / f"rank{dist.get_rank()}"
    rec = TrajectoryRecorder(base_state, d / "trajectory", every=1, k=2, factor_dtype="float32")
    rec.record(trained, 7)
    mon = SpectralMonitor(every=1, log_path=d / "monitor.jsonl", base_state=base_state)
    st = SimpleNamespace(global_step=7, max_steps=7, log_history=[])
    mon.on_step_end(None, st, None, model=trained)
    write(out / "equiv", f"rank{dist.get_rank()}.json", {"records": mon.records})


# ---------------------------------------------------------------------------------------------------------

def batch(step: int):
    # data parallel: every rank its own seeded batch (the same on a rerun, so a resumed run sees the same data)
    g = torch.Generator().manual_seed(1000 * step + dist.get_rank())
    return torch.randint(3, 50, (2, 24), generator=g)


def train_step(model, opt, step: int) -> float:
    ids = batch(step)
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return float(loss)


def ckpt_state(model, opt):
    from torch.distributed.checkpoint.state_dict import get_state_dict

    msd, osd = get_state_dict(model, opt)
    return {"model": msd, "optim": osd}


def check_after_substitution(model, base_state: dict) -> tuple[float, str]:
    """Max over targets of σ2/σ1 of the gathered ΔW (fp64), and a digest of all gathered weights (every rank)."""
    import hashlib

    worst, h = 0.0, hashlib.sha256()
    for name, p in model.named_parameters():
        full = sharding.full_weight(p)  # collective, same order on every rank
        h.update(name.encode() + sharding.digest(full).encode())
        if name in base_state and targets.is_target(name, p.ndim):
            s = torch.linalg.svdvals(full.double() - base_state[name].double())
            worst = max(worst, float(s[1] / s[0]))
    return worst, h.hexdigest()[:16]


def phase_run(out: Path, run: str, resume: bool = False, stop_after: int | None = None, fault: bool = False) -> None:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_state_dict

    t0 = time.perf_counter()
    rdir = out / run
    torch.manual_seed(0)
    model, _ = models.load_model(paths.TINY_BASE)
    base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    shard(model, mesh1d())
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    cb = pr1s.PeriodicRank1Callback(base_state, every=EVERY, variant="trunc",
                                     log_path=rdir / "substitutions.jsonl")
    if fault and dist.get_rank() == 1:
        # Fault injection: rank 1's substitute differs by 1e-6 (what nondeterministic kernels or different
        # hardware could produce). Shards would silently mix two different matrices without the check.
        real = rank1.substitute_update
        rank1.substitute_update = lambda dW, *a, **k: (lambda R, d: (R + 1e-6, d))(*real(dW, *a, **k))
    start = 1
    if resume:
        ck = rdir / "checkpoints" / f"step-{CKPT_AT}"
        if not (ck / "COMMITTED").exists():
            raise FileNotFoundError(f"no committed checkpoint at {ck}")
        state = ckpt_state(model, opt)
        dcp.load(state, checkpoint_id=str(ck))
        set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
        start = json.loads((ck / "COMMITTED").read_text())["step"] + 1
    log = {"start": start, "ratios": {}, "digests": {}, "losses": {}}
    args, control = SimpleNamespace(), SimpleNamespace()
    for step in range(start, STEPS + 1):
        log["losses"][step] = train_step(model, opt, step)
        st = SimpleNamespace(global_step=step, max_steps=STEPS, is_world_process_zero=dist.get_rank() == 0)
        cb.on_step_end(args, st, control, model=model, optimizer=opt)  # the Trainer hook, substitutes at step % 2 == 0
        if step % EVERY == 0:
            log["ratios"][step], log["digests"][step] = check_after_substitution(model, base_state)
        if step == CKPT_AT and not resume:
            ck = rdir / "checkpoints" / f"step-{step}"
            dcp.save(ckpt_state(model, opt), checkpoint_id=str(ck))
            dist.barrier()
            if dist.get_rank() == 0:  # written after every rank's shards: a checkpoint without it is incomplete
                (ck / "COMMITTED").write_text(json.dumps({"step": step}))
        if stop_after is not None and step == stop_after:
            break
    log["seconds"] = time.perf_counter() - t0
    _, final = check_after_substitution(model, base_state)
    log["final_digest"] = final
    write(rdir, f"rank{dist.get_rank()}.json", log)
    if stop_after is not None:
        return  # interrupted: no DONE
    sharding.assert_ranks_agree(run, torch.tensor(list(final.encode())), "final weights")  # raises: no DONE
    if dist.get_rank() == 0:
        write(rdir, "DONE", {"steps": STEPS, "processes": dist.get_world_size(), "final_digest": final})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phases", nargs="+", choices=["layout", "equiv", "full", "part", "resume", "disagree"])
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        for ph in a.phases:
            if ph == "layout":
                phase_layout(a.out)
            elif ph == "equiv":
                phase_equiv(a.out)
            elif ph == "full":
                phase_run(a.out, "full")
            elif ph == "part":
                phase_run(a.out, "interrupted", stop_after=STOP_AFTER)
            elif ph == "resume":
                phase_run(a.out, "interrupted", resume=True)
            elif ph == "disagree":
                phase_run(a.out, "disagree", fault=True)
            dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
