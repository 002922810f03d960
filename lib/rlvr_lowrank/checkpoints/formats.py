"""Checkpoints on disk: read them tensor by tensor, check them, write Hugging Face directories atomically.

A researcher's checkpoints are usually Hugging Face model directories with (sharded) bf16 safetensors. This
module never loads a whole model: it opens every shard with ``safetensors.safe_open`` (memory-mapped) and hands
out one tensor at a time, so the resident memory of a walk over a pair of 7B models is a few tensors, not two
models. Writing is streamed as well: the safetensors header of every output shard is computed up front from the
tensor names, shapes and dtypes, then each tensor is written as soon as it is computed.

Readers (:func:`open_checkpoint` picks one from the path):
  * :class:`HFCheckpoint`   a local directory with ``model.safetensors`` or ``model.safetensors.index.json``
                            + shards (fp32/bf16/fp16), a run directory of this project (its ``final/`` or
                            a ``checkpoints/step-N`` directory, with the base model's config and tokenizer).
  * :class:`GGUFCheckpoint` a ``.gguf`` file, dequantised to float32 through transformers (GGUF files hold
                            small quantised models; the file is dequantised whole, the one non-streamed case).
  * :class:`LoraCheckpoint` a PEFT LoRA adapter directory on top of a base checkpoint, merged on the fly per
                            tensor: W = W_base + (lora_alpha / r) · B A (alpha / sqrt(r) with rslora).

Writer: :func:`write_hf_directory` writes ``config.json``, the shards (same names and layout as a given
weight map, or packed to ``max_shard_bytes``), ``model.safetensors.index.json`` when there is more than one
shard, and copies the tokenizer and generation config, into a temporary sibling directory renamed onto the
target at the end; any error (a full disk included) removes the temporary directory.

Every error is a :class:`CheckpointError` that names the file or tensor and the fix.
"""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import torch
import yaml

from .. import fileio, paths
from ..analysis.rank1 import is_target

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
# Files copied next to the weights so that the output directory is a complete model for transformers / vLLM.
SIDE_FILES = ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
              "chat_template.json")
DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
CHUNK_ELEMS = 1 << 24  # rows per block when copying a non-target tensor: 16 M elements (32 MB in bf16)

# Target selections. "default" is the project's (rank1.is_target: q/k/v/o/gate/up/down_proj); "alpharl" is
# AlphaRL's scope (eval/svd.py): every 2-D weight under self_attn or mlp of a decoder layer, MoE routers and
# experts included; anything else is a user regex matched (re.search) against the tensor name.
ALPHARL_RE = re.compile(r"(?:^|\.)layers\.\d+\.(?:self_attn|mlp)\..*weight$")
BIN_HINT = ("convert it to safetensors once with: python -c \"from transformers import AutoModelForCausalLM as M; "
            "M.from_pretrained('DIR').save_pretrained('DIR-st', safe_serialization=True)\" (this project never "
            "unpickles weights)")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as is; the message names the file or tensor and the fix."""


def target_selector(targets: str = "default") -> Callable[[str, int], bool]:
    """(name, ndim) -> bool for --targets: "default", "alpharl" or a regular expression."""
    if targets in (None, "default"):
        return is_target
    if targets == "alpharl":
        return lambda name, ndim: ndim == 2 and ALPHARL_RE.search(name) is not None
    try:
        rx = re.compile(targets)
    except re.error as e:
        raise CheckpointError(f"--targets {targets!r} is not a valid regular expression ({e})") from e
    return lambda name, ndim: ndim == 2 and rx.search(name) is not None


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------

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


def _refuse_pickles(d: Path) -> None:
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
            _refuse_pickles(d)
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
                if dt not in DTYPES:
                    raise CheckpointError(f"{p}: tensor {k!r} has dtype {dt}, which this tool does not handle")
                self._dtypes[k] = DTYPES[dt]
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


def gguf_unsupported(path: str | os.PathLike) -> list[tuple[str, str]]:
    """[(tensor name, GGML type)] of the tensors of a GGUF file that gguf.quants cannot dequantise."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    from gguf.quants import _type_traits

    ok = {Q.F32, Q.F16, Q.BF16} | set(_type_traits)
    reader = gguf.GGUFReader(str(path))
    return [(t.name, Q(t.tensor_type).name) for t in reader.tensors if Q(t.tensor_type) not in ok]


