"""Loading a model directory with clear errors, and saving one.

:func:`load_model` loads any local Hugging Face directory, safetensors only, in float32, never with
``trust_remote_code`` unless asked; it validates what it loads (JSON files, finite weights, weights <->
config both ways, tokenizer <-> model) and refuses, naming the file, rather than loading something
silently different. :func:`save_model` writes one atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from .. import fileio, paths
from ..world.tasks import CHARSET
from .tiny import SPECIAL_TOKENS


class ModelLoadError(RuntimeError):
    """A model directory that cannot be used as is; the message names the file and the fix."""


# JSON files of a Hugging Face model directory; each is parsed here first so that a damaged one is
# reported by name (transformers and tokenizers raise a bare JSONDecodeError or a Rust panic message).
_JSON_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json")


def _check_json_files(directory: Path) -> None:
    for name in _JSON_FILES:
        path = directory / name
        if not path.exists():
            continue
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelLoadError(f"{path} is not valid JSON ({e}); re-create it with save_pretrained(dir) "
                                 "(for the tiny base model: `git checkout data/models`)") from e
        if not isinstance(obj, dict):
            raise ModelLoadError(f"{path} holds a JSON {type(obj).__name__}, not an object; re-create it "
                                 "with save_pretrained(dir)")


def load_tokenizer(directory: str | os.PathLike, model=None, alphabet: str | None = CHARSET):
    """The tokenizer of a local directory, left-padding; with ``model`` it is checked against it
    (:func:`check_tokenizer_matches`)."""
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not (directory / "tokenizer.json").exists() and not (directory / "tokenizer_config.json").exists():
        raise ModelLoadError(f"no tokenizer in {directory} (expected tokenizer.json); "
                             "save one with tokenizer.save_pretrained(dir)")
    _check_json_files(directory)
    try:
        tok = AutoTokenizer.from_pretrained(str(directory))
    except Exception as e:  # valid JSON of the wrong structure: tokenizers raises an opaque error
        raise ModelLoadError(f"cannot load the tokenizer in {directory} (tokenizer.json / tokenizer_config.json): "
                             f"{type(e).__name__}: {e}; re-create it with tokenizer.save_pretrained(dir)") from e
    tok.padding_side = "left"
    if model is not None:
        check_tokenizer_matches(model, tok, directory, alphabet=alphabet)
    return tok


def load_model(directory: str | os.PathLike = paths.TINY_BASE, trust_remote_code: bool = False,
               alphabet: str | None = CHARSET):
    """Load (model, tokenizer) from a local directory in float32, safetensors only.

    Refused, each with a ModelLoadError naming the file (and tensor) and the fix:

    * a missing directory, config.json or model.safetensors; a JSON file that does not parse;
    * a truncated or corrupt model.safetensors;
    * weights and config.json that disagree in either direction: a tensor the config needs is missing
      (transformers would re-initialise it at random), or a stored tensor the config has no place for
      (transformers would drop it: a config with fewer layers than the weights loads silently);
      shapes that differ;
    * a NaN or Inf in any weight (the run would otherwise die at its first sampling step);
    * a tokenizer that does not belong to the model (:func:`check_tokenizer_matches`); ``alphabet``
      (default: every character of the tasks) must round-trip through it, ``None`` skips that check.
    """
    import torch
    from transformers import AutoModelForCausalLM

    directory = Path(directory)
    if not directory.is_dir():
        hint = ("run `python -m rlvr_lowrank pretrain` to recreate it (or `git checkout data/models`)"
                if directory.resolve() == paths.TINY_BASE.resolve() else "check the path")
        raise ModelLoadError(f"model directory {directory} does not exist; {hint}")
    weights = directory / "model.safetensors"
    if not (directory / "config.json").exists():
        raise ModelLoadError(f"{directory / 'config.json'} is missing; save the model with save_pretrained(dir)")
    if not weights.exists():
        raise ModelLoadError(f"{weights} is missing; this project loads safetensors only (no pickles). "
                             "Re-save the model with save_pretrained(dir, safe_serialization=True)")
    _check_json_files(directory)
    stored = _check_safetensors_header(weights)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(directory), dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    except Exception as e:  # shape mismatches surface here
        raise ModelLoadError(f"cannot load {weights} with {directory / 'config.json'}: {e}. "
                             "The weights do not match the config; re-create the model directory") from e
    _check_tensors_match_config(model, weights, stored)
    _check_finite(model, weights)
    tok = load_tokenizer(directory, model=model, alphabet=alphabet)
    model.eval()
    return model, tok


def _check_safetensors_header(path: Path) -> set[str]:
    """The stored tensor names; fails early, naming the file, if the header is unreadable (truncated/corrupt)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = set(f.keys())
    except Exception as e:
        raise ModelLoadError(f"{path} is corrupt or not a safetensors file ({e}); re-create it "
                             "(for the tiny base model: `git checkout data/models` or "
                             "`python -m rlvr_lowrank pretrain`)") from e
    if not keys:
        raise ModelLoadError(f"{path} holds no tensors; re-create it")
    return keys


