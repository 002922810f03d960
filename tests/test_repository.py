"""The repository stands on its own: no reference to documents a clone does not have, and a library
whose modules import without cycles (each module can be imported alone)."""
import ast
import re
import subprocess
import sys

import pytest

from rlvr_lowrank import paths

LIB = paths.ROOT / "lib" / "rlvr_lowrank"
# private notes and work history that a reader of a clone cannot follow
FORBIDDEN = re.compile(r"HT §|[Dd]esign §|R1 §|R1 OP|rank1_methods\.md|heavy_tails\.md|trl_grpo\.md|aesthetics\.md|"
                       r"\.\./shared|DEVELOPERS\.md|\b[Ii]ssue [0-9]|\b[Ss]ession[ -][0-9]")


def _text_files():
    for top in ("lib", "notebooks", "configs", "tests", "docs", "benchmarks"):
        for path in sorted((paths.ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".ipynb", ".yaml", ".yml", ".md", ".cfg", ".txt") \
                    and ".egg-info" not in str(path) and "/executed/" not in str(path):
                yield path
    yield paths.ROOT / "README.md"
    yield paths.ROOT / "Makefile"


def test_no_reference_points_outside_the_repository():
    hits = []
    for path in _text_files():
        if path == paths.ROOT / "tests" / "test_repository.py":
            continue  # the pattern itself
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if FORBIDDEN.search(line):
                hits.append(f"{path.relative_to(paths.ROOT)}:{i}: {line.strip()[:100]}")
    assert not hits, "references to documents outside the repository:\n" + "\n".join(hits[:40])


def test_the_forbidden_pattern_catches_what_it_should():
    for bad in ("see HT §6.9", "design §5", "rank1_methods.md §2", "../shared/docs", "issue 5", "session-3 runs"):
        assert FORBIDDEN.search(bad), bad
    for fine in ("Clauset, Shalizi & Newman 2009, §3", "docs/methods.md §2", "AlphaRL, eval/upd_rank.py"):
        assert not FORBIDDEN.search(fine), fine


def _module_level_imports(path) -> set[str]:
    """Project modules a module imports at module level (function-level imports are not followed)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlvr_lowrank."):
            out.add(node.module.split(".")[1])
    return out


def test_library_has_no_import_cycle():
    modules = {p.stem: p for p in LIB.glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules.update({p.name: p / "__init__.py" for p in LIB.iterdir() if (p / "__init__.py").exists()})
    graph = {m: _module_level_imports(p) & set(modules) for m, p in modules.items()}
    state = {}

    def visit(m, stack):
        if state.get(m) == "done":
            return
        if state.get(m) == "open":
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
        state[m] = "open"
        for dep in sorted(graph[m]):
            visit(dep, stack + [m])
        state[m] = "done"

    for m in sorted(graph):
        visit(m, [])


@pytest.mark.slow
def test_every_module_imports_alone():
    names = sorted(p.stem for p in LIB.glob("*.py") if p.stem not in ("__init__", "__main__"))
    code = ("import importlib, subprocess, sys\n"
            f"for name in {names!r}:\n"
            "    r = subprocess.run([sys.executable, '-c', f'import rlvr_lowrank.{name}'], capture_output=True, text=True)\n"
            "    if r.returncode: print(name, r.stderr.strip().splitlines()[-1])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.stdout.strip() == "", out.stdout
