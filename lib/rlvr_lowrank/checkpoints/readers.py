"""Reading checkpoints tensor by tensor: the reader interface, Hugging Face safetensors directories (single or
sharded, a run directory of this project included through ``opening``) and in-memory tensors.

A researcher's checkpoints are usually Hugging Face model directories with (sharded) bf16 safetensors. A reader
never loads a whole model: it opens every shard with ``safetensors.safe_open`` (memory-mapped) and hands out one
tensor at a time, so the resident memory of a walk over a pair of 7B models is a few tensors, not two models.
GGUF files and PEFT adapters are read by ``foreign``; :func:`opening.open_checkpoint` picks the reader for a path.

Every error is a :class:`CheckpointError` that names the file or tensor and the fix.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping

import torch

from .dtypes import SAFETENSORS_DTYPES

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
CHUNK_ELEMS = 1 << 24  # rows per block when copying a non-target tensor: 16 M elements (32 MB in bf16)
BIN_HINT = ("convert it to safetensors once with: python -c \"from transformers import AutoModelForCausalLM as M; "
            "M.from_pretrained('DIR').save_pretrained('DIR-st', safe_serialization=True)\" (this project never "
            "unpickles weights)")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as is; the message names the file or tensor and the fix."""


class Checkpoint:
    """Read-only, tensor-by-tensor view of a model. Subclasses fill the attributes below."""

    path: Path
    kind: str
    config: dict            # config.json as a dict ({} when there is none)
    side_dir: Path | None   # where tokenizer / generation config live (copied by the writer)
    weight_map: dict        # {tensor name: shard file name} (the layout a writer can reproduce)

    def names(self) -> list[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, ...]:
        raise NotImplementedError

    def dtype(self, name: str) -> torch.dtype:
        raise NotImplementedError

    def get(self, name: str) -> torch.Tensor:
        """One tensor in its stored dtype, checked finite (CheckpointError naming it otherwise)."""
        t = self._get(name)
        self._check_finite(name, t)
        return t

    def _check_finite(self, name: str, t: torch.Tensor) -> None:
        if not torch.is_floating_point(t) or t.ndim == 0:
            if torch.is_floating_point(t) and not bool(torch.isfinite(t)):
                raise CheckpointError(f"{self.path}: tensor {name!r} contains NaN or Inf")
            return
        for part in t.split(max(1, CHUNK_ELEMS // max(1, t[0].numel())), dim=0):  # no full-size bool mask
            if not bool(torch.isfinite(part).all()):
                raise CheckpointError(f"{self.path}: tensor {name!r} contains NaN or Inf; the checkpoint is "
                                      "corrupt (re-export it from the training run)")

    def chunks(self, name: str):
        """The tensor as consecutive row blocks of <= CHUNK_ELEMS elements, each checked finite: the way to copy
        a large non-target tensor (a 7B embedding is 1 GB in bf16) without holding it whole."""
        t = self._get(name)
        if t.ndim == 0:
            self._check_finite(name, t)
            yield t
            return
        for part in t.split(max(1, CHUNK_ELEMS // max(1, t[0].numel())), dim=0):
            self._check_finite(name, part)
            yield part

    def _get(self, name: str) -> torch.Tensor:
        raise NotImplementedError

    def dtypes(self) -> set[torch.dtype]:
        return {self.dtype(n) for n in self.names()}

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, {len(self.names())} tensors)"


def refuse_pickles(d: Path) -> None:
    bins = sorted(p.name for p in d.glob("*.bin")) + sorted(p.name for p in d.glob("*.pt")) + \
        sorted(p.name for p in d.glob("*.pth"))
    if bins:
        raise CheckpointError(f"{d} holds pickle weights ({bins[0]}) and no safetensors; "
                              f"{BIN_HINT.replace('DIR', str(d))}")


class HFCheckpoint(Checkpoint):
    """A Hugging Face directory (single file or sharded) read through memory-mapped ``safe_open`` handles."""

    kind = "hf"

    def __init__(self, path: str | os.PathLike, config_dir: str | os.PathLike | None = None,
                 weights: str | os.PathLike | None = None):
        self.path = Path(path)
        d = self.path
        if not d.is_dir():
            raise CheckpointError(f"{d} does not exist or is not a directory; give a Hugging Face model directory "
                                  "(config.json + *.safetensors), a .gguf file or a PEFT adapter directory")
        index, single = d / INDEX_NAME, d / SINGLE_NAME
        if weights is not None:
            files = {Path(weights).name: Path(weights)}
            self._weight_map = None
        elif index.exists():
            try:
                wm = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise CheckpointError(f"{index} is not a valid safetensors index ({e}); re-save the model with "
                                      "save_pretrained") from e
            files = {f: d / f for f in dict.fromkeys(wm.values())}
            for f, p in files.items():
                if not p.exists():
                    first = next(k for k, v in wm.items() if v == f)
                    raise CheckpointError(f"{index} names shard {f!r} (for tensor {first!r}) but {p} is missing; "
                                          "copy the missing shard (the download or copy was incomplete)")
            self._weight_map = dict(wm)
        elif single.exists():
            files = {SINGLE_NAME: single}
            self._weight_map = None
        else:
            refuse_pickles(d)
            raise CheckpointError(f"{d} has neither {SINGLE_NAME} nor {INDEX_NAME}; save the model with "
                                  "save_pretrained(dir, safe_serialization=True)")
        from safetensors import safe_open

        self._handles, self._where, self._shapes, self._dtypes = {}, {}, {}, {}
        for fname, p in files.items():
            try:
                h = safe_open(str(p), framework="pt")
                keys = list(h.keys())
            except Exception as e:  # truncated header / body: safetensors raises SafetensorError or OSError
                raise CheckpointError(f"shard {p} is truncated or not a safetensors file ({e}); copy it again") from e
            size = p.stat().st_size
            self._handles[fname] = p  # the path: a mapping is opened per tensor (see _open)
            for k in keys:
                sl = h.get_slice(k)
                self._where[k] = fname
                self._shapes[k] = tuple(sl.get_shape())
                dt = sl.get_dtype()
                if dt not in SAFETENSORS_DTYPES:
                    raise CheckpointError(f"{p}: tensor {k!r} has dtype {dt}, which this tool does not handle")
                self._dtypes[k] = SAFETENSORS_DTYPES[dt]
            del h
            need = _data_end(p)
            if need > size:  # header promises more bytes than the file holds: a partial copy
                raise CheckpointError(f"shard {p} is partial ({size} of {need} bytes); copy it again")
        if self._weight_map is not None:
            for k, f in self._weight_map.items():
                if self._where.get(k) != f:
                    raise CheckpointError(f"{index} maps tensor {k!r} to {f!r} but that shard does not hold it; "
                                          "the shard is from another checkpoint or partial: copy it again")
        self.weight_map = dict(self._weight_map) if self._weight_map is not None else \
            {k: SINGLE_NAME for k in self._where}
        cdir = Path(config_dir) if config_dir is not None else d
        cfg = cdir / "config.json"
        self.config = json.loads(cfg.read_text()) if cfg.exists() else {}
        self.side_dir = cdir

    def names(self) -> list[str]:
        return list(self._where)

    def shape(self, name):
        return self._shapes[name]

    def dtype(self, name):
        return self._dtypes[name]

    def _get(self, name):
        if name not in self._where:
            raise CheckpointError(f"{self.path}: no tensor {name!r}")
        return self._open(name).get_tensor(name)

    def _open(self, name):
        """A fresh memory-mapped handle on the shard holding `name`. Opening one per tensor (a header parse,
        well under a millisecond) lets the mapping go when the handle is dropped, so the pages read for earlier
        tensors stop counting in this process's resident set: the peak RSS stays near the anonymous memory
        instead of growing to the size of both checkpoints."""
        from safetensors import safe_open

        return safe_open(str(self._handles[self._where[name]]), framework="pt")

    def chunks(self, name):
        """Row blocks read straight from the memory-mapped file (get_slice), never the whole tensor."""
        if name not in self._where:
            raise CheckpointError(f"{self.path}: no tensor {name!r}")
        shape = self._shapes[name]
        if len(shape) == 0 or shape[0] == 0:
            yield from super().chunks(name)
            return
        h = self._open(name)
        sl = h.get_slice(name)
        step = max(1, CHUNK_ELEMS // max(1, math.prod(shape[1:])))
        for i in range(0, shape[0], step):
            part = sl[i:i + step]
            self._check_finite(name, part)
            yield part

    def close(self):
        self._handles.clear()


def _data_end(p: Path) -> int:
    """Bytes a safetensors file must have according to its own header (8 + header + largest end offset)."""
    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return 8 + n + (max(ends) if ends else 0)


class DictCheckpoint(Checkpoint):
    """In-memory tensors (GGUF after dequantisation; tests)."""

    kind = "memory"

    def __init__(self, path, tensors: Mapping[str, torch.Tensor], config: dict | None = None, side_dir=None):
        self.path = Path(path)
        self._t = dict(tensors)
        self.config = dict(config or {})
        self.side_dir = side_dir
        self.weight_map = {k: SINGLE_NAME for k in self._t}

    def names(self):
        return list(self._t)

    def shape(self, name):
        return tuple(self._t[name].shape)

    def dtype(self, name):
        return self._t[name].dtype

    def _get(self, name):
        return self._t[name]
