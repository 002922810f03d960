"""Multi-process training: a smoke PR1S run under `accelerate launch` with two processes (gloo DDP on CPU) trains to
the end, writes its run directory once (rank 0), and leaves bit-identical weights on both ranks."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.analysis import targets

pytestmark = pytest.mark.slow  # trains or loads a real model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_pr1s_run_has_identical_weights_on_both_ranks(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    cmd = [str(accelerate), "launch", "--config_file", str(paths.CONFIGS / "accelerate" / "cpu_2proc.yaml"),
           "--main_process_port", str(_free_port()),
           "-m", "rlvr_lowrank", "train", "--profile", "smoke", "--experiment", "pr1s_trunc_k10", "--seed", "0"]
    env = {**os.environ, "RLVR_RUNS_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=paths.ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "smoke" / "pr1s_trunc_k10" / "seed0"
    done = fileio.read_json(run / "DONE")
    assert done["processes"] == 2 and done["steps"] == 6
    sums = [(run / "final" / f"rank{r}.sha256").read_text().strip() for r in (0, 1)]
    assert sums[0] == sums[1] == done["weights_sha256"]
    # rank 0 alone writes the logs: one line per step / substitution, never two
    assert [m["step"] for m in fileio.read_jsonl(run / "metrics.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [s["step"] for s in fileio.read_jsonl(run / "substitutions.jsonl")] == [2, 4, 6]
    base = fileio.load_tensors(paths.TINY_BASE / "model.safetensors")
    final = fileio.load_tensors(run / "final" / "model.safetensors")
    for name in targets.target_names(base):  # substituted at the last step (6 % 2 == 0): rank 1 exactly
        s = torch.linalg.svdvals(final[name] - base[name])
        assert s[1] <= 1e-4 * s[0] + 1e-6, name
