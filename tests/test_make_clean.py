"""`make clean` removes the untracked outputs and never a tracked file (the executed notebooks are tracked)."""
import shutil
import subprocess

import pytest

from rlvr_lowrank import paths

KEPT = ["reports/tiny/executed/00_base_model.ipynb", "reports/tiny-long/executed/07_claims.ipynb",
        "reports/tiny/claims.json", "figures/tiny/fig01_rank1_dominance.png", "data/models/tiny-base/config.json",
        ".venv/bin/python", "notebooks/01_rank1_dominance.ipynb"]
REMOVED = ["runs/tiny/full/seed0/DONE", "runs/scratch/tiny/figures/a.png", "figures/smoke/fig01.png",
           "reports/smoke/c0.json", "reports/tiny/executed/.00_base_model.fingerprint",
           "reports/tiny/executed/.01_rank1_dominance.running.ipynb",
           "reports/tiny/executed/02_reward_overfitting.failed.ipynb"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_keeps_tracked_notebooks_and_removes_untracked_outputs(tmp_path):
    shutil.copy(paths.ROOT / "Makefile", tmp_path / "Makefile")
    for rel in KEPT + REMOVED:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    proc = subprocess.run(["make", "--no-print-directory", "clean"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [r for r in KEPT if not (tmp_path / r).exists()] == []
    assert [r for r in REMOVED if (tmp_path / r).exists()] == []
    assert not (tmp_path / "runs").exists()


def test_what_make_clean_removes_is_git_ignored_or_never_committed():
    """The patterns it removes match no tracked file of this checkout."""
    proc = subprocess.run(["git", "ls-files", "runs", "figures/smoke", "reports/smoke", "reports/*/executed/.*",
                           "reports/*/executed/*.failed.ipynb"], cwd=paths.ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    assert proc.stdout.strip() == ""
