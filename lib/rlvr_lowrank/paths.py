"""Repo-anchored paths, so notebooks, papermill, nbval and the CLI agree whatever their cwd."""
from __future__ import annotations

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
NOTEBOOKS = ROOT / "notebooks"


def figure_dir(profile: str) -> Path:
    """figures/<profile>/, created on demand."""
    d = FIGURES / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def run_dir(profile: str, experiment: str, seed: int) -> Path:
    """runs/<profile>/<experiment>/seed<k>/ (its contents: the runs.py docstring)."""
    return RUNS / profile / experiment / f"seed{seed}"
