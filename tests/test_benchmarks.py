"""Every benchmark of ``make bench`` runs to its end in a seconds-long smoke mode, so a renamed library function
or a changed signature breaks this test rather than a reader's ``make bench``. What each benchmark measures is
not judged here (timings on a shared CI machine mean nothing); that it runs, and prints its result line, is.
bench_sampler has its own test (tests/test_bench_sampler.py, which also checks its agreement readings), and so
do profile_step's event split (tests/test_profile_step.py) and the fast-path benchmarks
(tests/test_bench_fast_path.py). The SmolLM2 cases (``bench_training.py --smollm2``, ``bench_spectra.py
--smollm2``, ``profile_step.py``, ``bench_fast_path.py``, ``bench_fast_curves.py``) load the 135M-parameter model
and take minutes: they are left to ``make bench``."""
import os
import subprocess
import sys

import pytest

from rlvr_lowrank import paths

pytestmark = pytest.mark.slow

CASES = {  # benchmark -> (smoke arguments, a line its result printout contains)
    "bench_rank1.py": (["--layers", "1", "--threads", "1"], "exact"),
    "bench_spectra.py": (["--quick", "--layers", "1", "--sizes", "300"], "matrices"),
    "bench_substitution_memory.py": (["256", "128", "--dtype", "float32"], "peak"),
    "bench_training.py": (["--steps", "2", "--repeats", "1"], "step-time ratio vs plain TRL"),
}


def test_every_benchmark_of_make_bench_has_a_smoke_case_or_its_own_test():
    have = set(CASES) | {"bench_sampler.py", "bench_checkpoints.py", "bench_fast_path.py", "bench_fast_curves.py"}
    assert {p.name for p in (paths.ROOT / "benchmarks").glob("bench_*.py")} == have


@pytest.mark.parametrize("name", sorted(CASES))
def test_benchmark_runs_in_smoke_mode(name):
    args, expect = CASES[name]
    out = subprocess.run([sys.executable, str(paths.ROOT / "benchmarks" / name), *args], capture_output=True,
                         text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, f"{name} {' '.join(args)} failed:\n{out.stderr[-3000:]}"
    assert expect in out.stdout, f"{name}: no line with {expect!r} in its output:\n{out.stdout[-2000:]}"


def test_bench_checkpoints_runs_in_smoke_mode(tmp_path):
    """Synthetic Qwen2-shaped BASE/RL pair of one layer, analyzed and substituted by the project's commands and by a
    plain reimplementation (the benchmark's own equivalence check)."""
    out = subprocess.run([sys.executable, str(paths.ROOT / "benchmarks" / "bench_checkpoints.py"), "--quick",
                          "--layers", "1", "--no-ht", "--no-k8", "--workdir", str(tmp_path / "work"),
                          "--json", str(tmp_path / "bench.json")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "bench.json").is_file()
