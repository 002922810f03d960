"""The claims report: reports/<profile>/claims.json and claims.md from the notebooks' cN.json.

Which notebook and figure back each claim is the pipeline's declaration (notebooks.by_claim); what
each claim reports (its headline quantities) is declared in its own module.
"""
from __future__ import annotations

import subprocess

from .. import fileio, paths
from ..training import config, runs
from . import base, c0, c1, c2, c3, c4, notebooks
from .base import RUNS_KEY, WHY_TIGHTENED
from .stats import fmt_interval

MODULES = {m.CLAIM.id: m for m in (c0, c1, c2, c3, c4)}
CLAIMS = {cid: m.CLAIM for cid, m in MODULES.items()}
NOT_RUN = "not run"
# The longer-budget variant of a profile: a claim whose verdict differs there is marked fragile.
BUDGET_VARIANT = {"tiny": "tiny-long"}


# Keys of a profile that say how the pipeline reads the runs, not how they are made; a change there
# re-executes the notebooks (reproduce.fingerprint hashes the whole YAML) without staling the report.
NOT_HASHED = ("arms", "notebooks")


def profile_hash(profile: str) -> str:
    """Hash of the profile's run settings; a claims report records it so a stale report is detected.
    The profile's name is hashed with its settings (two identical YAMLs are still two profiles)."""
    settings = {k: v for k, v in config.load_profile(profile).items() if k not in NOT_HASHED}
    return fileio.config_hash({**settings, "profile": profile})


def notebook_command(stem: str, profile: str) -> str:
    return f"python -m rlvr_lowrank notebook {stem} --profile {profile}"


def _dig(d: dict, keys: tuple) -> dict | None:
    """The summarize() dict at a key path of a cN.json, or None where it is absent."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d if isinstance(d, dict) and "mean" in d else None


class StaleResultError(ValueError):
    """A claim's result was computed from runs that are not the current ones."""


def claim_entry(cid: str, profile: str, allow_stale: bool = False) -> dict:
    """One claim of the report: its statement, test and thresholds, where it is measured, and what
    its cN.json says ("not run", with the command that makes it, when that file is missing)."""
    claim, nb = CLAIMS[cid], notebooks.by_claim(cid)
    entry = {"id": cid, "paper": claim.paper, "test": claim.test, "thresholds": claim.thresholds,
             "notebook": f"notebooks/{nb.stem}.ipynb", "figure": f"figures/{profile}/{nb.figures[0]}.png"}
    path = paths.report_source(profile, f"{cid.lower()}.json")
    if not path.exists():
        entry.update(verdict=NOT_RUN, why=f"reports/{profile}/{path.name} is missing: run "
                                          f"`{notebook_command(nb.stem, profile)}`", measured=[], seeds=0)
        return entry
    res = fileio.read_json(path)
    if res.get("profile") != profile:
        raise ValueError(f"{path} was written for profile {res.get('profile')!r}, not {profile!r}; "
                         f"re-run `{notebook_command(nb.stem, profile)}`")
    recorded = res.pop(RUNS_KEY, None)
    stale = ("it records no run hashes (an earlier version of this project wrote it)" if recorded is None else
             (lambda bad: f"its runs {bad[:3]} have changed since (config, base model, data or training code)"
              if bad else None)(runs.stale_hashes(profile, recorded)))
    if stale and not allow_stale:
        raise StaleResultError(f"{path} is stale: {stale}; re-run `{notebook_command(nb.stem, profile)}` "
                               f"(or `make reproduce PROFILE={profile}`)")
    if stale:
        entry["stale"] = stale
    module = MODULES[cid]
    v = base.rejudge(module, res)  # the rule in force, from the stored summaries (never a stored verdict string)
    measured = []
    for label, keys in claim.quantities:
        s = _dig(res, keys)
        if s is not None:
            measured.append({"quantity": label, "mean": s["mean"], "ci": list(s["ci"]),
                             "t_ci": list(s["t_ci"]) if s.get("t_ci") else None, "n": s["n"],
                             "thresholds": [claim.thresholds[k] for k in claim.lines.get(label, ())]})
    fragile = base.sensitivity(module, res)
    other = budget_verdict(cid, profile)
    if other is not None and other[1] != v["verdict"]:
        fragile.append(f"the {other[0]} budget gives '{other[1]}'")
    entry.update(verdict=v["verdict"], verdict_bootstrap_only=v["verdict_bootstrap_only"], why=v.get("why", ""),
                 measured=measured, seeds=max((m["n"] for m in measured), default=0), fragile=fragile,
                 notes=base.notes(module, res))
    return entry