class GGUFCheckpoint(DictCheckpoint):
    """A GGUF file, dequantised to float32 with transformers (``GgufConfig(dequantize=True)``)."""

    kind = "gguf"

    def __init__(self, path):
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path} does not exist")
        try:
            bad = gguf_unsupported(path)
        except Exception as e:
            raise CheckpointError(f"{path} is not a readable GGUF file ({e})") from e
        if bad:
            name, qtype = bad[0]
            raise CheckpointError(f"{path}: tensor {name!r} is quantised as {qtype}, which gguf cannot dequantise "
                                  f"({len(bad)} such tensor(s)); convert the model from its original safetensors or "
                                  "requantise it to Q8_0 / F16 with llama.cpp")
        from transformers import AutoModelForCausalLM, GgufConfig

        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32,
                                                     quantization_config=GgufConfig(dequantize=True))
        cfg = model.config.to_dict()
        tensors, seen = {}, set()
        for k, v in model.state_dict().items():
            if v.data_ptr() in seen:  # tied lm_head: stored once, as save_pretrained does
                continue
            seen.add(v.data_ptr())
            tensors[k] = v.detach()
        del model
        super().__init__(path, tensors, cfg, side_dir=None)
        self._gguf = path


def _lora_key(k: str) -> tuple[str, str] | None:
    """'base_model.model.X.lora_A.weight' -> ('X.weight', 'A'); None for non-LoRA keys."""
    m = re.match(r"^(?:base_model\.model\.)?(.*)\.lora_([AB])(?:\.[^.]+)?\.weight$", k)
    return (m.group(1) + ".weight", m.group(2)) if m else None


class LoraCheckpoint(Checkpoint):
    """A PEFT LoRA adapter merged on top of a base checkpoint, one tensor at a time (peft's formula)."""

    kind = "peft"

    def __init__(self, adapter_dir, base: Checkpoint):
        self.path = Path(adapter_dir)
        cfg_path = self.path / "adapter_config.json"
        wpath = self.path / "adapter_model.safetensors"
        if not wpath.exists():
            _refuse_pickles(self.path)
            raise CheckpointError(f"{wpath} is missing; save the adapter with save_pretrained(dir)")
        acfg = json.loads(cfg_path.read_text())
        if acfg.get("peft_type", "LORA") != "LORA":
            raise CheckpointError(f"{cfg_path}: peft_type {acfg.get('peft_type')!r}; only LoRA adapters are merged")
        if acfg.get("use_dora"):
            raise CheckpointError(f"{cfg_path}: DoRA adapters are not supported; merge it with peft's "
                                  "merge_and_unload() and save the merged model")
        if acfg.get("rank_pattern") or acfg.get("alpha_pattern"):
            raise CheckpointError(f"{cfg_path}: rank_pattern/alpha_pattern are not supported; merge with peft's "
                                  "merge_and_unload() and save the merged model")
        r, alpha = int(acfg["r"]), float(acfg.get("lora_alpha", acfg["r"]))
        self.scaling = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
        self.fan_in_fan_out = bool(acfg.get("fan_in_fan_out"))
        from safetensors.torch import load_file

        ad = load_file(str(wpath))  # adapters are small: r x (m + n) per matrix
        self._ab: dict[str, dict[str, torch.Tensor]] = {}
        for k, v in ad.items():
            lk = _lora_key(k)
            if lk is None:
                raise CheckpointError(f"{wpath}: tensor {k!r} is not a LoRA A/B matrix (modules_to_save are not "
                                      "supported); merge with peft's merge_and_unload() instead")
            self._ab.setdefault(lk[0], {})[lk[1]] = v
        for n, ab in self._ab.items():
            if n not in base.names():
                raise CheckpointError(f"{wpath}: adapter for {n!r}, which the base checkpoint does not have; "
                                      "the adapter belongs to another model")
            if set(ab) != {"A", "B"}:
                raise CheckpointError(f"{wpath}: {n!r} has only lora_{''.join(ab)}")
        self.base = base
        self.config = base.config
        self.side_dir = base.side_dir
        self.weight_map = base.weight_map

    def names(self):
        return self.base.names()

    def shape(self, name):
        return self.base.shape(name)

    def dtype(self, name):
        return self.base.dtype(name)

    def _get(self, name):
        W = self.base.get(name)
        ab = self._ab.get(name)
        if ab is None:
            return W
        d = (ab["B"].float() @ ab["A"].float()) * self.scaling
        if self.fan_in_fan_out:
            d = d.T
        return (W.float() + d).to(W.dtype)


