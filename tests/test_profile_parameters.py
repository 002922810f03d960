"""A notebook run by hand with PROFILE set to a tracked profile takes the parameters `make reproduce` passes
(claims.profile_parameters): the same values whether papermill injects them or a reader edits PROFILE."""
import contextlib
import io

import papermill.translators
import pytest

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.claims import notebooks
from rlvr_lowrank.claims.profile_parameters import notebook_parameters, use_profile_parameters
from rlvr_lowrank.pipeline import reproduce
from rlvr_lowrank.training import config

TRACKED = sorted(p.name for p in paths.REPORTS.iterdir() if (p / "executed").is_dir())
CASES = [(stem, profile) for profile in TRACKED for stem in notebooks.stems(profile)]


def test_the_tracked_profiles_are_those_with_committed_notebooks():
    assert {"tiny", "tiny-long", "smollm2"} <= set(TRACKED)
    assert not set(TRACKED) & paths.UNTRACKED_PROFILES


def _cells(stem):
    return fileio.read_json(paths.NOTEBOOKS / f"{stem}.ipynb")["cells"]


def _parameters_cell(cells):
    return next(i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", []))


def _run(sources, namespace=None):
    """Run code cells' sources in one namespace, as a kernel would; returns (namespace, what they printed)."""
    ns = {"paths": paths} if namespace is None else namespace  # 09's parameters cell reads paths
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for src in sources:
            exec(compile(src, "<cell>", "exec"), ns)
    return ns, out.getvalue()


@pytest.mark.parametrize("stem,profile", CASES)
def test_notebook_parameters_are_the_ones_reproduce_passes(stem, profile):
    assert notebook_parameters(stem, profile) == reproduce.checked_parameters(stem, profile)


@pytest.mark.parametrize("stem,profile", CASES)
def test_a_reader_setting_profile_gets_what_papermill_injects(stem, profile):
    cells = _cells(stem)
    k = _parameters_cell(cells)
    params_src, follow_src = "".join(cells[k]["source"]), "".join(cells[k + 1]["source"])
    assert f'use_profile_parameters("{stem}", globals())' in follow_src  # the cell right after the parameters
    expected = reproduce.checked_parameters(stem, profile)

    # a reader: edits PROFILE in the parameters cell, runs all cells
    edited = params_src.replace('PROFILE = "smoke"', f'PROFILE = "{profile}"', 1)
    assert edited != params_src
    reader, printed = _run([edited, follow_src])
    # papermill: the parameters cell, its injected cell, then the same cell
    injected = papermill.translators.translate_parameters("python", "python", expected, "injected")
    piped, printed_pm = _run([params_src, injected, follow_src])

    assert {k: reader[k] for k in expected} == expected == {k: piped[k] for k in expected}
    defaults, _ = _run([params_src])
    names = [k for k in defaults if k.isupper()]
    assert {k: reader[k] for k in names} == {k: piped[k] for k in names}  # and the cell's other values agree
    assert printed_pm == ""  # under papermill nothing changes, so nothing is said
    changed = [k for k in expected if defaults.get(k) != expected[k] and k != "PROFILE"]
    assert all(f"{k} = " in printed for k in changed)


def test_smoke_keeps_the_cells_values_edits_included():
    ns = {"PROFILE": "smoke", "N_TEST": 5, "SEEDS": [0]}
    assert use_profile_parameters("01_rank1_dominance", ns) == {}
    assert ns == {"PROFILE": "smoke", "N_TEST": 5, "SEEDS": [0]}


def test_a_tracked_profile_overrides_an_edit_and_says_so(capsys):
    ns = {"PROFILE": "tiny", "N_TEST": 5, "SEEDS": [0], "FULL": "full"}
    use_profile_parameters("01_rank1_dominance", ns)
    assert ns["N_TEST"] == 300 and ns["SEEDS"] == config.load_profile("tiny")["seeds"]
    said = capsys.readouterr().out
    assert "N_TEST = 300" in said and "FULL" not in said  # only what changed


def test_a_notebook_the_profile_does_not_run_keeps_its_values():
    assert "08_smollm2_spectra" not in notebooks.stems("tiny")
    assert notebook_parameters("08_smollm2_spectra", "tiny") == {}
    assert notebook_parameters("08_smollm2_spectra", "smollm2") == {"PROFILE": "smollm2", "N_LAYERS": None}


def test_an_unknown_profile_is_named():
    with pytest.raises(config.ConfigError, match="unknown profile 'tine'.*available profiles"):
        notebook_parameters("01_rank1_dominance", "tine")