def _check_tensors_match_config(model, weights: Path, stored: set[str]) -> None:
    """Stored tensors and the tensors the config builds must be the same set (transformers silently
    re-initialises missing ones and silently drops unexpected ones)."""
    import torch

    expected = set(model.state_dict().keys())
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    optional = {"lm_head.weight"} if tied else set()  # a tied head is usually not stored
    missing = sorted(expected - stored - optional)
    if missing:
        raise ModelLoadError(f"{weights} lacks {len(missing)} tensor(s) that {weights.parent / 'config.json'} needs, "
                             f"e.g. {missing[:3]}; the weights were saved from a different architecture: "
                             "re-create the model directory with save_pretrained(dir)")
    extra = sorted(stored - expected)
    if extra:
        raise ModelLoadError(f"{weights} holds {len(extra)} tensor(s) that {weights.parent / 'config.json'} has no "
                             f"place for, e.g. {extra[:3]}; loading would silently drop them (does config.json "
                             "declare fewer layers than the weights have?): restore the config the weights were "
                             "saved with")
    if tied and "lm_head.weight" in stored:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            head = f.get_tensor("lm_head.weight")
        emb = model.get_input_embeddings().weight.detach()
        if head.shape != emb.shape or not torch.equal(head.to(emb.dtype), emb):
            raise ModelLoadError(f"{weights}: config.json ties lm_head to the input embedding, but the stored "
                                 "lm_head.weight differs from it and would be silently replaced; set "
                                 "tie_word_embeddings to false in config.json or re-save the model")


def _check_finite(model, weights: Path) -> None:
    import torch

    for name, t in model.state_dict().items():
        if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
            n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise ModelLoadError(f"tensor {name!r} in {weights} has {n_nan} NaN and {n_inf} Inf value(s); the "
                                 "weights are damaged (a diverged run or a bad save): re-create them from a good "
                                 "checkpoint")


def _canonical_vocab() -> dict[str, int]:
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARSET:
        vocab.setdefault(ch, len(vocab))
    return vocab


