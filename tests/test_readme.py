"""The README and the docs quote pipeline outputs only through generated blocks that match their sources; the
README stays short, defines its terms before it uses them and shows every tracked profile in one table."""
import pytest

from rlvr_lowrank import claims, fileio, paths
from rlvr_lowrank.claims import notebooks
from rlvr_lowrank.pipeline import readme, readme_details, readme_real_model

README_MAX_LINES = 150


@pytest.fixture(scope="module")
def blocks():
    return readme.generated_blocks()


def test_every_page_matches_the_pipeline_outputs(blocks):
    stale = [str(page.relative_to(paths.ROOT)) for page in readme.documents()
             if readme.render_document(page.read_text(), blocks, page) != page.read_text()]
    assert not stale, f"{stale} out of date with the pipeline outputs: run `python -m rlvr_lowrank readme`"


def test_every_block_is_on_exactly_one_page():
    where = readme.placement()
    assert set(where) == set(readme.BLOCKS), (set(readme.BLOCKS) - set(where), set(where) - set(readme.BLOCKS))
    assert {n: w for n, w in where.items() if len(w) != 1} == {}
    assert {n for n, w in where.items() if w == ["README.md"]} == {"hardware", "timing", "results", "figures"}


def test_readme_is_short_and_defines_its_terms_before_using_them():
    text = (paths.ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= README_MAX_LINES
    terms = text.index("## Terms")
    for term in ("GRPO", "ΔW", "PR1S", "rank-1", "MDE", "refuted", "below threshold", "inconclusive", "untestable"):
        assert text.index(term) > terms, f"{term!r} used before the glossary"
    assert text.index("make reproduce") < text.index("<!-- BEGIN:results -->")
    assert text.index("make test") < text.index("<!-- BEGIN:results -->")


def _entry(cid, verdict, two_valued, fragile=(), why="", bootstrap_only="holds", n=5):
    decided = {"class": verdict, "quantity": "q", "value": 0.038, "n": n,
               "intervals": {"ci": [0.021, 0.056], "t_ci": [-0.007, 0.082]}}
    if verdict == "inconclusive":
        decided.update(mde=0.31, seeds_needed=175, theta=0.02)
    return {"id": cid, "verdict": verdict, "verdict_two_valued": two_valued, "verdict_bootstrap_only": bootstrap_only,
            "fragile": list(fragile), "why": why, "decided_by": decided, "seeds": n,
            "measured": [{"quantity": "other", "mean": 0.5, "ci": [0.4, 0.6], "t_ci": [0.3, 0.7], "n": n}]}


DESIGN = {"model": "data/models/tiny-base", "steps": 60, "completions_per_step": 32,
          "full": {"experiment": "full", "seeds": [0, 1, 2, 3, 4]}, "pr1s": None}


def _two_profiles(tmp_path, monkeypatch, current=("a",)):
    reports = {"a": {"profile": "a", "design": DESIGN, "claims": [
                   _entry("C0", "holds", "holds"), _entry("C1", "inconclusive", "rule not met", n=5),
                   _entry("C4", "refuted", "rule not met", ["under y = xW …"], bootstrap_only="rule not met")]},
               "b": {"profile": "b", "design": {**DESIGN, "model": "smollm2-gguf", "steps": 20}, "claims": [
                   _entry("C0", "inconclusive", "inconclusive", n=3), _entry("C1", "below threshold", "rule not met",
                                                                              n=3)]}}
    monkeypatch.setattr(readme.paths, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(readme.paths, "FIGURES", tmp_path / "figures")
    monkeypatch.setattr(readme.claims, "load_report", lambda p: reports[p])
    monkeypatch.setattr(readme, "provenance", lambda p: {"current": p in current})
    for p in reports:
        fileio.write_json(tmp_path / "reports" / p / "claims.json", reports[p])
    return reports


def test_results_table_has_a_row_per_claim_and_profile_with_the_rule_change_marked(tmp_path, monkeypatch):
    _two_profiles(tmp_path, monkeypatch)
    rows = {tuple(r.split(" | ")[:2]): r for r in readme.results_block(("a", "b")).splitlines() if r.startswith("| C")}
    assert list(rows) == [("| C0", "a"), ("| C0", "b"), ("| C1", "a"), ("| C1", "b"), ("| C4", "a")]
    assert "| **holds** | q: 0.038, bootstrap [0.021, 0.056], t [-0.007, 0.082] (n = 5) |" in rows["| C0", "a"]
    assert "| holds → **inconclusive** |" in rows["| C0", "b"] and "| MDE 0.31; 175 seeds for θ = 0.02 |" \
        in rows["| C1", "a"]
    assert "| holds → rule not met → **inconclusive** |" in rows["| C1", "a"]
    assert "| rule not met → **refuted** |" in rows["| C4", "a"]
    assert rows["| C0", "a"].endswith("| `tiny-base` (1.06M parameters), 60 × 32; 5 seeds |")
    assert rows["| C4", "a"].endswith("; 5 seeds; fragile: under y = xW … |")
    assert rows["| C0", "b"].endswith("| SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized), 20 × 32; 3 seeds; "
                                      "computed by earlier code |")


def test_figure_of_a_claim_comes_from_the_profile_that_decides_it(tmp_path, monkeypatch):
    _two_profiles(tmp_path, monkeypatch, current=("a", "b"))
    for p in ("a", "b"):
        for cid in ("C0", "C1"):
            fileio.write_text(tmp_path / "figures" / p / f"{notebooks.by_claim(cid).figures[0]}.png", "png")
    reports = readme._reports(("a", "b"))
    assert readme.figure_profile("C0", reports) == "a"        # holds before inconclusive
    assert readme.figure_profile("C1", reports) == "b"        # below threshold before inconclusive
    assert readme.figure_profile("C4", reports) is None       # no figure file
    block = readme.figures_block(("a", "b"))
    assert f"](figures/b/{notebooks.by_claim('C1').figures[0]}.png)" in block and "C4: no figure yet" in block


def test_figures_on_the_readme_exist(blocks):
    block = blocks["figures"]
    for cid in claims.CLAIMS:
        fig = notebooks.by_claim(cid).figures[0]
        assert any(f"](figures/{p}/{fig}.png)" in block for p in readme.TRACKED_PROFILES), cid
    for target in readme.LINK.findall(block):
        assert (paths.ROOT / target[1]).exists(), target


def test_timing_and_hardware_read_the_records(tmp_path, monkeypatch):
    monkeypatch.setattr(readme.paths, "REPORTS", tmp_path)
    cold = {"total_s": 1200.0, "setup_s": 20.0, "runs_trained": 21, "notebooks_executed": 8, "jobs_wall_s": 1170.0,
            "processes": 2, "cpu_count": 4}
    fileio.write_json(tmp_path / "tiny" / "timing.json", {"cold": cold})
    fileio.write_json(tmp_path / "smollm2" / "timing.json", {"warm": {**cold, "total_s": 9.0, "runs_cached": 6,
                                                                      "notebooks_cached": 7}})
    text = readme.timing_block()
    assert "| `make test` | not recorded yet | — |" in text
    assert "| `make reproduce` (tiny) | **20.0 min**: 20 s set-up, then 21 GRPO runs and 8 notebooks in 1170 s | " \
           "not recorded |" in text
    assert "| `make reproduce PROFILE=smollm2` | not recorded | **9 s** (6 runs and 7 notebooks reused) |" in text
    assert "tiny-long" not in text and "(2 processes on 4 cores;" in text
    fileio.write_json(tmp_path / readme.TEST_TIMING, {"total_s": 780.0, "cpu_count": 2})
    assert "| `make test` | **13.0 min** on 2 cores | — |" in readme.timing_block()
    hw = readme.hardware_block()
    assert "measured on 4 cores" in hw and "compute in fp32" in hw and "**Python** >=3.11" in hw
    assert "**Memory and disk:** not recorded yet" in hw and "tiny cold: not recorded" in readme.timing_block()
    cpu = {"model": "Some CPU @ 2.60GHz", "bf16_feature": None}
    fileio.write_json(tmp_path / readme.TEST_TIMING, {"total_s": 780.0, "cpu_count": 2, "peak_rss_gib": 5.25,
                                                      "disk_gib": 7.5, "sample_s": 1.0, "commit": "abcdef0123",
                                                      "cpu": {**cpu, "bf16_feature": "amx_bf16"}})
    fileio.write_json(tmp_path / "tiny" / "timing.json", {"cold": {**cold, "cpu": cpu}})
    text, hw = readme.timing_block(), readme.hardware_block()
    assert "`make test`: Some CPU @ 2.60GHz with `amx_bf16`" in text
    assert "tiny cold: Some CPU @ 2.60GHz without bf16 units" in text
    assert "peaked at 5.25 GiB resident" in hw and "7.5 GiB on disk" in hw and "commit abcdef0" in hw
    # no cold record, but the parts are recorded: the runs' training time and an executed notebook's duration
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"duration": 600.0}
    (tmp_path / "smollm2" / "executed").mkdir()
    nbformat.write(nb, tmp_path / "smollm2" / "executed" / "01_x.ipynb")
    fileio.write_json(tmp_path / "smollm2" / "timing.json",
                      {"last": {"runs_seconds": {"n": 2, "sum_s": 3000.0, "max_s": 1500.0}}})
    assert ("| `make reproduce PROFILE=smollm2` | not recorded; its recorded parts add up to about 30 min "
            "([docs/pipeline.md](docs/pipeline.md)) | not recorded |") in readme.timing_block()


def test_links_of_a_block_are_made_relative_to_its_page():
    body = "[r](reports/tiny/claims.md), ![f](figures/tiny/x.png), [w](https://example.org/a), [s](#a)"
    assert readme.relink(body, paths.ROOT / "README.md") == body
    assert readme.relink(body, paths.ROOT / "docs" / "results.md") == (
        "[r](../reports/tiny/claims.md), ![f](../figures/tiny/x.png), [w](https://example.org/a), [s](#a)")


def test_an_unknown_or_missing_block_is_refused():
    with pytest.raises(ValueError, match="unknown generated block"):
        readme.render_document("<!-- BEGIN:nope -->\n<!-- END:nope -->\n", {"timing": "x"})
    with pytest.raises(ValueError, match="no block 'timing'"):
        readme.render("text without markers", {"timing": "x"})


def test_findings_and_rule_change_blocks_read_the_report(monkeypatch):
    report = {"profile": "tiny", "claims": [_entry("C1", "inconclusive", "inconclusive"),
                                            _entry("C4", "refuted", "rule not met", ["under y = xW …"])]}
    monkeypatch.setattr(readme_details, "_tiny_report", lambda: report)
    monkeypatch.setattr(readme_details.claims, "load_report", lambda p: report)
    monkeypatch.setattr(readme_details.paths, "REPORTS", readme_details.paths.ROOT / "reports")
    lines = readme_details.findings_block().splitlines()
    # the deciding quantity (not the first measured one), with the power of an inconclusive verdict
    assert lines[0].startswith("* **C1**") and "**inconclusive** (MDE 0.31; 175 seeds for θ = 0.02)" in lines[0]
    assert "q: 0.038, bootstrap [0.021, 0.056], t [-0.007, 0.082] (n = 5)" in lines[0] and "other" not in lines[0]
    assert "fragile" not in lines[0] and "fragile: under y = xW" in lines[1] and "MDE" not in lines[1]
    rule = readme_details.rule_change_block(("tiny",))
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
            and "within the 90-minute budget; the run again with nothing changed is not recorded" in block)
    fileio.write_json(tmp_path / "smollm2" / "timing.json",
                      {"cold": {**cold, "total_s": 100 * 60.0}, "warm": {"total_s": 75.0}})
    block = readme_real_model.real_model_claims_block()
    assert ("over the 90-minute budget (within the 120-minute hard cap); again with nothing changed: **75 s**, "
            "over the 1-minute budget") in block
    fileio.write_json(tmp_path / "smollm2" / "timing.json", {"cold": {**cold, "total_s": 121 * 60.0}})
    assert "over the 90-minute budget (over the 120-minute hard cap)" in readme_real_model.real_model_claims_block()


