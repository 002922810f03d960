"""checkpoints: your own checkpoints -- read any supported format, write Hugging Face directories, and the
``analyze`` / ``substitute`` / ``export`` commands.

* ``dtypes`` -- the dtype-name tables (safetensors header, --dtype, config.json) and mantissa widths;
* ``readers`` -- the reader interface, Hugging Face safetensors directories (single or sharded) and in-memory
  tensors, read tensor by tensor;
* ``foreign`` -- readers for a GGUF file (dequantised) and a PEFT LoRA adapter (merged onto its base);
* ``opening`` -- the reader for a path (a run directory of this project included), a BASE/RL pair checked
  compatible, the target selection, ΔW of one tensor;
* ``writer`` -- sharded safetensors written atomically as a Hugging Face directory, and ``export``;
* ``rounding`` -- the storage rounding floor of a dtype and the storage-noise ratio;
* ``pair_analysis`` -- the ``analyze`` command: rank-1, heavy-tail and alignment diagnostics of a BASE/RL pair;
* ``report`` -- its analysis.md and figures;
* ``substitute`` -- the ``substitute`` command: the substituted model BASE + a variant of ΔW;
* ``planted`` -- a synthetic RL checkpoint with a known answer (base + planted rank-1 update + noise);
* ``math_eval`` -- the ``evaluate-math`` command: greedy accuracy and pass@k of a model directory on MATH-style JSONL;
* ``cli`` -- their command lines.

May import: the foundations, ``world``, ``models`` and ``analysis``. Nothing here is used by training.
"""
from .foreign import GGUFCheckpoint, LoraCheckpoint
from .opening import check_pair, iter_targets, open_checkpoint, target_selector
from .readers import Checkpoint, CheckpointError, HFCheckpoint
from .writer import export, parse_size, write_hf_directory

__all__ = ["Checkpoint", "CheckpointError", "GGUFCheckpoint", "HFCheckpoint", "LoraCheckpoint", "check_pair", "export",
           "iter_targets", "open_checkpoint", "parse_size", "target_selector", "write_hf_directory"]
