"""The claims report: registry, claims.json/claims.md from the cN.json files, staleness checks, and the
cN.json schemas against the committed tiny reports."""
import pytest

from rlvr_lowrank import claims, fileio, paths
from rlvr_lowrank.claims import notebooks


@pytest.fixture
def reports_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    return tmp_path


def test_build_report_marks_missing_claims_not_run_and_reads_the_rest(reports_dir):
    fileio.write_json(reports_dir / "smoke" / "c3.json", {"profile": "smoke", "runs": {}, "verdict": "holds",
                                                      "arms": ["full"], "n_matrices": 28,
                                                      "fraction_rl": claims.summarize([0.6, 0.7, 0.65])})
    report = claims.build_report("smoke")
    by_id = {c["id"]: c for c in report["claims"]}
    assert [c["id"] for c in report["claims"]] == ["C0", "C1", "C2", "C3", "C4"]
    # recomputed from the summaries (the stored verdict string is ignored): 0.65 over 28 matrices, Wilson
    # [0.47, 0.80], lies below 0.9 and above the no-effect level 0
    assert by_id["C3"]["verdict"] == "below threshold" and by_id["C3"]["verdict_two_valued"] == "rule not met"
    assert by_id["C3"]["seeds"] == 3 and by_id["C3"]["decided_by"]["intervals"]["wilson"][1] < 0.9
    assert by_id["C3"]["measured"][0]["mean"] == pytest.approx(0.65)
    assert by_id["C0"]["verdict"] == claims.NOT_RUN and "notebook 01_rank1_dominance" in by_id["C0"]["why"]
    assert (reports_dir / "smoke" / "claims.md").read_text().startswith("# Claims report")
    assert claims.load_report("smoke")["config_hash"] == claims.profile_hash("smoke")


def test_notebook_and_figure_come_from_the_pipeline(reports_dir):
    report = claims.build_report("smoke")
    for c in report["claims"]:
        nb = notebooks.by_claim(c["id"])
        assert c["notebook"] == f"notebooks/{nb.stem}.ipynb" and c["figure"] == f"figures/smoke/{nb.figures[0]}.png"
        assert (c["thresholds"] is claims.CLAIMS[c["id"]].thresholds
                or c["thresholds"] == claims.CLAIMS[c["id"]].thresholds)


def test_report_refuses_other_profile_and_stale_config(reports_dir):
    fileio.write_json(reports_dir / "smoke" / "c1.json", {"profile": "tiny", "verdict": "holds"})
    with pytest.raises(ValueError, match="written for profile 'tiny'"):
        claims.build_report("smoke")
    fileio.write_json(reports_dir / "smoke" / "claims.json",
                      {"profile": "smoke", "config_hash": "000000000000", "claims": []})
    with pytest.raises(ValueError, match="config hash"):
        claims.load_report("smoke")
    with pytest.raises(FileNotFoundError, match="claims --profile tiny"):
        claims.load_report("tiny")  # reports_dir is empty for tiny


def test_thresholds_are_the_preregistered_values():
    assert {cid: c.thresholds for cid, c in claims.CLAIMS.items()} == {
        "C0": {"min_recovery": 0.9, "min_recovery_ci_lo": 0.75, "max_random_recovery": 0.25, "min_gain": 0.1},
        "C1": {"min_reward_gap": 0.02, "max_test_gap": 0.05, "max_test_gap_ci_hi": 0.10, "last_fraction": 0.25},
        "C2": {"min_math_recovery": 0.8, "min_knowledge_drop": 0.05, "max_other_recovery": 0.5},
        "C3": {"min_fraction": 0.9},
        "C4": {"min_u_minus_v": 0.0, "min_u_minus_baseline": 0.0}}


def test_reading_thresholds_are_derived_from_the_preregistered_ones():
    # the readings added after tiny's results were seen (claims.readings): every threshold follows from a
    # pre-registered one, so none was chosen after seeing data
    from rlvr_lowrank.claims import readings

    assert readings.THRESHOLDS == {"C0": {"ni_margin_fraction": 0.1}, "C1": {"min_did": 0.02, "tost_margin": 0.05},
                                   "C2": {"min_knowledge_drop": 0.05}, "C3": {"min_fraction": 0.9},
                                   "C4": {"min_u_minus_v": 0.0, "min_above_chance": 0.0}}
    pre = {cid: c.thresholds for cid, c in claims.CLAIMS.items()}
    assert readings.THRESHOLDS["C0"]["ni_margin_fraction"] == pytest.approx(1 - pre["C0"]["min_recovery"])
    assert readings.THRESHOLDS["C1"] == {"min_did": pre["C1"]["min_reward_gap"],
                                         "tost_margin": pre["C1"]["max_test_gap"]}
    assert readings.THRESHOLDS["C2"] == {"min_knowledge_drop": pre["C2"]["min_knowledge_drop"]}  # readings_c2
    assert readings.THRESHOLDS["C3"]["min_fraction"] == pre["C3"]["min_fraction"]
    assert readings.THRESHOLDS["C4"] == {"min_u_minus_v": pre["C4"]["min_u_minus_v"],  # claims.readings_c4
                                         "min_above_chance": pre["C4"]["min_u_minus_baseline"]}
    assert set(readings.DERIVED_FROM) == {f"{c}.{k}" for c, t in readings.THRESHOLDS.items() for k in t}