def _run_weights(d: Path) -> tuple[Path, Path] | None:
    """(weights file, config dir) for a run directory of this project (runs/<profile>/<exp>/seed<k>)."""
    cfg = d / "config.yaml"
    if not cfg.exists():
        return None
    rc = yaml.safe_load(cfg.read_text()) or {}
    model = Path(str(rc.get("model", "")))
    model = model if model.is_absolute() else paths.ROOT / model
    w = d / "final" / SINGLE_NAME
    if not w.exists():
        steps = sorted((d / "checkpoints").glob("step-*/model.safetensors"))
        if not steps:
            raise CheckpointError(f"run {d} has no final/model.safetensors nor checkpoints; finish the run first")
        w = steps[-1]
    if not (model / "config.json").exists():
        raise CheckpointError(f"run {d} was trained from {model}, which has no config.json (a GGUF base cannot be "
                              "exported as a Hugging Face directory by this command)")
    return w, model


def open_checkpoint(path: str | os.PathLike, base: Checkpoint | None = None) -> Checkpoint:
    """The right reader for `path`: a .gguf file, a PEFT adapter dir (needs `base`), a run directory of this
    project, a run's step directory (checkpoints/step-N, final) or a Hugging Face directory. An already open
    Checkpoint is returned as is (e.g. a GGUF file dequantised once and used for several commands)."""
    if isinstance(path, Checkpoint):
        return path
    p = Path(path)
    if p.suffix == ".gguf":
        return GGUFCheckpoint(p)
    if p.is_file() and p.suffix in (".bin", ".pt", ".pth"):
        raise CheckpointError(f"{p} is a pickle checkpoint; {BIN_HINT.replace('DIR', str(p.parent))}")
    if not p.exists():
        raise CheckpointError(f"{p} does not exist")
    if (p / "adapter_config.json").exists():
        if base is None:
            raise CheckpointError(f"{p} is a PEFT adapter; it can only be the RL side (merged onto the base)")
        return LoraCheckpoint(p, base)
    run = _run_weights(p)
    if run is not None:
        return HFCheckpoint(p, config_dir=run[1], weights=run[0])
    if not (p / "config.json").exists() and (p / SINGLE_NAME).exists() and (p.parent.name in ("checkpoints",) or
                                                                           p.name == "final"):
        run_dir = p.parent.parent if p.parent.name == "checkpoints" else p.parent
        r = _run_weights(run_dir)
        if r is not None:
            return HFCheckpoint(p, config_dir=r[1])
    return HFCheckpoint(p)


def check_pair(base: Checkpoint, other: Checkpoint) -> None:
    """Same architecture, same tensor names, same shapes; the first mismatch is named."""
    bt, ot = base.config.get("model_type"), other.config.get("model_type")
    if bt and ot and bt != ot:
        raise CheckpointError(f"architecture mismatch: {base.path} is {bt!r}, {other.path} is {ot!r}")
    bn, on = base.names(), set(other.names())
    for k in bn:
        if k not in on:
            raise CheckpointError(f"tensor {k!r} is in {base.path} but not in {other.path}: not the same architecture")
    bs = set(bn)
    for k in other.names():
        if k not in bs:
            raise CheckpointError(f"tensor {k!r} is in {other.path} but not in {base.path}: not the same architecture")
    for k in bn:
        if base.shape(k) != other.shape(k):
            raise CheckpointError(f"shape mismatch for tensor {k!r}: {base.shape(k)} in {base.path} vs "
                                  f"{other.shape(k)} in {other.path}")


# ----------------------------------------------------------------------------------------------
# Writer
# ----------------------------------------------------------------------------------------------

