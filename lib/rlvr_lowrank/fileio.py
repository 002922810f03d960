"""Atomic writes, safetensors-only tensor I/O and config hashing.

Every file the pipeline writes goes through a temporary file in the same directory followed by
``os.replace`` so that an interrupted process never leaves a half-written file that a later stage
could read as a result. The file that appears has the permissions a plain ``open(path, "w")`` would
give it (``0666 & ~umask``, or the mode of the file it replaces), not ``mkstemp``'s private 0600: run
directories, reports and READMEs are read by other users of a shared machine.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The result gets the mode a normal write would give (see :func:`default_file_mode`); the mode is
    set after the block ran, so it holds even if the writer replaced the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def current_umask() -> int:
    """The process umask, read without changing it.

    ``os.umask`` can only be read by setting it, which briefly changes it for every thread of the
    process; Linux exposes it read-only in /proc/self/status, so that is tried first.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """Mode of a new file written with ``open(path, "w")``: 0666 filtered by the umask."""
    return 0o666 & ~current_umask()


def default_dir_mode() -> int:
    """Mode of a new directory made with ``os.mkdir``: 0777 filtered by the umask."""
    return 0o777 & ~current_umask()


def _mode_for(path: Path) -> int:
    # Replacing a file keeps its mode (as rewriting it in place would); a new file gets the default.
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return default_file_mode()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it and re-run the stage that writes it") from e


def append_jsonl(path: str | os.PathLike, record: Mapping[str, Any]) -> None:
    """Append one line. A crash can at worst leave a truncated last line, which read_jsonl drops."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True, default=_json_default) + "\n")
        f.flush()


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The records of a JSONL file ([] when it does not exist).

    Only the *last* line may be undecodable: append_jsonl writes one line at a time, so an interrupted
    run can leave a torn final line, which is skipped with a warning. A bad line anywhere else is damage,
    not an interruption, and raises naming the file and the line number."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    rows = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i != last:
                raise ValueError(f"{path}, line {i + 1}: not valid JSON ({e}); only a torn last line (an "
                                 "interrupted write) is skipped -- the file is damaged: restore or delete it") from e
            warnings.warn(f"{path}: skipped a torn last line (line {i + 1}; an interrupted write)", stacklevel=2)
    return rows


def write_yaml(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, yaml.safe_dump(obj, sort_keys=True))


def read_yaml(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not valid YAML ({e}); fix it or re-create it") from e


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable 12-hex-digit hash of a JSON-serialisable config (key order does not matter)."""
    blob = json.dumps(config, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, "torch.Tensor"],
                 metadata: Mapping[str, str] | None = None) -> None:
    """safetensors, written atomically; tensors are made contiguous (safetensors requires it)."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata=dict(metadata or {}))


def load_tensors(path: str | os.PathLike) -> dict[str, "torch.Tensor"]:
    """Load a safetensors file with a clear error for a missing or corrupt file (never pickles)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises SafetensorError / OSError on corrupt headers
        raise ValueError(f"{path} is not a readable safetensors file ({e}); delete it and re-create it") from e


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def replace_directory(tmp: Path, directory: Path) -> None:
    """Move a fully written temporary directory onto ``directory`` (its old content, if any, is removed only
    after the new one is in place), so a reader never sees a half-written directory."""
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old)
    else:
        os.replace(tmp, directory)
