"""A finished run's config as the typed ``training.config.Experiment`` (each field checked once, by the dataclasses
of training.config), for notebooks and claims: ``config.yaml`` minus the header a run writes beside the resolved
config (runs.HEADER_KEYS: config_hash, identity, run_hash). ``config.from_dict`` alone refuses that header."""
from __future__ import annotations

from pathlib import Path

from ..training import config, runs


def typed_config(run: str | Path) -> config.Experiment:
    """The Experiment a run was trained with (an unknown or malformed key is a ConfigError naming it)."""
    stored = runs.read_config(Path(run))
    return config.from_dict({k: v for k, v in stored.items() if k not in runs.HEADER_KEYS})
