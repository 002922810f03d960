"""Generated blocks of the README and the docs: every number on those pages is written here from pipeline outputs.

Blocks live between ``<!-- BEGIN:<name> -->`` and ``<!-- END:<name> -->`` markers in README.md, START_HERE.md
or a page of docs/ (``documents()``), each block in exactly one page; ``python -m rlvr_lowrank readme``
rewrites them all and ``tests/test_readme.py`` fails when a page and the files it quotes disagree
(showyourwork's rule: numbers are never retyped). This module holds the block machinery and the README's own
blocks (hardware, the two commands' times, the results table of every tracked profile, one figure per claim);
the docs pages' blocks are in pipeline.readme_details (tiny profiles), pipeline.readme_real_model
(SmolLM2) and pipeline.readme_speed (SmolLM2's speed), the shared formatting in pipeline.readme_tables.
"""
from __future__ import annotations

import functools
import os
import re
import tomllib
from pathlib import Path

from .. import claims, fileio, paths
from ..claims import notebooks
from ..claims.verdict import BELOW, HOLDS, INCONCLUSIVE, REFUTED
from ..training import config
from . import readme_design as design
from . import readme_details as details
from . import readme_real_model as real_model
from . import readme_speed as speed
from . import readme_tables
from .readme_tables import NOT_YET, TRACKED_PROFILES, claim_of, default_profile, provenance, timing


def _reproduce(profile: str) -> str:
    return f"`make reproduce` ({profile})" if profile == default_profile() else f"`make reproduce PROFILE={profile}`"


TEST_TIMING = "test_timing.json"  # reports/: a whole `make test` from a clean clone (pipeline.test_timing)


def timing_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """The two commands' measured times: `make test` (reports/test_timing.json, where recorded) and
    `make reproduce` of each tracked profile, cold and warm (reports/<profile>/timing.json)."""
    test = paths.REPORTS / TEST_TIMING
    t = fileio.read_json(test) if test.exists() else None
    lines = ["| command | from nothing | again, nothing changed |", "|---|---|---|",
             "| `make test` | " + (f"**{t['total_s'] / 60:.1f} min** on {t['cpu_count']} cores" if t else
                                  "not recorded yet") + " | — |"]
    setups = set()
    for p in profiles:
        rec = timing(p)
        c, w = rec.get("cold"), rec.get("warm")
        floor = None if c else real_model.floor_seconds(p)
        if not c and not w and not floor:
            continue
        cold = (f"**{c['total_s'] / 60:.1f} min**: {c['setup_s']:.0f} s set-up, then {c['runs_trained']} GRPO runs "
                f"and {c['notebooks_executed']} notebooks in {c['jobs_wall_s']:.0f} s" if c else
                f"not recorded; its recorded parts add up to about {floor / 60:.0f} min "
                f"([docs/pipeline.md](docs/pipeline.md))" if floor else "not recorded")
        warm = (f"**{w['total_s']:.0f} s** ({w['runs_cached']} runs and {w['notebooks_cached']} notebooks reused)"
                if w else "not recorded")
        lines.append(f"| {_reproduce(p)} | {cold} | {warm} |")
        setups |= {(r["processes"], r["cpu_count"]) for r in (c, w) if r}
    if len(lines) == 3:
        return "\n".join(lines) + "\n\n_No `make reproduce` recorded yet (it writes reports/<profile>/timing.json)._"
    how = "; ".join(f"{n} processes on {k} cores" for n, k in sorted(setups))
    cpus = ([f"`make test`: {cpu_label(t)}"] if t else []) + [
        f"{p} {kind}: {cpu_label(rec)}" for p in profiles for kind, rec in timing(p).items()
        if kind in ("cold", "warm") and isinstance(rec, dict)]
    return "\n".join(lines) + (f"\n\nMeasured by `make reproduce` itself ({how}; `reports/<profile>/timing.json`); "
                               "the set-up is creating `.venv`, the GRPO runs are the training. The CPU of each "
                               "record (a time holds for its CPU only): " + "; ".join(cpus) + ".")


def cpu_label(record: dict) -> str:
    """The measuring CPU of a timing record (reproduce.cpu_record), or "not recorded" for older records."""
    cpu = record.get("cpu") or {}
    if not cpu.get("model"):
        return "not recorded"
    return cpu["model"] + (f" with `{cpu['bf16_feature']}`" if cpu.get("bf16_feature") else " without bf16 units")


