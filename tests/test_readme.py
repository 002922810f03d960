"""The README quotes pipeline outputs only through generated blocks that match their sources."""
from rlvr_lowrank import fileio, paths
from rlvr_lowrank.pipeline import readme, readme_real_model


def test_readme_generated_blocks_match_pipeline_outputs():
    text = (paths.ROOT / "README.md").read_text()
    assert readme.render(text, readme.generated_blocks()) == text, (
        "README.md is out of date with the pipeline outputs: run `python -m rlvr_lowrank readme`")


def test_readme_leads_with_the_two_commands():
    text = (paths.ROOT / "README.md").read_text()
    first = text.index("make reproduce"), text.index("make test")
    assert max(first) < text.index("<!-- BEGIN:base-metrics -->")


def test_figures_block_embeds_the_first_figure_of_each_claim():
    from rlvr_lowrank import claims
    from rlvr_lowrank.claims import notebooks

    block = readme.figures_block()
    for cid in claims.CLAIMS:
        assert f"](figures/tiny/{notebooks.by_claim(cid).figures[0]}.png)" in block


def _entry(cid, verdict, two_valued, fragile=(), why=""):
    decided = {"class": verdict, "quantity": "q", "value": 0.038, "n": 5,
               "intervals": {"ci": [0.021, 0.056], "t_ci": [-0.007, 0.082]}}
    if verdict == "inconclusive":
        decided.update(mde=0.31, seeds_needed=175, theta=0.02)
    return {"id": cid, "verdict": verdict, "verdict_two_valued": two_valued, "verdict_bootstrap_only": "holds",
            "fragile": list(fragile), "why": why, "decided_by": decided,
            "measured": [{"quantity": "other", "mean": 0.5, "ci": [0.4, 0.6], "t_ci": [0.3, 0.7], "n": 5}]}


def test_findings_and_rule_change_blocks_read_the_report(monkeypatch):
    report = {"profile": "tiny", "claims": [_entry("C1", "inconclusive", "inconclusive"),
                                            _entry("C4", "refuted", "rule not met", ["under y = xW …"])]}
    monkeypatch.setattr(readme, "_tiny_report", lambda: report)
    monkeypatch.setattr(readme.claims, "load_report", lambda p: report)
    monkeypatch.setattr(readme.paths, "REPORTS", readme.paths.ROOT / "reports")
    lines = readme.findings_block().splitlines()
    # the deciding quantity (not the first measured one), with the power of an inconclusive verdict
    assert lines[0].startswith("* **C1**") and "**inconclusive** (MDE 0.31; 175 seeds for θ = 0.02)" in lines[0]
    assert "q: 0.038, bootstrap [0.021, 0.056], t [-0.007, 0.082] (n = 5)" in lines[0] and "other" not in lines[0]
    assert "fragile" not in lines[0] and "fragile: under y = xW" in lines[1] and "MDE" not in lines[1]
    rule = readme.rule_change_block(("tiny",))
    assert "| C4 | holds → rule not met → **refuted** |" in rule and "does not hold" not in rule


def test_real_model_block_sets_the_profiles_side_by_side_and_reads_the_time_against_the_budget(tmp_path, monkeypatch):
    reports = {"tiny": {"profile": "tiny", "claims": [{**_entry("C1", "holds", "holds"), "seeds": 5}]},
               "smollm2": {"profile": "smollm2",
                           "claims": [{**_entry("C1", "inconclusive", "rule not met", why="no gap"), "seeds": 3}]}}
    monkeypatch.setattr(readme.paths, "REPORTS", tmp_path)
    monkeypatch.setattr(readme.claims, "load_report", lambda p: reports[p])
    for p in reports:
        fileio.write_json(tmp_path / p / "claims.json", reports[p])
    cold = {"total_s": 3500.0, "setup_s": 100.0, "runs_trained": 6, "notebooks_executed": 7, "jobs_wall_s": 3390.0,
            "processes": 2, "cpu_count": 2}
    fileio.write_json(tmp_path / "smollm2" / "timing.json", {"cold": cold})
    block = readme_real_model.real_model_claims_block()
    assert "| C1 | q: " in block and "**holds** | q: " in block and block.count("**inconclusive** (MDE 0.31") == 1
    assert ("C1 holds on tiny, inconclusive on smollm2 (smollm2: no gap)" in block
            and "Seeds: tiny 5, smollm2 3" in block)
    assert ("**58.3 min**" in block
            and "within the 60-minute budget; the run again with nothing changed is not recorded" in block)
    fileio.write_json(tmp_path / "smollm2" / "timing.json",
                      {"cold": {**cold, "total_s": 3700.0}, "warm": {"total_s": 75.0}})
    block = readme_real_model.real_model_claims_block()
    assert "over the 60-minute budget; again with nothing changed: **75 s**, over the 1-minute budget" in block


def test_provenance_marks_reports_whose_run_hashes_are_not_todays(tmp_path, monkeypatch):
    from rlvr_lowrank.training import config, runs

    monkeypatch.setattr(readme.paths, "REPORTS", tmp_path)
    today = {f"full/seed{s}": runs.run_hash(runs.identity(config.resolve("smoke", "full", s))) for s in (0, 1)}
    fileio.write_json(tmp_path / "smoke" / "c0.json", {"profile": "smoke", "runs": today})
    fileio.write_json(tmp_path / "smoke" / "claims.json", {"profile": "smoke", "code_commit": "abc123"})
    block = readme.provenance_block(("smoke",))
    assert "| smoke | commit `abc123` | the same code: all 2 recorded runs have today's identity |" in block
    fileio.write_json(tmp_path / "smoke" / "c1.json", {"profile": "smoke", "runs": {**today, "full/seed1": "0ld"}})
    block = readme.provenance_block(("smoke",))
    assert "**computed by earlier code**" in block and "1 of 2 recorded runs would get another identity" in block
    fileio.write_json(tmp_path / "smoke" / "c2.json", {"profile": "smoke"})
    assert "c2.json record no run hashes" in readme.provenance_block(("smoke",))
