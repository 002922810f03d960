"""The README quotes pipeline outputs only through generated blocks that match their sources."""
from rlvr_lowrank import paths, readme


def test_readme_generated_blocks_match_pipeline_outputs():
    text = (paths.ROOT / "README.md").read_text()
    assert readme.render(text, readme.generated_blocks()) == text, (
        "README.md is out of date with the pipeline outputs: run `python -m rlvr_lowrank readme`")


def test_readme_leads_with_the_two_commands():
    text = (paths.ROOT / "README.md").read_text()
    first = text.index("make reproduce"), text.index("make test")
    assert max(first) < text.index("<!-- BEGIN:base-metrics -->")


def test_figures_block_embeds_the_first_figure_of_each_claim():
    from rlvr_lowrank import claims, pipeline

    block = readme.figures_block()
    for cid in claims.CLAIMS:
        assert f"](figures/tiny/{pipeline.by_claim(cid).figures[0]}.png)" in block


def _entry(cid, verdict, old, fragile=()):
    return {"id": cid, "verdict": verdict, "verdict_bootstrap_only": old, "fragile": list(fragile),
            "measured": [{"quantity": "q", "mean": 0.038, "ci": [0.021, 0.056], "t_ci": [-0.007, 0.082], "n": 5}]}


def test_findings_and_rule_change_blocks_read_the_report(monkeypatch):
    report = {"profile": "tiny", "claims": [_entry("C1", "inconclusive", "holds"),
                                            _entry("C4", "does not hold", "does not hold", ["under y = xW …"])]}
    monkeypatch.setattr(readme, "_tiny_report", lambda: report)
    monkeypatch.setattr(readme.paths, "REPORTS", readme.paths.ROOT / "no-such-dir")
    lines = readme.findings_block().splitlines()
    assert lines[0].startswith("* **C1**") and "**inconclusive**" in lines[0]
    assert "bootstrap [0.021, 0.056], t [-0.007, 0.082] (n = 5)" in lines[0] and "fragile" not in lines[0]
    assert "fragile: under y = xW" in lines[1]
    rule = readme.rule_change_block()
    assert "holds → **inconclusive** (changed)" in rule and "does not hold → **does not hold** |" in rule