def budget_verdict(cid: str, profile: str) -> tuple[str, str] | None:
    """(variant profile, its verdict under the rule in force) for the longer-budget variant of
    ``profile``, recomputed from its stored cN.json; None where there is no variant or no file."""
    other = BUDGET_VARIANT.get(profile)
    path = paths.REPORTS / other / f"{cid.lower()}.json" if other else None
    if path is None or not path.exists():
        return None
    return other, base.rejudge(MODULES[cid], fileio.read_json(path))["verdict"]


def code_commit() -> str | None:
    """The git commit whose code wrote this report (``<sha> + uncommitted changes`` when lib/ differs from it),
    or None outside a git checkout. The README names it beside each profile's results."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=paths.ROOT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lib"], cwd=paths.ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{sha} + uncommitted changes" if dirty else sha


def provenance(profile: str) -> dict:
    """Whether a tracked profile's reports were computed by today's code: the run hashes its cN.json files
    recorded against the ones today's config, base model, data and training code give (runs.stale_hashes;
    no run directory needed), and the commit that wrote its claims report."""
    recorded, unrecorded = {}, []
    for cid in CLAIMS:
        path = paths.REPORTS / profile / f"{cid.lower()}.json"
        if path.exists():
            runs_of = fileio.read_json(path).get(RUNS_KEY)
            if runs_of is None:
                unrecorded.append(path.name)
            else:
                recorded.update(runs_of)
    claims_json = paths.REPORTS / profile / "claims.json"
    commit = fileio.read_json(claims_json).get("code_commit") if claims_json.exists() else None
    stale = runs.stale_hashes(profile, recorded)
    return {"profile": profile, "commit": commit, "runs": len(recorded), "stale": len(stale),
            "unrecorded": unrecorded, "current": not stale and not unrecorded and bool(recorded)}


def build_report(profile: str, allow_stale: bool = False) -> dict:
    """Gather C0–C4 from ``reports/<profile>/c*.json`` into ``claims.json`` and ``claims.md``.

    A claim whose notebook has not written its file is reported as "not run" with the command that
    produces it; a file written for another profile is an error (never silently mixed); a file whose
    recorded run hashes are not the current ones is refused (StaleResultError, naming the notebook to
    re-run), or with ``allow_stale`` kept and marked stale in the report (a stored result of an earlier
    version, re-judged but not re-run).
    """
    entries = [claim_entry(cid, profile, allow_stale) for cid in CLAIMS]
    report = {"profile": profile, "config_hash": profile_hash(profile), "code_commit": code_commit(), "claims": entries}
    if any(e.get("stale") for e in entries):
        report["stale"] = sorted({e["stale"] for e in entries if e.get("stale")})
    out_dir = paths.report_dir(profile)
    fileio.write_json(out_dir / "claims.json", report)
    fileio.write_text(out_dir / "claims.md", report_markdown(report))
    return report


def fmt_quantity(m: dict) -> str:
    """One measured quantity of the report: mean, both intervals and its own number of seeds."""
    t = {"t_ci": m["t_ci"]} if m.get("t_ci") else {}
    return (f"{m['quantity']}: {m['mean']:.3f}, bootstrap {fmt_interval({'ci': m['ci']})}, "
            f"t {fmt_interval(t, 't_ci')} (n = {m['n']})")


def _fmt_measured(measured: list[dict]) -> str:
    return "; ".join(fmt_quantity(m) for m in measured) if measured else "—"


def _seeds(c: dict) -> str:
    ns = list(dict.fromkeys(m["n"] for m in c["measured"]))
    return " / ".join(str(n) for n in ns) if ns else str(c["seeds"])


def verdict_cell(c: dict) -> str:
    """The verdict word, with "fragile: …" where a documented alternative reading flips it."""
    cell = f"**{c['verdict']}**"
    if c.get("fragile"):
        cell += " — fragile: " + "; ".join(c["fragile"])
    return cell


def results_table(report: dict) -> str:
    """The markdown results table (README and claims.md): one row per claim."""
    lines = ["| claim | measured (mean, 95% bootstrap CI, 95% t-interval) | seeds | verdict | "
             "earlier rule (bootstrap only) | notebook → figure |", "|---|---|---|---|---|---|"]
    for c in report["claims"]:
        nb = c["notebook"].split("/")[-1]
        lines.append(f"| {c['id']} | {_fmt_measured(c['measured'])} | {_seeds(c)} | {verdict_cell(c)} | "
                     f"{c.get('verdict_bootstrap_only', '—')} | `{nb}` → `{c['figure'].split('/')[-1]}` |")
    notes = [f"{c['id']}: {n}" for c in report["claims"] for n in c.get("notes", [])]
    if notes:
        lines += [""] + [f"* {n}" for n in notes]
    return "\n".join(lines)


RULE = ("A threshold stated on an interval bound is met only when both the percentile-bootstrap CI and the "
        "Student-t interval meet it; the verdict is inconclusive when one does and the other does not. A threshold "
        "on a mean alone (C3) is unchanged.")


def rule_change_table(report: dict) -> str:
    """Once per claim: the verdict under the earlier rule (bootstrap CI alone) → under the rule in force."""
    lines = [f"The verdict rule was tightened: {RULE} Why: {WHY_TIGHTENED}.", "",
             f"| claim | earlier verdict (bootstrap only) → verdict (both intervals), profile {report['profile']} |",
             "|---|---|"]
    for c in report["claims"]:
        old = c.get("verdict_bootstrap_only", c["verdict"])
        lines.append(f"| {c['id']} | {old} → **{c['verdict']}**" + (" (changed)" if old != c["verdict"] else "") + " |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    lines = [f"# Claims report — profile `{report['profile']}` (config hash {report['config_hash']})", "",
             "Generated by `python -m rlvr_lowrank claims` from the notebooks' outputs; do not edit.", ""]
    if report.get("stale"):
        lines += ["**Stale results, re-judged but not re-run:** " + "; ".join(report["stale"]) + ". Re-run "
                  f"`make reproduce PROFILE={report['profile']}` to measure them with the current code.", ""]
    lines += [results_table(report), "", "## The verdict rule", "", rule_change_table(report), ""]
    for c in report["claims"]:
        lines += [f"## {c['id']}: {c['verdict']}", "", f"**Paper.** {c['paper']}", "", f"**Test.** {c['test']}", "",
                  f"**Thresholds.** {c['thresholds']}", "", f"**Measured.** {_fmt_measured(c['measured'])}."
                  + (f" {c['why'][0].upper() + c['why'][1:]}." if c.get("why") else ""), "",
                  f"**Earlier rule (bootstrap CI alone).** {c.get('verdict_bootstrap_only', '—')}.", ""]
        if c.get("fragile"):
            lines += ["**Fragile.** " + "; ".join(c["fragile"]) + ".", ""]
        for n in c.get("notes", []):
            lines += [n, ""]
        lines += [f"Notebook `{c['notebook']}`, figure `{c['figure']}`.", ""]
    return "\n".join(lines)


def load_report(profile: str) -> dict:
    """``reports/<profile>/claims.json``, refusing one from another profile or an outdated config."""
    path = paths.report_source(profile, "claims.json")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m rlvr_lowrank claims --profile {profile}` "
                                f"(or `make reproduce PROFILE={profile}`)")
    report = fileio.read_json(path)
    if report.get("profile") != profile:
        raise ValueError(f"{path} belongs to profile {report.get('profile')!r}, not {profile!r}")
    if report.get("config_hash") != profile_hash(profile):
        raise ValueError(f"{path} was made with config hash {report.get('config_hash')}, but configs/{profile}.yaml "
                         f"now hashes to {profile_hash(profile)}: re-run `make reproduce PROFILE={profile}`")
    return report