def check_tokenizer_matches(model, tokenizer, where: str | os.PathLike = "", alphabet: str | None = CHARSET) -> None:
    """Raise ModelLoadError unless the tokenizer belongs to the model:

    * every token id indexes the model's embedding (largest id < rows, not just the count);
    * BOS/EOS/PAD ids agree with the model config wherever both define them;
    * every character of ``alphabet`` encodes to exactly one id, not ``<unk>``, distinct per character,
      and decodes back to itself (a tokenizer with a token removed fails here);
    * a model with the project's character vocabulary (as many embedding rows as
      :func:`build_tokenizer` has tokens; no other model has so small a vocabulary) must use exactly
      that vocabulary: a tokenizer with swapped ids round-trips but feeds the model wrong ids.
    """
    rows = model.get_input_embeddings().weight.shape[0]
    vocab = tokenizer.get_vocab()
    largest = max(vocab.values(), default=-1)
    if len(tokenizer) > rows or largest >= rows:
        raise ModelLoadError(f"tokenizer in {where} has {len(tokenizer)} tokens (largest id {largest}) "
                             f"but the model's embedding has {rows} rows; the tokenizer does not belong to this model")
    for which in ("bos", "eos", "pad"):
        cfg_id = getattr(model.config, f"{which}_token_id", None)
        tok_id = getattr(tokenizer, f"{which}_token_id", None)
        if isinstance(cfg_id, int) and tok_id is not None and cfg_id != tok_id:
            raise ModelLoadError(f"{which.upper()} id differs between tokenizer ({tok_id}) and model config "
                                 f"({cfg_id}) in {where}; the tokenizer does not belong to this model")
    if alphabet:
        _check_alphabet_round_trip(tokenizer, alphabet, where)
    canonical = _canonical_vocab()
    if rows == len(canonical):
        moved = sorted(t for t in canonical if vocab.get(t) != canonical[t])
        if moved or len(vocab) != len(canonical):
            detail = ", ".join(f"{t!r}: {vocab.get(t)} (expected {canonical[t]})" for t in moved[:5])
            extra = sorted(set(vocab) - set(canonical))[:5]
            raise ModelLoadError(f"tokenizer in {where} is not the character tokenizer this model was trained with: "
                                 f"{detail or 'same ids'}{'; extra tokens ' + str(extra) if extra else ''}; restore "
                                 "its tokenizer.json (`git checkout data/models` for the tiny base model, or "
                                 "models.build_tokenizer().save_pretrained(dir))")


def _check_alphabet_round_trip(tokenizer, alphabet: str, where) -> None:
    seen: dict[int, str] = {}
    for ch in sorted(set(alphabet)):
        ids = tokenizer(ch, add_special_tokens=False)["input_ids"]
        back = tokenizer.decode(ids, skip_special_tokens=True) if ids else ""
        problem = None
        if len(ids) != 1:
            problem = f"encodes to {len(ids)} ids {ids}"
        elif tokenizer.unk_token_id is not None and ids[0] == tokenizer.unk_token_id:
            problem = "is unknown (encodes to <unk>)"
        elif back != ch:
            problem = f"decodes back as {back!r}"
        elif ids[0] in seen:
            problem = f"shares id {ids[0]} with {seen[ids[0]]!r}"
        if problem:
            raise ModelLoadError(f"tokenizer in {where}: task character {ch!r} {problem}; every character of the "
                                 "tasks must be one token of its own. Restore the tokenizer the model was trained "
                                 "with (`git checkout data/models` for the tiny base model)")
        seen[ids[0]] = ch


def check_charset(tokenizer, texts) -> None:
    """Raise if a text needs a character the tokenizer lacks (it would silently become <unk>)."""
    unk = tokenizer.unk_token_id
    for t in texts:
        ids = tokenizer(t, add_special_tokens=False)["input_ids"]
        if unk is not None and unk in ids:
            bad = sorted({ch for ch in t if tokenizer(ch, add_special_tokens=False)["input_ids"] == [unk]})
            raise ValueError(f"text {t!r} has character(s) {bad} the tokenizer cannot encode")


def save_model(model, tokenizer, directory: str | os.PathLike) -> None:
    """save_pretrained into a temporary sibling directory, then rename (atomic for readers)."""
    import shutil
    import tempfile

    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    os.chmod(tmp, fileio.default_dir_mode())  # mkdtemp makes it private (0700); a model directory is shared
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        fileio.replace_directory(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def read_model_metrics(directory: str | os.PathLike = paths.TINY_BASE) -> dict:
    path = Path(directory) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; `python -m rlvr_lowrank pretrain` writes it")
    return json.loads(path.read_text())


