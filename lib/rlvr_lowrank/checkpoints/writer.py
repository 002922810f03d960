"""Writing Hugging Face model directories: sharded safetensors streamed tensor by tensor, written atomically;
and ``export``, any checkpoint ``opening`` reads as such a directory in bf16 / fp16 / fp32.

The safetensors header of every output shard is computed up front from the tensor names, shapes and dtypes,
then each tensor is written as soon as it is computed. :func:`write_hf_directory` writes ``config.json``, the
shards (same names and layout as a given weight map, or packed to ``max_shard_bytes``),
``model.safetensors.index.json`` when there is more than one shard, and copies the tokenizer and generation
config, into a temporary sibling directory renamed onto the target at the end; any error (a full disk
included) removes the temporary directory.
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

from .. import fileio
from .dtypes import CONFIG_NAMES, SAFETENSORS_NAMES, SHORT_DTYPES
from .opening import open_checkpoint
from .readers import INDEX_NAME, SINGLE_NAME, Checkpoint, CheckpointError

# Files copied next to the weights so that the output directory is a complete model for transformers / vLLM.
SIDE_FILES = ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
              "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja",
              "chat_template.json")


def _header(specs: list[tuple[str, torch.dtype, tuple]], metadata: Mapping[str, str]) -> tuple[bytes, list[int]]:
    """safetensors header bytes (8-byte length + JSON padded to 8) and the byte size of each tensor."""
    hdr, off, sizes = {}, 0, []
    for name, dt, shape in specs:
        n = math.prod(shape) * torch.empty((), dtype=dt).element_size()
        hdr[name] = {"dtype": SAFETENSORS_NAMES[dt], "shape": list(shape), "data_offsets": [off, off + n]}
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
    """Any checkpoint ``opening`` reads (a run directory of this project included) as a HF directory in
    bf16 / fp16 / fp32, sharded when `max_shard_bytes` is given. The config's torch_dtype follows."""
    dt = SHORT_DTYPES[dtype]
    prepare_output(out, force)
    ck = open_checkpoint(src)
    specs = specs_of(ck, dt)
    cfg = dict(ck.config)
    if cfg:
        cfg["torch_dtype"] = CONFIG_NAMES[dt]
        cfg["dtype"] = cfg["torch_dtype"]
    bar = progress_bar(len(specs), "export", progress)
    try:
        return write_hf_directory(out, specs, ck.chunks, cfg, ck.side_dir, max_shard_bytes=max_shard_bytes,
                                  force=force, on_tensor=lambda n: bar.update(1))
    finally:
        bar.close()
        ck.close()


def progress_bar(total: int, desc: str, enabled: bool):
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
