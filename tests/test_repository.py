"""The repository stands on its own: no reference to documents a clone does not have, and a library
whose modules import without cycles (each module can be imported alone)."""
import ast
import json
import re
import subprocess
import sys

import pytest

from rlvr_lowrank import layout, paths

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


def test_library_has_no_import_cycle():
    """Between modules, at module level (function-level imports run later and may go anywhere)."""
    graph = {m: layout.imports(m, module_level_only=True) for m in layout.modules()}
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


def test_imports_follow_the_package_order():
    """A module imports its own package and the layers below it (layout.LAYERS), never a layer above, nor
    another package of its own layer -- function-level imports included."""
    against = []
    for m in layout.modules():
        own = m.split(".")[:2]
        for dep in layout.imports(m):
            if dep.split(".")[:2] == own or dep == layout.PACKAGE:
                continue
            if layout.layer(dep) > layout.layer(m) or (layout.layer(dep) == layout.layer(m) and layout.layer(m) != 0):
                against.append(f"{m} imports {dep}")
    assert not against, "imports against the package order (rlvr_lowrank.layout):\n" + "\n".join(against)


def _undocumented_modules(package_dir) -> list[str]:
    doc = ast.get_docstring(ast.parse((package_dir / "__init__.py").read_text(encoding="utf-8"))) or ""
    return [f.stem for f in sorted(package_dir.glob("*.py"))
            if f.stem != "__init__" and f"``{f.stem}``" not in doc]


def test_each_package_docstring_names_its_modules_and_what_it_may_import():
    """The package ``__init__`` docstring is the map a reader opens first: it names every module of the package
    (as ``name``) and says what the package may import, so a new module cannot go unlisted."""
    missing, no_rule = [], []
    for init in sorted((paths.ROOT / "lib" / "rlvr_lowrank").glob("*/__init__.py")):
        missing += [f"{init.parent.name}.{m}" for m in _undocumented_modules(init.parent)]
        if "May import" not in (ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""):
            no_rule.append(init.parent.name)
    assert not missing, f"modules the package docstring does not name: {missing}"
    assert not no_rule, f"package docstrings without a 'May import' line: {no_rule}"


def test_the_docstring_check_sees_an_unlisted_module(tmp_path):
    (tmp_path / "__init__.py").write_text('"""pkg.\n\n* ``listed`` -- here.\n\nMay import: nothing."""\n')
    (tmp_path / "listed.py").write_text("")
    (tmp_path / "unlisted.py").write_text("")
    assert _undocumented_modules(tmp_path) == ["unlisted"]


def test_the_order_check_sees_a_violation():
    assert layout.layer("rlvr_lowrank.training.train") > layout.layer("rlvr_lowrank.world.rewards")
    assert layout.layer("rlvr_lowrank.claims.c1") > layout.layer("rlvr_lowrank.training.runs")
    with pytest.raises(KeyError, match="no layer"):
        layout.layer("rlvr_lowrank.nowhere.x")


def _third_party_imports() -> list[str]:
    """Top-level names of the third-party packages lib/ imports (at any level), from its source."""
    found = set()
    for path in (paths.ROOT / "lib" / "rlvr_lowrank").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return sorted(found - set(sys.stdlib_module_names) - {"rlvr_lowrank", "__future__"})


@pytest.mark.slow
def test_every_module_imports_alone():
    """Each module of the package imports in an interpreter where no other module of the package was imported
    first (no hidden dependency on import order). One process imports the third-party packages once, then
    forks a child per module: the property is about the package's own modules, and a fresh interpreter per
    module (torch and transformers imported 60 times) took minutes."""
    names = sorted(m for m in layout.modules() if not m.endswith("__main__"))
    code = ("import importlib, os, sys\n"
            f"for t in {_third_party_imports()!r}:\n"
            "    try:\n        importlib.import_module(t)\n    except Exception:\n        pass\n"
            "assert not [m for m in sys.modules if m.startswith('rlvr_lowrank')]\n"
            f"for name in {names!r}:\n"
            "    r, w = os.pipe()\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        os.close(r)\n"
            "        try:\n            importlib.import_module(name)\n            msg = ''\n"
            "        except BaseException as e:\n            msg = f'{name}: {type(e).__name__}: {e}'\n"
            "        os.write(w, msg.encode())\n        os._exit(0)\n"
            "    os.close(w)\n"
            "    data = b''\n"
            "    while chunk := os.read(r, 65536):\n        data += chunk\n"
            "    os.close(r)\n"
            "    _, status = os.waitpid(pid, 0)\n"
            "    if data or status:\n        print(name, data.decode() or f'exit status {status}')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", out.stdout


# a run's config read as a dict and indexed by key in a notebook: a typo or a renamed field fails late
# and silently (cfg.get); notebooks read it through training.config.from_dict, whose fields are checked once
CONFIG_INDEXING = re.compile(r"\bcfg\s*\[\s*['\"]|\bcfg\.get\(|read_config\(.*\)\s*(\[|\.get\()")


def test_no_notebook_indexes_a_config_dict():
    hits = []
    for nb in sorted(paths.NOTEBOOKS.glob("*.ipynb")):
        for i, cell in enumerate(json.loads(nb.read_text())["cells"]):
            for line in "".join(cell.get("source", "")).splitlines():
                if CONFIG_INDEXING.search(line):
                    hits.append(f"{nb.name} cell {i}: {line.strip()[:100]}")
    assert not hits, "notebooks indexing a config dict (use config.from_dict):\n" + "\n".join(hits)


def test_the_config_indexing_pattern_catches_what_it_should():
    for bad in ("cfg['train']['max_steps']", 'cfg["pr1s"]', "cfg.get('rl_train_size')",
                'runs.read_config(run)["pr1s"]', 'runs.read_config(run).get("eval")'):
        assert CONFIG_INDEXING.search(bad), bad
    for fine in ('cfg.train["max_steps"]', "cfg.pr1s.every", "my_cfg_list[0]"):
        assert not CONFIG_INDEXING.search(fine), fine