def _requires_python() -> str:
    return tomllib.loads((paths.ROOT / "pyproject.toml").read_text())["project"]["requires-python"]


def _precision(profile: str) -> str:
    """The precision the profile's deciding arms (Full RL and its PR1S arm) compute in."""
    arms = config.load_profile(profile).get("arms") or {}
    names = [arms.get("full", "full")] + ([arms["pr1s"]] if arms.get("pr1s") else [])
    got = {config.resolve(profile, e, config.seeds_of(profile, e)[0]).train.get("precision") or "fp32" for e in names}
    return " and ".join(sorted(got))


def hardware_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """What a machine needs: cores and machine type of the recorded runs, Python (pyproject.toml), whether a
    bf16 CPU is needed (the deciding arms' precision) and whether the measuring CPU had one (the fast-path
    benchmark, reports/smollm2/bench_fast_path.json)."""
    present = [p for p in profiles if (paths.CONFIGS / f"{p}.yaml").exists()]
    cores = sorted({r["cpu_count"] for p in present for r in timing(p).values() if isinstance(r, dict)
                    and "cpu_count" in r})
    machine = (real_model.smollm2_report("bench_training.json") or {}).get("machine")
    fast = real_model.smollm2_report("bench_fast_path.json") or {}
    precision = {p: _precision(p) for p in present}
    fp32 = all(v == "fp32" for v in precision.values())
    lines = [("* **Processor:** a CPU; no GPU is used. "
              + (f"Every time below was measured on {' or '.join(map(str, cores))} cores"
                 + (f" ({machine})" if machine else "") + ". " if cores else ""))
             + ("The deciding runs of " + ", ".join(present) + " compute in fp32, so a CPU without bf16 units "
                "reproduces them" if fp32 else "Deciding runs compute in " + ", ".join(
                    f"{p}: {v}" for p, v in precision.items()))
             + (f"; the CPU of the fast-path benchmark had them (`{fast['bf16_feature']}`), used only by the "
                "optional fast training path ([docs/speed.md](docs/speed.md)); each time below names its own CPU "
                "where recorded." if fast.get("bf16_feature") else "."),
             f"* **Python** {_requires_python()} (`pyproject.toml`). `make` creates `.venv` with the pinned packages "
             "of `requirements.txt` on first use; conda and `pip install -e .`: [docs/pipeline.md](docs/pipeline.md).",
             memory_line()]
    return "\n".join(lines)


def memory_line() -> str:
    """RAM and disk of `make test` from a clean clone (reports/test_timing.json: pipeline.test_timing)."""
    path = paths.REPORTS / TEST_TIMING
    t = fileio.read_json(path) if path.exists() else {}
    if "peak_rss_gib" not in t:
        return ("* **Memory and disk:** not recorded yet (`python -m rlvr_lowrank time-test` measures `make test` "
                "from a clean clone).")
    return (f"* **Memory and disk:** `make test` from a clean clone peaked at {t['peak_rss_gib']} GiB resident (all "
            f"its processes together, sampled every {t['sample_s']:g} s, so a shorter peak can be missed) and left "
            f"{t['disk_gib']} GiB on disk (`.venv`, the smoke runs, executed notebooks); "
            f"`reports/{TEST_TIMING}`, commit {t['commit'][:7]}.")


DECISIVE = (HOLDS, REFUTED, BELOW)
MODEL_LABELS = {"smollm2-gguf": "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)"}


def _reports(profiles: tuple[str, ...]) -> dict[str, dict]:
    return {p: readme_tables.load_report(p) for p in profiles if (paths.REPORTS / p / "claims.json").exists()}


def model_label(model: str) -> str:
    """A base model for a reader: a shipped model directory with its parameter count (its metrics.json), or
    the name of a known model."""
    metrics = paths.ROOT / model / "metrics.json"
    if metrics.exists():
        return f"`{Path(model).name}` ({fileio.read_json(metrics)['n_parameters'] / 1e6:.2f}M parameters)"
    return MODEL_LABELS.get(model, f"`{model}`")


