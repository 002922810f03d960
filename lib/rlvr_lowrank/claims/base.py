"""What every claim module shares: the Claim record, the verdict words, and the cN.json base class.

The thresholds of each claim were written before any training run of this project was looked at
(git history shows them landing before the results); they are never moved to make a claim pass.
A claim needs at least ``MIN_SEEDS`` seeds, otherwise its verdict is "inconclusive".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .. import io, paths

MIN_SEEDS = 3
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


@dataclass(frozen=True)
class Claim:
    """One claim: the paper's statement, our operational test, its fixed thresholds, and the
    headline quantities of its cN.json shown in the report ((label, key path) pairs)."""
    id: str
    paper: str  # the paper's statement (quoted or closely paraphrased, with its source)
    test: str  # our operational test
    thresholds: dict = field(default_factory=dict)
    quantities: tuple = ()


def too_few_seeds(n: int) -> str | None:
    """The "why" of an inconclusive verdict when a claim has fewer than MIN_SEEDS seeds, else None."""
    return f"{n} seed(s) < {MIN_SEEDS}" if n < MIN_SEEDS else None


@dataclass
class ClaimResult:
    """Base of the cN.json schemas: one dataclass field per JSON key.

    Fields left at None are optional keys and are not written (e.g. ``why`` exists only for an
    inconclusive verdict), so the file holds exactly the keys the verdict produced.
    """
    FILE = ""  # set by each subclass: "c0.json", ...

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_json(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.FILE}: keys {unknown} are not in the {cls.__name__} schema")
        return cls(**data)

    @classmethod
    def path(cls, profile: str) -> Path:
        return paths.REPORTS / profile / cls.FILE

    def write(self) -> None:
        """Write reports/<profile>/cN.json (every result carries its profile). Returns nothing, so a
        notebook's last line ``result.write()`` displays nothing (nbval compares that cell's output)."""
        io.write_json(self.path(self.profile), self.to_json())

    @classmethod
    def read(cls, profile: str):
        return cls.from_json(io.read_json(cls.path(profile)))