def test_without_a_cold_record_the_block_adds_up_the_recorded_parts(tmp_path, monkeypatch):
    import nbformat

    reports = {p: {"profile": p, "claims": [{**_entry("C1", "holds", "holds"), "seeds": 5}]}
               for p in ("tiny", "smollm2")}
    monkeypatch.setattr(readme.paths, "REPORTS", tmp_path)
    monkeypatch.setattr(readme.claims, "load_report", lambda p: reports[p])
    for p in reports:
        fileio.write_json(tmp_path / p / "claims.json", reports[p])
    executed = tmp_path / "smollm2" / "executed"
    executed.mkdir(parents=True)
    for stem, seconds in (("01_a", 1200.0), ("03_b", 1800.0), ("05_c", 600.0)):
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"duration": seconds}
        nbformat.write(nb, executed / f"{stem}.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), executed / "07_d.failed.ipynb")  # a failed copy counts for nothing
    last = {"runs_seconds": {"n": 13, "sum_s": 12600.0, "max_s": 1080.0}, "cpu": {"model": "Some CPU"}}
    fileio.write_json(tmp_path / "smollm2" / "timing.json", {"last": last})
    block = readme_real_model.real_model_claims_block()
    # (12600 + 3600) / 2 s = 135 min: over the budget and over the hard cap
    assert "13 GRPO runs, 210 min of training in all" in block and "the longest 18.0 min" in block
    assert "3 notebooks, 60 min in all" in block and "the longest 03_b, 30.0 min" in block
    assert "about **135 min** for them, over the 90-minute budget (over the 120-minute hard cap)" in block
    assert "(CPU of the last record: Some CPU)" in block and "nothing changed" not in block
    fileio.write_json(tmp_path / "smollm2" / "timing.json", {"last": last, "warm": {"total_s": 22.0}})
    assert ("Again with nothing changed: **22 s**, within the 1-minute budget"
            in readme_real_model.real_model_claims_block())
    fileio.write_json(tmp_path / "smollm2" / "timing.json", {"last": {"cpu": {}}})  # no parts: no line
    assert "No cold" not in readme_real_model.real_model_claims_block()


def test_recorded_run_seconds_sums_the_done_markers(tmp_path, monkeypatch):
    from rlvr_lowrank.pipeline import reproduce
    from rlvr_lowrank.training import config, runs

    monkeypatch.setattr(runs.paths, "RUNS", tmp_path)
    seeds = config.seeds_of("smoke", "full")
    for i, seed in enumerate(seeds):
        fileio.write_json(runs.run_dir("smoke", "full", seed) / "DONE", {"seconds": 10.0 * (i + 1)})
    got = reproduce.recorded_run_seconds("smoke", {"full", "pr1s_trunc_k10"})  # the PR1S arm has no DONE here
    n = len(seeds)
    assert got == {"n": n, "sum_s": 10.0 * n * (n + 1) / 2, "max_s": 10.0 * n}


def test_provenance_marks_reports_whose_run_hashes_are_not_todays(tmp_path, monkeypatch):
    from rlvr_lowrank.training import config, runs

    monkeypatch.setattr(readme.paths, "REPORTS", tmp_path)
    today = {f"full/seed{s}": runs.run_hash(runs.identity(config.resolve("smoke", "full", s))) for s in (0, 1)}
    fileio.write_json(tmp_path / "smoke" / "c0.json", {"profile": "smoke", "runs": today})
    fileio.write_json(tmp_path / "smoke" / "claims.json", {"profile": "smoke", "code_commit": "abc123"})
    block = readme_details.provenance_block(("smoke",))
    assert "| smoke | commit `abc123` | the same code: all 2 recorded runs have today's identity |" in block
    fileio.write_json(tmp_path / "smoke" / "c1.json", {"profile": "smoke", "runs": {**today, "full/seed1": "0ld"}})
    block = readme_details.provenance_block(("smoke",))
    assert "**computed by earlier code**" in block and "1 of 2 recorded runs would get another identity" in block
    fileio.write_json(tmp_path / "smoke" / "c2.json", {"profile": "smoke"})
    assert "c2.json record no run hashes" in readme_details.provenance_block(("smoke",))