def verdict_mark(c: dict) -> str:
    """The verdict class in bold, after the earlier rules' verdicts where they differ: bootstrap CI alone →
    both intervals (two-valued) → the class in force, repeated values dropped."""
    chain = []
    for v in (c.get("verdict_bootstrap_only"), c.get("verdict_two_valued"), c["verdict"]):
        if v and (not chain or chain[-1] != v):
            chain.append(v)
    return " → ".join(chain[:-1] + [f"**{chain[-1]}**"])


def _seeds(c: dict) -> str:
    ns = list(dict.fromkeys(m["n"] for m in c.get("measured", [])))
    return " / ".join(map(str, ns)) if ns else str(c.get("seeds", "—"))


def results_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """The README's one results table: per claim and tracked profile the verdict (old → new where the rule
    changed it), the deciding quantity with both intervals, the minimum detectable effect and the caveat
    (model, steps, seeds, reports of earlier code, fragile readings), from reports/<profile>/claims.json."""
    reports = _reports(profiles)
    if not reports:
        return NOT_YET
    lines = [f"* **{cid}**: {claim.plain}." for cid, claim in claims.CLAIMS.items()]
    lines += ["", "| claim | profile | verdict | deciding quantity: mean, 95% intervals (n seeds) | minimum detectable "
              "effect | caveat: model, steps × completions, seeds |", "|---|---|---|---|---|---|"]
    for cid in claims.CLAIMS:
        for p, r in reports.items():
            c = claim_of(r, cid)
            if c is None:
                continue
            d = r.get("design") or {}
            caveat = ([f"{model_label(d['model'])}, {d['steps']} × {d['completions_per_step']}"] if d else []) \
                + [f"{_seeds(c)} seeds"]
            # a report re-judged with stale claims marks each one (claims.json "stale"); otherwise the profile's runs
            if c.get("stale") or (not r.get("stale") and not provenance(p)["current"]):
                caveat.append("computed by earlier code")
            if c.get("fragile"):
                caveat.append("fragile: " + "; ".join(c["fragile"]))
            lines.append(f"| {cid} | {p} | {verdict_mark(c)} | {claims.report.deciding(c)} | "
                         f"{claims.report.power_cell(c)} | {'; '.join(caveat)} |")
    lines += [""] + [f"* {p}: {claims.report.design_line(r['design'])}." for p, r in reports.items() if r.get("design")]
    return "\n".join(lines)


FIGURE_CAPTIONS = {
    "C0": "the models built from parts of the full-RL update, beside the base and the full-RL model",
    "C1": "training reward and test accuracy over training, Full RL vs PR1S",
    "C2": "math, the knowledge probe and the second skill of the base, full-RL and rank-1 models",
    "C3": "the fraction of weight matrices with heavy-tailed spectra, against the threshold",
    "C4": "how closely u1 and v1 of the update point along their final direction over training",
}


def figure_profile(cid: str, reports: dict[str, dict]) -> str | None:
    """The profile whose figure of a claim to show: a decisive verdict (holds, refuted, below threshold) before an
    inconclusive one before an untestable one, then reports of today's code, then more seeds, then the order of
    the profiles; only profiles whose figure file exists."""
    fig = notebooks.by_claim(cid).figures[0]
    candidates = []
    for i, (p, r) in enumerate(reports.items()):
        c = claim_of(r, cid)
        if c is None or not (paths.FIGURES / p / f"{fig}.png").exists():
            continue
        klass = 0 if c["verdict"] in DECISIVE else 1 if c["verdict"] == INCONCLUSIVE else 2
        seeds = max((m["n"] for m in c.get("measured", [])), default=0)
        candidates.append(((klass, not provenance(p)["current"], -seeds, i), p))
    return min(candidates)[1] if candidates else None


def figures_block(profiles: tuple[str, ...] = TRACKED_PROFILES) -> str:
    """One embedded figure per claim (the first figure of the notebook that decides it) from the profile that
    decides it best (``figure_profile``), with a caption naming that profile and its verdict."""
    reports = _reports(profiles)
    lines = []
    for cid in claims.CLAIMS:
        p = figure_profile(cid, reports)
        if p is None:
            lines += [f"*{cid}: no figure yet (`make reproduce` draws it).*", ""]
            continue
        fig, c = notebooks.by_claim(cid).figures[0], claim_of(reports[p], cid)
        lines += [f"**{cid}** (profile {p}, {c['verdict']}): {FIGURE_CAPTIONS[cid]}.",
                  f"![{cid}: {FIGURE_CAPTIONS[cid]}](figures/{p}/{fig}.png)", ""]
    return "\n".join(lines[:-1])



