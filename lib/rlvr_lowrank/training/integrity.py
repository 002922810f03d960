"""Integrity: is what is on disk complete, and is it what it claims to be.

Pure checks and content hashes, no policy: the run layer decides what to do with them.

* :func:`directory_fingerprint` / :func:`files_fingerprint` -- sha256 of a model directory (the files
  loading reads) or of task data files, so a run's identity can include its inputs' contents, not
  just their paths.
* :func:`code_fingerprint` over the result modules (:func:`layout.result_modules`: the import closure of
  ``training.train``) -- sha256 of the source of the library modules whose change alters training results.
* :func:`read_done` / :func:`done_problem` -- a DONE marker counts only if it is a complete JSON object.
* :func:`checkpoint_problem` / :func:`newest_complete_checkpoint` -- which transformers/TRL trainer
  checkpoint (``checkpoint-N/``) can be resumed from; damaged newer ones are moved aside, never deleted.

Hashes are streamed in chunks (a model's weights need not fit in memory twice) and framed with each
file's relative path and size, so renaming a file or moving bytes between files changes the hash.
"""
from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import json
import os
import re
import struct
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .. import layout

_CHUNK = 1 << 20

# Files of a Hugging Face model directory that loading reads (weights, config, tokenizer). Model
# cards, metrics and logs next to them are left out: editing them does not change the model.
MODEL_FILE_PATTERNS = (
    "*.safetensors", "*.safetensors.index.json", "*.gguf", "config.json", "generation_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "vocab.txt", "merges.txt", "tokenizer.model", "chat_template.jinja", "chat_template.json",
    "adapter_config.json",
)

# Keys every DONE marker written by a training run has (train writes more; these are the ones a
# reader relies on).
DONE_KEYS = ("config_hash", "steps", "weights_sha256")


# ----------------------------------------------------------------------------------------------
# Content hashes
# ----------------------------------------------------------------------------------------------

