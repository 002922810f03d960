"""Finished runs as the notebooks and claims read them: a run's config as the typed
``training.config.Experiment`` (each field checked once, by the dataclasses of training.config), and the run
directories of a notebook's arms."""
from __future__ import annotations

from pathlib import Path

from ..training import config, runs


def typed_config(run: str | Path) -> config.Experiment:
    """The Experiment a run was trained with, read from its ``config.yaml`` (the header a run writes beside the
    resolved config is skipped by ``config.from_dict``; an unknown or malformed key is a ConfigError naming it)."""
    return config.from_dict(runs.read_config(Path(run)))


def arm_runs(profile: str, deciding: list[str], others: list[str], seeds: list[int]) -> dict[str, dict]:
    """The finished run directories a notebook reads, ``{experiment: {seed: run}}``: every seed of ``seeds`` for the
    deciding arms (a missing one is an error naming the command that trains it, runs.require_run), and for each
    other arm (a sweep, LoRA or multi-task arm, which may have fewer seeds: config.seeds_of) the seeds of ``seeds``
    it was trained with."""
    out = {}
    for arm in [*deciding, *[a for a in others if a not in deciding]]:
        have = seeds if arm in deciding else [s for s in seeds if s in config.seeds_of(profile, arm)]
        out[arm] = {s: runs.require_run(profile, arm, s) for s in have}
    return out
