"""A notebook run by hand takes the parameters ``make reproduce`` would pass it.

Each notebook's ``parameters`` cell holds the smoke values (what the tests run). ``make reproduce`` runs
the notebook under papermill with the profile's values (:func:`claims.notebooks.parameters`). A reader who
sets ``PROFILE = "tiny"`` in JupyterLab and runs all cells would otherwise keep the smoke values (one
seed, a few test problems) and get other numbers than the tracked ones. So the cell after the parameters
cell calls::

    params = use_profile_parameters("02_reward_overfitting", globals())

which, when ``PROFILE`` names a tracked profile that runs this notebook, sets every parameter the
profile declares to the value ``make reproduce`` passes (and prints the ones it changed). Under papermill
the injected values already are those, so nothing changes. Under ``smoke`` (untracked: what the tests
and a reader's quick try run) the cell's own values stand, edits included; the smoke parameters equal the
cells' values anyway (``tests/test_pipeline.py``).
"""
from __future__ import annotations

from .. import paths
from ..training import config
from .notebooks import parameters, stems


def notebook_parameters(stem: str, profile: str) -> dict:
    """The parameters ``make reproduce`` passes to notebook ``stem`` under ``profile`` when the profile is
    tracked (not in ``paths.UNTRACKED_PROFILES``) and runs the notebook; ``{}`` otherwise (the notebook's
    own values stand). An unknown profile raises ``config.ConfigError``, listing the available ones."""
    config.load_profile(profile)
    if profile in paths.UNTRACKED_PROFILES or stem not in stems(profile):
        return {}
    return parameters(stem, profile)


def use_profile_parameters(stem: str, namespace: dict) -> dict:
    """Set in ``namespace`` (a notebook's ``globals()``) :func:`notebook_parameters` of its ``PROFILE``;
    print each value that changes. Returns the parameters set (``{}`` when the notebook's own stand)."""
    params = notebook_parameters(stem, namespace["PROFILE"])
    changed = {k: v for k, v in params.items() if namespace.get(k, object()) != v}
    namespace.update(params)
    if changed:
        print(f"profile {params['PROFILE']}: the values make reproduce passes: "
              + ", ".join(f"{k} = {v!r}" for k, v in changed.items()))
    return params