def _update_with_file(h, label: str, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{label}\0{size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    h.update(b"\0")


def _is_model_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in MODEL_FILE_PATTERNS)


def directory_fingerprint(path: str | os.PathLike) -> str:
    """sha256 (hex) of the files of a model directory that loading reads (:data:`MODEL_FILE_PATTERNS`,
    in subdirectories too), over their sorted relative paths, sizes and bytes."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory {root} does not exist")
    files = sorted((p for p in root.rglob("*") if p.is_file() and _is_model_file(p.name)),
                   key=lambda p: p.relative_to(root).as_posix())
    if not any(p.name.endswith((".safetensors", ".gguf")) for p in files):
        raise FileNotFoundError(f"{root} holds no weights (*.safetensors or *.gguf); it is not a model directory")
    h = hashlib.sha256(b"rlvr-lowrank model directory v1\0")
    for p in files:
        _update_with_file(h, p.relative_to(root).as_posix(), p)
    return h.hexdigest()


def files_fingerprint(paths: Iterable[str | os.PathLike]) -> str:
    """sha256 (hex) of data files by file name and content, independent of the order given and of
    the directory they sit in (so the same data in a fresh clone hashes the same)."""
    files = sorted((Path(p) for p in paths), key=lambda p: p.name)
    names = [p.name for p in files]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"files_fingerprint: several files named {dup}; the hash is by file name, "
                         "so names must differ")
    h = hashlib.sha256(b"rlvr-lowrank data files v1\0")
    for p in files:
        if not p.is_file():
            raise FileNotFoundError(f"{p} does not exist (or is not a file)")
        _update_with_file(h, p.name, p)
    return h.hexdigest()


def code_fingerprint(modules: Iterable[str] | None = None) -> str:
    """sha256 (hex) of the source files of ``modules`` (dotted names; ``train`` means
    ``rlvr_lowrank.paths``; default: the result modules), found without importing them."""
    if modules is None:
        modules = layout.result_modules()
    h = hashlib.sha256(b"rlvr-lowrank code v1\0")
    for name in sorted({m if "." in m or m == layout.PACKAGE else f"{layout.PACKAGE}.{m}" for m in modules}):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin or not os.path.isfile(spec.origin):
            raise ModuleNotFoundError(f"code_fingerprint: module {name} has no source file; "
                                      "is the name right and the package on the path?")
        _update_with_file(h, name, Path(spec.origin))
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------
# DONE markers
# ----------------------------------------------------------------------------------------------

def done_problem(path: str | os.PathLike, keys: Iterable[str] = DONE_KEYS) -> str | None:
    """None if ``path`` is a complete DONE marker, else why it is not (missing, empty, torn, wrong keys)."""
    path = Path(path)
    if not path.is_file():
        return f"{path} does not exist"
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.strip():
        return f"{path} is empty (the process was interrupted while writing it)"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return f"{path} is not valid JSON ({e})"
    if not isinstance(obj, dict):
        return f"{path} holds a JSON {type(obj).__name__}, not an object"
    missing = [k for k in keys if k not in obj]
    if missing:
        return f"{path} lacks the key(s) {missing}"
    if "steps" in obj and (isinstance(obj["steps"], bool) or not isinstance(obj["steps"], int) or obj["steps"] < 0):
        return f"{path} has steps={obj['steps']!r}, not a non-negative integer"
    return None


def read_done(path: str | os.PathLike, keys: Iterable[str] = DONE_KEYS) -> dict | None:
    """The DONE marker's content, or None when the run is not done.

    None rather than an exception for a damaged marker: a torn or empty DONE means the process died
    while finishing, which is "not done" -- the run layer re-runs or resumes it, exactly as for a
    missing marker. Use :func:`done_problem` for the reason to show.
    """
    if done_problem(path, keys) is not None:
        return None
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------
# Trainer checkpoints
# ----------------------------------------------------------------------------------------------

_CHECKPOINT = re.compile(r"checkpoint-([0-9]+)")
# What transformers' Trainer._save_checkpoint writes and Trainer resumes from. The optimizer and the
# scheduler: Trainer loads them only if BOTH exist, so a missing one silently restarts the optimizer.
# The RNG state: without it the resumed run samples differently from an uninterrupted one.
_PICKLES = ("optimizer.pt", "scheduler.pt")
_WEIGHTS = ("model.safetensors", "adapter_model.safetensors")  # full model / LoRA adapter (PEFT)


def _safetensors_problem(path: Path) -> str | None:
    """Header parses, every tensor lies inside the file, and the file is exactly as long as the header
    says (a truncated file fails the last test even if its header survived)."""
    from safetensors import safe_open

    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                return f"{path.name} is {size} bytes, shorter than a safetensors header"
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8:
                return f"{path.name} is truncated (header of {n} bytes in a {size}-byte file)"
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end != size:
            return f"{path.name} is {size} bytes but its header describes {8 + n + end} (truncated or padded)"
        with safe_open(str(path), framework="pt") as f:
            if not list(f.keys()):
                return f"{path.name} holds no tensors"
    except Exception as e:  # json, struct or safetensors errors all mean "unreadable"
        return f"{path.name} is not a readable safetensors file ({type(e).__name__}: {e})"
    return None


def _pickle_problem(path: Path) -> str | None:
    # torch.save writes a zip archive; a truncated one loses its end-of-archive record. It is never
    # unpickled here: Trainer loads it itself on resume.
    if not path.is_file():
        return f"{path.name} is missing"
    if path.stat().st_size == 0:
        return f"{path.name} is empty"
    if not zipfile.is_zipfile(path):
        return f"{path.name} is not a complete torch.save archive (truncated?)"
    return None


def checkpoint_problem(ckpt_dir: str | os.PathLike) -> str | None:
    """None if ``ckpt_dir`` (a ``checkpoint-N`` directory) is a complete trainer checkpoint, else the reason.

    Complete means: trainer_state.json parses and its global_step is N; the weights
    (model.safetensors, or adapter_model.safetensors with adapter_config.json for a LoRA run) are
    complete safetensors files; optimizer.pt, scheduler.pt and an rng_state*.pth are non-empty,
    complete torch.save archives. Sharded weights and DeepSpeed/FSDP layouts are not recognised.
    """
    d = Path(ckpt_dir)
    if not d.is_dir():
        return f"{d} is not a directory"
    m = _CHECKPOINT.fullmatch(d.name)
    state_path = d / "trainer_state.json"
    if not state_path.is_file():
        return "trainer_state.json is missing"
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return f"trainer_state.json is not valid JSON ({e})"
    if not isinstance(state, dict) or not isinstance(state.get("global_step"), int):
        return "trainer_state.json has no integer global_step"
    if m and state["global_step"] != int(m.group(1)):
        return f"trainer_state.json says global_step {state['global_step']}, the directory name says {m.group(1)}"
    weights = [d / w for w in _WEIGHTS if (d / w).is_file()]
    if not weights:
        return f"no model weights ({' or '.join(_WEIGHTS)})"
    for w in weights:
        problem = _safetensors_problem(w)
        if problem:
            return problem
    if weights[0].name.startswith("adapter_"):
        try:
            json.loads((d / "adapter_config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            return f"adapter_config.json is missing or not valid JSON ({type(e).__name__})"
    for name in _PICKLES:
        problem = _pickle_problem(d / name)
        if problem:
            return problem
    rng = sorted(d.glob("rng_state*.pth"))
    if not rng:
        return "rng_state.pth is missing"
    for r in rng:
        problem = _pickle_problem(r)
        if problem:
            return problem
    return None


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def newest_complete_checkpoint(trainer_dir: str | os.PathLike, log: Callable[[str], None] = _stderr) -> Path | None:
    """The highest-numbered complete ``checkpoint-N`` in ``trainer_dir``, or None if there is none.

    Every incomplete checkpoint newer than it is renamed to ``incomplete-checkpoint-N-<UTC time>``
    (kept for inspection, never deleted) and reported through ``log`` with the reason. The new name
    does not start with ``checkpoint-``, so neither Trainer (resume, rotation of old checkpoints) nor
    this function sees it again: each directory is checked once, and the loop ends. Older incomplete
    checkpoints below the chosen one are left alone. Call it from one process only (the main one),
    before the trainer looks for checkpoints.
    """
    root = Path(trainer_dir)
    if not root.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in root.iterdir()
             if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name))]
    for _, ckpt in sorted(found, reverse=True):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        aside = _aside_name(ckpt)
        os.replace(ckpt, aside)
        log(f"{ckpt} is incomplete ({problem}); moved it aside to {aside.name} and looking at older checkpoints")
    return None


def _aside_name(ckpt: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = ckpt.with_name(f"incomplete-{ckpt.name}-{stamp}")
    i = 1
    while target.exists():  # the same checkpoint damaged twice within a second
        target = ckpt.with_name(f"incomplete-{ckpt.name}-{stamp}-{i}")
        i += 1
    return target


def fingerprints(model_dir: str | os.PathLike, data_files: Iterable[str | os.PathLike],
                 modules: Iterable[str] | None = None) -> Mapping[str, str]:
    """The three input hashes of a training run, as one mapping to put into its identity."""
    return {"model": directory_fingerprint(model_dir), "data": files_fingerprint(data_files),
            "code": code_fingerprint(modules)}
