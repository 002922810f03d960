"""The package's layers, and what follows from them: which imports are allowed, which modules are *result
modules* (their source is part of every training run's identity), which are *notebook inputs* (their source
is part of every notebook's fingerprint).

Layers, lowest first; a module may import its own package and the layers below it, never one above::

    paths, fileio, checks, layout   foundations: where files live, how they are written, argument checks, this file
    sampling                the fast sampler (torch only): rollouts and greedy evaluation
    world                   tasks, chat tasks, rewards, evaluation
    models                  tiny model, loading, SmolLM2 cache, sharded weights, pretraining
    analysis                rank-1 algebra, spectra, alignment, linear dynamics
    checkpoints             your own checkpoints: read, write, analyze / substitute / export
    training                config, GRPO runs, PR1S and recorders, precision, run identity
    claims                  C0-C4, their statistics, the declared notebook table, evaluation suites
    figures                 the notebooks' figures
    pipeline                make reproduce, the job queue, README blocks, real-model measurements
    cli                     the command line
    __main__                python -m rlvr_lowrank

Everything here is read from the source with :mod:`ast`, never by importing: the identity of a run can be
computed before (and without) loading torch.

*Result modules* are the import closure of ``training.train`` -- every project module a training run
imports, at module level or inside a function, with the ``__init__`` of each package on the way -- so a
module is classified by what the code does, not by a hand-kept list. *Notebook inputs* are all modules but
the ``pipeline`` package and the command lines (``cli``, ``checkpoints.cli``, ``__main__``), which no
notebook imports (a test checks that).
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = "rlvr_lowrank"
SOURCE = Path(__file__).resolve().parent
LAYERS: tuple[tuple[str, ...], ...] = (
    ("paths", "fileio", "checks", "layout"), ("sampling",), ("world",), ("models",), ("analysis",), ("checkpoints",),
    ("training",), ("claims",), ("figures",), ("pipeline",), ("cli",), ("__main__",))
TRAINING_ENTRY = f"{PACKAGE}.training.train"
NOT_NOTEBOOK_INPUTS = ("pipeline", "cli", "__main__", "checkpoints.cli")


def modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> source file (a package is its ``__init__``)."""
    out = {}
    for path in sorted(SOURCE.rglob("*.py")):
        parts = path.relative_to(SOURCE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join((PACKAGE,) + parts)] = path
    return out


def _package_of(name: str, path: Path) -> str:
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def imports(name: str, module_level_only: bool = False) -> set[str]:
    """The project modules that module ``name`` imports (``from ..world import tasks`` -> the module
    ``world.tasks``; ``from ..models import load_model`` -> the package ``models``)."""
    known = modules()
    path = known[name]
    package = _package_of(name, path)
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith(PACKAGE):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
    out.discard(name)
    return {m for m in out if m in known}


def _with_parents(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@functools.lru_cache(maxsize=1)
def result_modules() -> tuple[str, ...]:
    """The import closure of ``training.train``, package ``__init__`` files included, sorted."""
    seen, todo = set(), [TRAINING_ENTRY]
    while todo:
        for m in _with_parents(todo.pop()):
            if m not in seen:
                seen.add(m)
                todo.extend(imports(m))
    return tuple(sorted(seen))


def layer(name: str) -> int:
    """The index in :data:`LAYERS` of a module (by its top-level name under the package)."""
    top = name.removeprefix(PACKAGE + ".").split(".")[0] if name != PACKAGE else "__init__"
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    if top == "__init__":
        return 0
    raise KeyError(f"{name} is in no layer of rlvr_lowrank.layout.LAYERS: add its package there")


def is_notebook_input(name: str) -> bool:
    rel = name.removeprefix(PACKAGE + ".")
    return not any(rel == n or rel.startswith(n + ".") for n in NOT_NOTEBOOK_INPUTS)


def notebook_input_files() -> list[Path]:
    """Source files whose content is part of every notebook's fingerprint."""
    return [p for m, p in modules().items() if is_notebook_input(m)]