@pytest.mark.parametrize("cid", ["C0", "C1", "C2", "C3", "C4"])
def test_result_dataclass_is_the_schema_of_the_committed_tiny_report(cid):
    module = claims.MODULES[cid]
    path = paths.REPORTS / "tiny" / module.RESULT.FILE
    if not path.exists():
        pytest.skip(f"{path} not produced yet")
    data = fileio.read_json(path)
    runs_read = data.pop("runs")  # provenance: the run hashes the result was computed from (checked by the report)
    assert runs_read and all(key.count("/seed") == 1 for key in runs_read)
    assert module.RESULT.from_json(data).to_json() == data  # same keys, nothing dropped or added
    assert module.readme_block(module.RESULT.from_json(data))


def test_result_refuses_unknown_keys():
    with pytest.raises(ValueError, match="not in the C3Result schema"):
        claims.c3.C3Result.from_json({"profile": "smoke", "arms": [], "seeds": [], "fraction_rl": {}, "verdict": "x",
                                      "models": {}, "surprise": 1})


def test_a_result_whose_runs_changed_is_refused_naming_the_notebook(tmp_path, monkeypatch):
    """cN.json records the run hashes it was computed from; the report refuses it once they are stale."""
    from rlvr_lowrank import fileio, paths
    from rlvr_lowrank.claims import c1, report
    from rlvr_lowrank.training import config, runs

    monkeypatch.setattr(paths, "REPORTS", tmp_path)
    (tmp_path / "smoke").mkdir()
    current = runs.run_hash(runs.identity(config.resolve("smoke", "full", 0)))
    good = {"profile": "smoke", "runs": {"full/seed0": current}}
    assert runs.stale_hashes("smoke", good["runs"]) == []
    assert runs.stale_hashes("smoke", {"full/seed0": "0ld"}) == ["full/seed0"]
    fileio.write_json(tmp_path / "smoke" / "c1.json", {"profile": "smoke", "runs": {"full/seed0": "0ld"}})
    with pytest.raises(report.StaleResultError,
                       match=r"c1.json is stale: its runs \['full/seed0'\].*notebook 02_reward_overfitting"):
        report.claim_entry("C1", "smoke")
    fileio.write_json(tmp_path / "smoke" / "c1.json", {"profile": "smoke"})
    with pytest.raises(report.StaleResultError, match="records no run hashes"):
        report.claim_entry("C1", "smoke")
    assert c1  # the claim module is importable beside the report


@pytest.mark.parametrize("profile", ["tiny", "tiny-long", "smollm2"])
def test_no_committed_claims_report_says_does_not_hold(profile):
    """The five classes replace the two-valued "does not hold" in every tracked profile's claims report."""
    for name in ("claims.md", "claims.json"):
        text = (paths.ROOT / "reports" / profile / name).read_text()
        assert "does not hold" not in text, f"reports/{profile}/{name}"
        assert any(f"**{k}**" in text or f'"{k}"' in text for k in claims.verdict.CLASSES)


def test_a_report_rebuilt_from_stored_results_says_no_does_not_hold(reports_dir, monkeypatch):
    """Rebuilt now from stored cN.json files written under the two-valued rule (tiny-long's, with every failing
    verdict spelled as that rule's first wording did, "does not hold"), the report never repeats the stored
    strings. One profile: the others' run-identity checks take seconds (the committed reports above cover them)."""
    tracked = paths.ROOT / "reports" / "tiny-long"
    old = {f.name: f.read_text().replace('"rule not met"', '"does not hold"') for f in tracked.glob("c[0-4].json")}
    assert "does not hold" in "".join(old.values())
    monkeypatch.setattr(paths, "writes_tracked", lambda p: True)  # write into reports_dir, not runs/scratch
    for name, text in old.items():
        (reports_dir / "tiny-long").mkdir(parents=True, exist_ok=True)
        (reports_dir / "tiny-long" / name).write_text(text)
    report = claims.build_report("tiny-long", allow_stale=True)
    text = "".join((reports_dir / "tiny-long" / name).read_text() for name in ("claims.md", "claims.json"))
    assert "does not hold" not in text
    assert {c["verdict"] for c in report["claims"]} <= set(claims.verdict.CLASSES)
