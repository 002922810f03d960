"""What a reader meets first: `make lab`'s command line, its landing page START_HERE.md (every link and
image resolves inside the repository), the licence and the citation metadata."""
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from rlvr_lowrank import paths

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_start_here_links_resolve():
    text = (paths.ROOT / "START_HERE.md").read_text()
    targets = LINK.findall(text)
    assert len(targets) >= 20
    missing = [t for t in targets if not t.startswith("http") and not (paths.ROOT / t).exists()]
    assert not missing, f"START_HERE.md links to missing files: {missing}"
    for stem in ("00_base_model", "01_rank1_dominance", "02_reward_overfitting", "03_knowledge_loss",
                 "04_heavy_tails", "05_alignment", "06_linear_dynamics", "07_claims"):
        assert f"reports/tiny/executed/{stem}.ipynb" in targets, stem
    assert "reports/tiny/claims.md" in targets
    figs = {f"figures/tiny/{p.name}" for p in (paths.FIGURES / "tiny").glob("*.png")}
    assert figs <= set(targets), f"figures not linked from START_HERE.md: {sorted(figs - set(targets))}"


def test_lab_settings_open_markdown_rendered():
    overrides = json.loads((paths.ROOT / ".jupyter" / "lab" / "settings" / "overrides.json").read_text())
    assert overrides["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["markdown"] == "Markdown Preview"


def _make_lab(*args):
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "--no-print-directory", "lab", *args], cwd=paths.ROOT, capture_output=True,
                         text=True, check=True).stdout
    return " ".join(line for line in out.replace("\\\n", " ").splitlines() if "jupyter lab" in line)


def test_make_lab_command_line():
    cmd = _make_lab()
    assert "--LabApp.default_url=/lab/tree/START_HERE.md" in cmd
    assert ".jupyter/lab/settings" in cmd
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
    assert "NotebookApp.token" not in cmd and "ServerApp.token" not in cmd and "IdentityProvider.token" not in cmd
    cmd = _make_lab("LAB_TOKEN=abc", "LAB_ARGS=--port 9999 --no-browser")
    assert "--IdentityProvider.token=abc" in cmd
    assert cmd.rstrip().endswith("--port 9999 --no-browser")


def test_license_is_mit():
    text = (paths.ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 rlvr-lowrank contributors" in text


def test_citation_cff_structure():
    """The keys CFF 1.2.0 requires (cffconvert --validate passes too; it is not a dependency here)."""
    cff = yaml.safe_load((paths.ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors"):
        assert cff.get(key), key
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == "0.1.0" and str(cff["date-released"]) == "2026-12-01" and cff["license"] == "MIT"
    assert "On the Implicit Reward Overfitting and the Low-rank Dynamics in RLVR" in cff["title"]
    for ref in [cff["preferred-citation"], *cff["references"]]:
        assert ref["type"] == "article" and ref["year"] == 2026 and ref["authors"]
        assert ref["title"] == "On the Implicit Reward Overfitting and the Low-rank Dynamics in RLVR"
        assert any("2605.06523" in i["value"] for i in ref["identifiers"])
        assert all(set(a) & {"name", "family-names"} for a in ref["authors"])