BLOCKS = {"hardware": hardware_block, "timing": timing_block, "results": results_block, "figures": figures_block,
          "provenance": details.provenance_block, "robustness": details.robustness_block,
          "budget": details.budget_block, "base-metrics": details.base_metrics_block, "claims": details.claims_block,
          **{cid.lower(): functools.partial(details.claim_block, module) for cid, module in claims.MODULES.items()},
          "dynamics": details.dynamics_block, "rule-change": details.rule_change_block,
          "findings": details.findings_block,
          "smollm2-base": real_model.smollm2_base_block, "smollm2-claims": real_model.real_model_claims_block,
          "smollm2-bf16": speed.smollm2_bf16_block, "smollm2-bench": speed.smollm2_bench_block,
          "smollm2-profile": speed.smollm2_profile_block, "smollm2-sampler": speed.smollm2_sampler_block,
          "smollm2-fast-path": speed.smollm2_fast_path_block,
          "smollm2-fast-curves": speed.smollm2_fast_curves_block,
          "smollm2-lr": real_model.smollm2_lr_block, "smollm2-task": design.task_choice_block,
          "smollm2-explore": design.exploration_block, "smollm2-final": design.final_runs_block}
MARKER = re.compile(r"<!-- BEGIN:([A-Za-z0-9_-]+) -->")


def documents() -> list[Path]:
    """The pages that may hold generated blocks: README.md, START_HERE.md and docs/*.md."""
    pages = [paths.ROOT / "README.md", paths.ROOT / "START_HERE.md", *sorted((paths.ROOT / "docs").glob("*.md"))]
    return [p for p in pages if p.exists()]


def block_names(text: str) -> list[str]:
    return MARKER.findall(text)


def render(text: str, blocks: dict[str, str]) -> str:
    for name, body in blocks.items():
        pat = re.compile(rf"(<!-- BEGIN:{re.escape(name)} -->\n).*?(<!-- END:{re.escape(name)} -->)", re.S)
        if not pat.search(text):
            raise ValueError(f"no block {name!r} (markers <!-- BEGIN:{name} --> ... <!-- END:{name} -->)")
        text = pat.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)
    return text


LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def relink(body: str, page: Path) -> str:
    """A block's links are written from the repository root; on a page in a subdirectory they are rewritten to
    be relative to that page (``reports/x`` on docs/y.md → ``../reports/x``). Absolute URLs and anchors stay."""
    rel = os.path.relpath(paths.ROOT, Path(page).resolve().parent)
    if rel == ".":
        return body

    def fix(m):
        target = m.group(2)
        if re.match(r"[a-z]+:|#|/", target):
            return m.group(0)
        return m.group(1) + Path(os.path.normpath(os.path.join(rel, target))).as_posix() + m.group(3)

    return LINK.sub(fix, body)


def render_document(text: str, blocks: dict[str, str], page: Path | None = None) -> str:
    """Rewrite every generated block a page holds (links made relative to ``page``); a marker of no known block
    is an error."""
    names = block_names(text)
    unknown = sorted(set(names) - set(blocks))
    if unknown:
        raise ValueError(f"unknown generated block(s) {unknown}; known: {sorted(blocks)}")
    return render(text, {n: relink(blocks[n], page) if page else blocks[n] for n in names})


def placement(pages: list[Path] | None = None) -> dict[str, list[str]]:
    """Block name → the pages (relative paths) that hold it."""
    where: dict[str, list[str]] = {}
    for page in pages or documents():
        for name in block_names(page.read_text()):
            where.setdefault(name, []).append(str(page.relative_to(paths.ROOT)))
    return where


def generated_blocks() -> dict[str, str]:
    with readme_tables.computed_once():
        return {name: fn() for name, fn in BLOCKS.items()}


def update(path: Path | None = None) -> bool:
    """Rewrite the generated blocks of one page, or of every page (``documents()``); True when a file changed."""
    blocks, changed = generated_blocks(), False
    for page in [Path(path)] if path else documents():
        old = page.read_text()
        new = render_document(old, blocks, page)
        if new != old:
            fileio.write_text(page, new)
            changed = True
    return changed
