"""Profiles: one YAML per profile in configs/ (smoke, tiny, smollm2, paper-*)."""
from __future__ import annotations

from . import io, paths


def available() -> list[str]:
    return sorted(p.stem for p in paths.CONFIGS.glob("*.yaml"))


def load(name: str) -> dict:
    """The profile's resolved settings; an unknown name lists the available ones."""
    path = paths.CONFIGS / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown profile {name!r}: no {path.relative_to(paths.ROOT)}; "
                         f"available profiles: {', '.join(available())}")
    cfg = io.read_yaml(path) or {}
    cfg["profile"] = name
    return cfg
