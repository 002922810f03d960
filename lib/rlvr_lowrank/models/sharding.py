"""Access to one full weight matrix, whatever the training strategy: plain, DDP, FSDP2 or DeepSpeed ZeRO.

The rank-1 callbacks (PR1S, the trajectory recorder, the spectral monitor) need the FULL matrix W of a
target parameter, and PR1S must write a full matrix back. How that is done depends on who owns the weights:

  plain / DDP   every process holds the whole parameter: read it, copy_ into it.
  FSDP2         (torch.distributed.fsdp.fully_shard) the parameter is a DTensor whose local tensor is one
                shard. Reading = all-gather (DTensor.full_tensor(), a collective: EVERY rank must call it,
                for the same parameters in the same order). Writing = cut the new full matrix into the
                same layout (distribute_tensor with the parameter's mesh and placements) and copy_ the
                local shard in place, so the Parameter object (which the optimizer and FSDP's hooks hold)
                never changes.
  DeepSpeed     the optimizer keeps fp32 master weights and overwrites the module's (bf16/fp16) parameters
                from them at every step (deepspeedai/DeepSpeed#2424, #3959), so an edit of the module parameter
                alone is undone one step later. Reading/writing goes through DeepSpeed's public API,
                deepspeed.utils.safe_get_full_fp32_param / safe_set_full_fp32_param (collective under
                ZeRO-3), and the module copy is refreshed as well (under ZeRO-3 inside
                deepspeed.zero.GatheredParameters, where the local tensor otherwise has size 0).
                Tested with real ZeRO-2 (bf16) and ZeRO-3 engines on 2 CPU processes (DS_ACCELERATOR=cpu)
                where deepspeed is installed (requirements-deepspeed.txt); the default environment does
                not install it, and there those tests are skipped.

One matrix at a time: the callers loop over the target matrices and gather/write each in turn, so the peak
extra memory is one full matrix (plus what the caller computes from it), never the whole model.

Supported FSDP2 layouts: a 1-D device mesh with Shard(0) (FSDP's default) or Replicate(). Anything else
(HSDP or FSDP+TP 2-D meshes, Shard(1), _StridedShard, Partial) is refused by `check_layout` with the
parameter's name and placements: the write path would silently scramble or double-count such a layout.
FSDP1 (FullyShardedDataParallel, flat parameters) is refused by `detect`.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import Iterator, Mapping

import torch


class ShardingError(ValueError):
    """A parameter or model is laid out in a way the full-weight access does not handle."""


class RankDisagreementError(RuntimeError):
    """The processes hold (or computed) different values where they must agree."""


# ----------------------------------------------------------------------------------------------
# process group and parameter kinds
# ----------------------------------------------------------------------------------------------

def _dist_on() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world_size() -> int:
    return torch.distributed.get_world_size() if _dist_on() else 1


def rank() -> int:
    return torch.distributed.get_rank() if _dist_on() else 0


def is_dtensor(t) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(t, DTensor)


def is_deepspeed_param(p) -> bool:
    """A parameter managed by a DeepSpeed ZeRO optimizer: ZeRO-3 partitioned (ds_id) or ZeRO-1/2 linked
    to an fp32 master partition (the _hp_mapping attribute, set by DeepSpeed when the engine is built).

    The attribute's presence is what counts, not its value: on a rank that owns no fragment of this
    parameter it is None, yet that rank must still join the all-reduce in safe_get_full_fp32_param (testing
    `is not None` deadlocked a 2-process ZeRO-2 run with a collective size mismatch)."""
    return hasattr(p, "ds_id") or hasattr(p, "_hp_mapping")


def is_sharded(state_or_params) -> bool:
    """True when any tensor of a state dict / parameter iterable is a DTensor or a DeepSpeed parameter:
    then reading a full weight is a collective and every rank must take part."""
    values = state_or_params.values() if isinstance(state_or_params, Mapping) else state_or_params
    return any(is_dtensor(v) or is_deepspeed_param(v) for v in values)


def detect(model: torch.nn.Module, trainer=None) -> str:
    """The training strategy of `model`: "plain", "ddp", "fsdp2" or "deepspeed".

    Raises ShardingError for FSDP1 (FullyShardedDataParallel flattens parameters; there is no per-matrix
    view to gather and write back), with the fix: fsdp_version: 2 in the accelerate config.
    """
    mro = {c.__name__ for c in type(model).__mro__}
    if "FullyShardedDataParallel" in mro or any(type(m).__name__ == "FullyShardedDataParallel"
                                                for m in model.modules()):
        raise ShardingError("the model is wrapped by FSDP1 (FullyShardedDataParallel, flat parameters); the rank-1 "
                            "callbacks support FSDP2 only: set fsdp_version: 2 in the accelerate config "
                            "(or use torch.distributed.fsdp.fully_shard)")
    if "DeepSpeedEngine" in mro or (trainer is not None and getattr(trainer, "is_deepspeed_enabled", False)):
        return "deepspeed"
    params = list(model.parameters())
    if any(is_dtensor(p) for p in params):
        return "fsdp2"
    if any(is_deepspeed_param(p) for p in params):
        return "deepspeed"
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
        # accelerate only honours its FSDP config for accelerator devices; with use_cpu=True it builds a DDP
        # model instead (AcceleratorState sets DistributedType.FSDP only for MULTI_GPU-like types). The
        # results are still correct (DDP path), but the memory saving the user asked for is not there.
        warnings.warn("ACCELERATE_USE_FSDP=true but no parameter is a DTensor: the model is NOT sharded "
                      "(accelerate falls back to DDP on CPU); the callbacks use the DDP path", stacklevel=2)
    return "ddp" if world_size() > 1 else "plain"


def check_layout(name: str, p, strategy: str | None = None) -> None:
    """Refuse a target parameter whose sharding the write path does not handle (ShardingError naming it).

    Plain tensors and DeepSpeed parameters pass (DeepSpeed's API hides its partitioning), except a plain
    tensor under strategy "deepspeed": it is not linked to an fp32 master, so a write would be undone at the
    next step. A DTensor must live on a 1-D device mesh with placements (Shard(0),) or (Replicate(),).
    """
    if strategy == "deepspeed" and not is_deepspeed_param(p):
        raise ShardingError(
            f"target parameter {name!r}: the model runs under DeepSpeed but the parameter has no ds_id / _hp_mapping "
            "(it is not linked to DeepSpeed's fp32 master weights), so an in-place write would be overwritten at the "
            "next optimizer step (deepspeedai/DeepSpeed#2424). Call the callback after deepspeed.initialize, with the "
            "engine's module")
    if not is_dtensor(p):
        return
    from torch.distributed.tensor import Replicate, Shard

    mesh = p.device_mesh
    if mesh.ndim != 1:
        raise ShardingError(
            f"target parameter {name!r} is a DTensor on a {mesh.ndim}-D device mesh (shape {tuple(mesh.shape)}, "
            f"dims {mesh.mesh_dim_names}, placements {tuple(p.placements)}): the rank-1 callbacks support a 1-D "
            "mesh only (plain FSDP2 over all processes). HSDP / FSDP+TP meshes are not supported; shard over a "
            "1-D mesh, or leave the callback out")
    pl = tuple(p.placements)
    if pl not in ((Shard(0),), (Replicate(),)):
        raise ShardingError(
            f"target parameter {name!r} has placements {pl} on the 1-D mesh; the rank-1 callbacks expect "
            "(Shard(dim=0),) (FSDP2's default row sharding) or (Replicate(),). Shard the matrix along dim 0 "
            "(fully_shard's default shard_placement_fn) or leave the callback out")


# ----------------------------------------------------------------------------------------------
# read and write one full matrix
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def full_weight(p) -> torch.Tensor:
    """The full value of parameter (or state-dict tensor) `p`, detached.

    plain/DDP: the tensor itself (no copy; do not modify it). FSDP2: an all-gathered copy, same dtype
    (collective). DeepSpeed: the fp32 master weight (safe_get_full_fp32_param; collective under ZeRO-3).
    """
    if is_dtensor(p):
        return p.detach().full_tensor()
    if is_deepspeed_param(p):
        safe_get_full_fp32_param = _deepspeed().utils.safe_get_full_fp32_param
        value = safe_get_full_fp32_param(p)
        if value is None:  # the API returns None for a parameter it does not manage: never guess
            raise ShardingError("deepspeed.utils.safe_get_full_fp32_param returned None for a DeepSpeed "
                                f"parameter of shape {tuple(getattr(p, 'ds_shape', p.shape))}")
        return value.detach()
    return p.detach()


@torch.no_grad()
def write_full_weight(p, new: torch.Tensor) -> None:
    """Write the full matrix `new` into parameter `p` in place (same Parameter object; cast to its dtype).

    FSDP2: every rank cuts its own shard out of its own `new` (distribute_tensor with src_data_rank=None:
    no communication), so all ranks must pass the same `new`; check that first with assert_ranks_agree.
    DeepSpeed: the fp32 master (safe_set_full_fp32_param, on every rank) and the module copy used by the
    next forward.
    """
    shape = tuple(getattr(p, "ds_shape", p.shape))  # a ZeRO-3 parameter's own shape can be its empty partition
    if tuple(new.shape) != shape:
        raise ShardingError(f"write_full_weight: new value has shape {tuple(new.shape)}, parameter {shape}")
    if is_dtensor(p):
        from torch.distributed.tensor import distribute_tensor

        # .detach(): distribute_tensor refuses a non-leaf tensor; the cast happens before the cut so that
        # every shard is rounded exactly like the unsharded parameter would be.
        local = distribute_tensor(new.detach().to(device=p.device, dtype=p.dtype).contiguous(), p.device_mesh,
                                  p.placements, src_data_rank=None)
        p.copy_(local)
        return
    if is_deepspeed_param(p):
        _write_deepspeed(p, new)
        return
    p.copy_(new.detach().to(device=p.device, dtype=p.dtype))


def _deepspeed():
    try:
        import deepspeed
        import deepspeed.utils  # noqa: F401
    except ImportError as e:  # a ZeRO parameter without an importable deepspeed: never skip silently
        raise ShardingError(f"a parameter carries DeepSpeed ZeRO attributes (ds_id / _hp_mapping) but deepspeed "
                            f"cannot be imported ({e}); install it (pip install -r requirements-deepspeed.txt)") from e
    return deepspeed


def _write_deepspeed(p, new: torch.Tensor) -> None:
    # DeepSpeed's documented API (deepspeed.utils "Modifying Partitioned States"); huggingface/trl#1971: an
    # in-place edit of a ZeRO-3 parameter outside GatheredParameters hits a size-0 tensor. Checked by
    # tests/deepspeed_worker.py (skipped without deepspeed).
    deepspeed = _deepspeed()
    safe_set_full_fp32_param = deepspeed.utils.safe_set_full_fp32_param
    value = new.detach().float().contiguous()
    safe_set_full_fp32_param(p, value)  # every rank sets its partition of the fp32 master
    if hasattr(p, "ds_id"):  # ZeRO-3: the module copy is partitioned too; gather, write on rank 0, re-partition
        with deepspeed.zero.GatheredParameters([p], modifier_rank=0):
            if rank() == 0:
                p.data.copy_(value.to(device=p.device, dtype=p.dtype))
    else:  # ZeRO-1/2: every rank holds the full low-precision copy the next forward reads
        p.data.copy_(value.to(device=p.device, dtype=p.dtype))


def reset_optimizer_state(optimizer, p) -> None:
    """Drop the optimizer state of one parameter so Adam re-initialises it lazily (step = 0).

    plain/DDP/FSDP2: optimizer.state is keyed by the Parameter object (under FSDP2 the DTensor, whose
    moments are sharded DTensors too), so pop works unchanged. DeepSpeed keeps flat fp32 partitions with
    one step count per group: a per-parameter lazy re-init does not exist there, and zeroing the moments
    while keeping the step count would inflate the next update, so this is refused rather than approximated.
    """
    if is_deepspeed_param(p):
        raise NotImplementedError("optimizer_state='reset' is not available under DeepSpeed (flat fp32 partitions, "
                                  "one step count per parameter group); use optimizer_state='keep'")
    optimizer.state.pop(p, None)


class FullView(Mapping):
    """A read-only view of a state dict whose items are full tensors, gathered one at a time on access.

    Lets code written for full state dicts (trajectory.snapshot, the spectral monitor) run unchanged on a
    sharded model while holding only one gathered matrix at a time. Under FSDP2 each access is a collective:
    every rank must access the same keys in the same order.
    """

    def __init__(self, state: Mapping[str, torch.Tensor]):
        self._state = state

    def __getitem__(self, key: str) -> torch.Tensor:
        return full_weight(self._state[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._state)

    def __len__(self) -> int:
        return len(self._state)


# ----------------------------------------------------------------------------------------------
# cross-rank agreement
# ----------------------------------------------------------------------------------------------

def digest(t: torch.Tensor) -> str:
    """sha256 (hex, first 16 digits) of a tensor's dtype, shape and bytes: equal iff bitwise equal."""
    t = t.detach().contiguous().cpu()
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    if t.numel():
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))  # the tensor's own bytes, no copy
    return h.hexdigest()[:16]


def assert_ranks_agree(name: str, t: torch.Tensor, what: str = "value") -> str:
    """Raise RankDisagreementError unless every process holds a bitwise-identical `t` (collective).

    Returns the digest. One all_gather_object of a 16-character string per call: negligible next to the
    gather and SVD of the matrix itself.
    """
    d = digest(t)
    if world_size() == 1:
        return d
    digests = [None] * world_size()
    torch.distributed.all_gather_object(digests, d)
    if len(set(digests)) != 1:
        raise RankDisagreementError(
            f"{name}: the {len(digests)} processes disagree on the {what} (sha256 prefixes by rank: {digests}). "
            "They must compute bitwise-identical results from identical inputs (same hardware, libraries and "
            "seeds); the run is stopped rather than continued with inconsistent weights")
    return d