def _header(specs: list[tuple[str, torch.dtype, tuple]], metadata: Mapping[str, str]) -> tuple[bytes, list[int]]:
    """safetensors header bytes (8-byte length + JSON padded to 8) and the byte size of each tensor."""
    hdr, off, sizes = {}, 0, []
    for name, dt, shape in specs:
        n = math.prod(shape) * torch.empty((), dtype=dt).element_size()
        hdr[name] = {"dtype": DTYPE_NAMES[dt], "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
        sizes.append(n)
    hdr["__metadata__"] = dict(metadata)
    js = json.dumps(hdr, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)
    return len(js).to_bytes(8, "little") + js, sizes


def _write(f, data) -> None:
    """One write call (a seam the tests patch to simulate a full disk)."""
    f.write(data)


def write_safetensors(path: Path, specs: list[tuple[str, torch.dtype, tuple]],
                      produce: Callable[[str], torch.Tensor], metadata: Mapping[str, str] | None = None,
                      on_tensor: Callable[[str], None] | None = None) -> None:
    """Stream one safetensors file: the header from `specs`, then ``produce(name)`` for each tensor in order
    (cast to the spec dtype, checked against the spec shape). ``produce`` returns a tensor or an iterable of
    its row blocks (Checkpoint.chunks). Memory: one tensor, or one block, at a time."""
    head, sizes = _header(specs, metadata or {"format": "pt"})
    with open(path, "wb") as f:
        _write(f, head)
        for (name, dt, shape), n in zip(specs, sizes):
            out = produce(name)
            parts = [out] if isinstance(out, torch.Tensor) else out  # a tensor, or its row blocks in order
            written, rows = 0, 0
            for t in parts:
                if isinstance(out, torch.Tensor) and tuple(t.shape) != tuple(shape):
                    raise CheckpointError(f"tensor {name!r}: produced shape {tuple(t.shape)}, expected {tuple(shape)}")
                t = t.detach().to("cpu", dt).contiguous()
                rows += t.shape[0] if t.ndim else 1
                buf = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b""
                _write(f, memoryview(buf))
                written += len(buf)
                del t, buf
            if written != n:
                raise CheckpointError(f"tensor {name!r}: {written} bytes written, expected {n} (shape {shape})")
            if on_tensor is not None:
                on_tensor(name)


def pack_layout(specs: list[tuple[str, torch.dtype, tuple]], max_shard_bytes: int | None) -> dict[str, str]:
    """{name: shard file}: greedy packing in order, transformers' naming (model-0000i-of-0000N.safetensors)."""
    if not max_shard_bytes:
        return {n: SINGLE_NAME for n, _, _ in specs}
    groups, cur, size = [], [], 0
    for n, dt, shape in specs:
        b = math.prod(shape) * torch.empty((), dtype=dt).element_size()
        if cur and size + b > max_shard_bytes:
            groups.append(cur)
            cur, size = [], 0
        cur.append(n)
        size += b
    if cur:
        groups.append(cur)
    if len(groups) == 1:
        return {n: SINGLE_NAME for n in groups[0]}
    N = len(groups)
    return {n: f"model-{i + 1:05d}-of-{N:05d}.safetensors" for i, g in enumerate(groups) for n in g}


def prepare_output(out: str | os.PathLike, force: bool = False) -> Path:
    """Refuse an existing output unless force (it is then replaced only when the new one is complete)."""
    out = Path(out)
    if out.exists() and not force:
        raise CheckpointError(f"{out} already exists; choose another --out or pass --force to replace it")
    return out


def write_hf_directory(out: str | os.PathLike, specs: list[tuple[str, torch.dtype, tuple]],
                       produce: Callable[[str], torch.Tensor], config: Mapping | None, side_dir: Path | None,
                       layout: Mapping[str, str] | None = None, max_shard_bytes: int | None = None,
                       force: bool = False, on_tensor: Callable[[str], None] | None = None,
                       extra_files: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None) -> Path:
    """Write a Hugging Face model directory atomically (temporary sibling directory, renamed at the end).

    `specs` is [(name, dtype, shape)] in writing order; `layout` {name: shard file} reproduces a source
    checkpoint's sharding (e.g. its weight_map), else the tensors are packed to `max_shard_bytes` (None: one
    file). config.json is written from `config`; the tokenizer and generation config files of `side_dir` are
    copied. `extra_files` {file name: text} (or a callable returning it, called after the shards are written)
are written too (e.g. a provenance note). Returns `out`.
    """
    out = prepare_output(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    layout = dict(layout) if layout is not None else pack_layout(specs, max_shard_bytes)
    missing = [n for n, _, _ in specs if n not in layout]
    if missing:
        raise CheckpointError(f"tensor {missing[0]!r} has no shard in the layout")
    by_file: dict[str, list] = {}
    for s in specs:
        by_file.setdefault(layout[s[0]], []).append(s)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for fname, fspecs in by_file.items():
            write_safetensors(tmp / fname, fspecs, produce, {"format": "pt"}, on_tensor)
        if len(by_file) > 1 or next(iter(by_file)) != SINGLE_NAME:
            total = sum(math.prod(s[2]) * torch.empty((), dtype=s[1]).element_size() for s in specs)
            index = {"metadata": {"total_size": total,
                                  "total_parameters": sum(math.prod(s[2]) for s in specs)},
                     "weight_map": {n: layout[n] for n, _, _ in specs}}
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        if config:
            (tmp / "config.json").write_text(json.dumps(dict(config), indent=2, sort_keys=True) + "\n")
        if side_dir is not None:
            for f in SIDE_FILES:
                if (Path(side_dir) / f).exists():
                    shutil.copy2(Path(side_dir) / f, tmp / f)
        extra = extra_files() if callable(extra_files) else (extra_files or {})
        for f, text in extra.items():
            (tmp / f).write_text(text)
        fileio.replace_directory(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def specs_of(ckpt: Checkpoint, dtype: torch.dtype | None = None) -> list[tuple[str, torch.dtype, tuple]]:
    """[(name, dtype, shape)] of a checkpoint in its stored order; floating tensors cast to `dtype` if given."""
    out = []
    for n in ckpt.names():
        dt = ckpt.dtype(n)
        if dtype is not None and dt.is_floating_point:
            dt = dtype
        out.append((n, dt, ckpt.shape(n)))
    return out


def export(src: str | os.PathLike, out: str | os.PathLike, dtype: str = "bf16",
           max_shard_bytes: int | None = None, force: bool = False, progress: bool = False) -> Path:
    """Any checkpoint this module reads (a run directory of this project included) as a HF directory in
    bf16 / fp16 / fp32, sharded when `max_shard_bytes` is given. The config's torch_dtype follows."""
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    prepare_output(out, force)
    ck = open_checkpoint(src)
    specs = specs_of(ck, dt)
    cfg = dict(ck.config)
    if cfg:
        cfg["torch_dtype"] = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[dtype]
        cfg["dtype"] = cfg["torch_dtype"]
    bar = _bar(len(specs), "export", progress)
    try:
        return write_hf_directory(out, specs, ck.chunks, cfg, ck.side_dir, max_shard_bytes=max_shard_bytes,
                                  force=force, on_tensor=lambda n: bar.update(1))
    finally:
        bar.close()
        ck.close()


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="tensor", disable=not enabled, leave=False)


def parse_size(s: str | int | None) -> int | None:
    """'2GB' / '500MB' / '1MB' / bytes -> bytes (powers of 1000 as transformers' max_shard_size)."""
    if s is None or isinstance(s, int):
        return s
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*", str(s), re.I)
    if not m:
        raise CheckpointError(f"cannot read the size {s!r}; write e.g. 2GB or 500MB")
    unit = m.group(2).upper().rstrip("B")
    mult = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}[unit]
    return int(float(m.group(1)) * mult)


def iter_targets(ckpt: Checkpoint, select: Callable[[str, int], bool]) -> list[str]:
    """Target names of a checkpoint under a selector, in stored order; error when none match."""
    names = [n for n in ckpt.names() if select(n, len(ckpt.shape(n)))]
    if not names:
        raise CheckpointError(f"no target matrices in {ckpt.path} for this --targets selection")
    return names


__all__ = ["CheckpointError", "Checkpoint", "HFCheckpoint", "GGUFCheckpoint", "LoraCheckpoint", "DictCheckpoint",
           "open_checkpoint", "check_pair", "target_selector", "write_hf_directory", "write_safetensors",
           "pack_layout", "specs_of", "export", "parse_size", "iter_targets", "gguf_unsupported"]
