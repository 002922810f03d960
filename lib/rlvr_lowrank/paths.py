"""Repo-anchored paths, so notebooks, papermill, nbval and the CLI agree whatever their cwd.

Where outputs go. ``figures/<profile>/`` and ``reports/<profile>/`` are tracked in git for every profile
except the untracked ones (``UNTRACKED_PROFILES``: smoke, the CI profile). Only the pipeline writes the
tracked copies: it runs inside ``tracked_outputs()``, which sets ``RLVR_WRITE_TRACKED=1`` for itself and
for the kernels papermill starts. Anywhere else (a notebook opened in JupyterLab with ``PROFILE = "tiny"``,
a script) ``figure_dir`` and ``report_dir`` return a scratch directory, ``runs/scratch/<profile>/figures``
and ``.../reports`` (git-ignored; ``RLVR_SCRATCH_DIR`` moves it), and say so once per process on stdout.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"
DATA = ROOT / "data"
TASKS_DIR = DATA / "tasks"
MODELS_DIR = DATA / "models"
TINY_BASE = MODELS_DIR / "tiny-base"
FIGURES = ROOT / "figures"
REPORTS = ROOT / "reports"
RUNS = Path(os.environ.get("RLVR_RUNS_DIR", ROOT / "runs"))  # override: tests, or runs on a scratch disk
CACHE = Path(os.environ.get("RLVR_CACHE_DIR", RUNS / "cache"))  # derived files rebuilt on demand (dequantized GGUF)
NOTEBOOKS = ROOT / "notebooks"

UNTRACKED_PROFILES = frozenset({"smoke"})  # their figures/ and reports/ are git-ignored (see .gitignore)
WRITE_TRACKED_ENV = "RLVR_WRITE_TRACKED"  # "1": this process writes figures/<p>/ and reports/<p>/ themselves
SCRATCH_ENV = "RLVR_SCRATCH_DIR"
_noted: set[tuple[str, str]] = set()


def scratch_root() -> Path:
    """Where interactive outputs of tracked profiles go: ``runs/scratch/`` or ``$RLVR_SCRATCH_DIR``."""
    return Path(os.environ.get(SCRATCH_ENV) or ROOT / "runs" / "scratch")


def writes_tracked(profile: str) -> bool:
    """True when outputs of ``profile`` go to the repository's figures/ and reports/: the profile is untracked
    (smoke), or this process runs under the pipeline (``RLVR_WRITE_TRACKED=1``)."""
    return profile in UNTRACKED_PROFILES or os.environ.get(WRITE_TRACKED_ENV) == "1"


@contextlib.contextmanager
def tracked_outputs():
    """Within this block (and in the kernels started inside it, which inherit the environment)
    ``figure_dir``/``report_dir`` return the tracked figures/<profile>/ and reports/<profile>/."""
    old = os.environ.get(WRITE_TRACKED_ENV)
    os.environ[WRITE_TRACKED_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(WRITE_TRACKED_ENV, None)
        else:
            os.environ[WRITE_TRACKED_ENV] = old


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def _output_dir(kind: str, tracked: Path, profile: str) -> Path:
    if writes_tracked(profile):
        d = tracked / profile
    else:
        d = scratch_root() / profile / kind
        if (kind, profile) not in _noted:
            _noted.add((kind, profile))
            print(f"[paths] {kind} of profile {profile} go to {_rel(d)}/ ({kind}/{profile}/ is tracked and only "
                  f"`make reproduce PROFILE={profile}` writes it)", flush=True)
    d.mkdir(parents=True, exist_ok=True)
    return d


def figure_dir(profile: str) -> Path:
    """figures/<profile>/ when ``writes_tracked(profile)``, else runs/scratch/<profile>/figures/; created."""
    return _output_dir("figures", FIGURES, profile)


def report_dir(profile: str) -> Path:
    """reports/<profile>/ when ``writes_tracked(profile)``, else runs/scratch/<profile>/reports/; created."""
    return _output_dir("reports", REPORTS, profile)


def report_source(profile: str, name: str) -> Path:
    """A report file to read (e.g. ``c1.json`` for the claims notebook): the copy in ``report_dir(profile)``
    when this session wrote one there, else the tracked ``reports/<profile>/<name>`` (which may be missing)."""
    # reading creates nothing and prints nothing (only writing through report_dir does)
    mine = (REPORTS / profile if writes_tracked(profile) else scratch_root() / profile / "reports") / name
    return mine if mine.exists() else REPORTS / profile / name


def run_dir(profile: str, experiment: str, seed: int) -> Path:
    """runs/<profile>/<experiment>/seed<k>/ (its contents: the runs.py docstring)."""
    return RUNS / profile / experiment / f"seed{seed}"
