"""A finished run's config as the typed ``training.config.Experiment`` (each field checked once, by the dataclasses
of training.config), for notebooks and claims."""
from __future__ import annotations

from pathlib import Path

from ..training import config, runs


def typed_config(run: str | Path) -> config.Experiment:
    """The Experiment a run was trained with, read from its ``config.yaml`` (the header a run writes beside the
    resolved config is skipped by ``config.from_dict``; an unknown or malformed key is a ConfigError naming it)."""
    return config.from_dict(runs.read_config(Path(run)))
