"""checkpoints: your own checkpoints -- read any supported format, write Hugging Face directories, and the
``analyze`` / ``substitute`` / ``export`` commands.

* ``formats`` -- reading (Hugging Face safetensors directories, single or sharded; a run directory of this
  project; GGUF; a PEFT LoRA adapter) tensor by tensor, and writing sharded safetensors atomically;
* ``pair_analysis`` -- rank-1, heavy-tail and alignment diagnostics of a BASE/RL pair, and the substituted
  model (BASE + a variant of ΔW);
* ``cli`` -- their command lines.

May import: ``paths``, ``fileio`` and ``analysis``. Nothing here is used by training.
"""
from .formats import (
                      Checkpoint,
                      CheckpointError,
                      GGUFCheckpoint,
                      HFCheckpoint,
                      LoraCheckpoint,
                      check_pair,
                      export,
                      iter_targets,
                      open_checkpoint,
                      parse_size,
                      target_selector,
                      write_hf_directory,
)

__all__ = ["Checkpoint", "CheckpointError", "GGUFCheckpoint", "HFCheckpoint", "LoraCheckpoint", "check_pair", "export",
           "iter_targets", "open_checkpoint", "parse_size", "target_selector", "write_hf_directory"]
