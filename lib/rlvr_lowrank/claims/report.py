"""The claims report: reports/<profile>/claims.json and claims.md from the notebooks' cN.json.

Which notebook and figure back each claim is the pipeline's declaration (notebooks.by_claim); what
each claim reports (its headline quantities) is declared in its own module. The verdict of each claim
is its class in the vocabulary of claims.verdict (``cN.classify`` of the stored cN.json: holds, refuted,
below threshold, inconclusive with the minimum detectable effect, untestable here), with the quantity
that decided it; the two earlier two-valued verdicts (bootstrap CI alone; both intervals) are kept in
claims.json and shown once, old → new. The settings a reader needs to read a verdict (model, steps,
seeds, the PR1S arm's K and variant) come from the profile's config (``design``), never from typed text.
"""
from __future__ import annotations

import subprocess

from .. import fileio, paths
from ..training import config, runs
from . import base, c0, c1, c2, c3, c4, notebooks, power, preregistration
from .base import RUNS_KEY, WHY_TIGHTENED
from .stats import fmt_interval
from .verdict import INCONCLUSIVE, INTERVAL_LABELS, UNTESTABLE

MODULES = {m.CLAIM.id: m for m in (c0, c1, c2, c3, c4)}
CLAIMS = {cid: m.CLAIM for cid, m in MODULES.items()}
NOT_RUN = "not run"
# The longer-budget variant of a profile: a claim whose verdict differs there is marked fragile.
BUDGET_VARIANT = {"tiny": "tiny-long"}


# Keys of a profile that say how the pipeline reads the runs, not how they are made; a change there
# re-executes the notebooks (reproduce.fingerprint hashes the whole YAML) without staling the report.
NOT_HASHED = ("arms", "notebooks", "preregistration")


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


def design(profile: str) -> dict:
    """The settings of the profile's deciding arms, from its config: base model, optimizer steps,
    completions per step, seeds, and the PR1S arm's K and variant (None where a profile has no such arm)."""
    arms = config.load_profile(profile).get("arms") or {}
    full = arms.get("full", "full")
    cfg = config.resolve(profile, full, config.seeds_of(profile, full)[0])
    pr1s = None
    if arms.get("pr1s"):
        p = config.resolve(profile, arms["pr1s"], config.seeds_of(profile, arms["pr1s"])[0]).pr1s
        pr1s = {"experiment": arms["pr1s"], "every": p.every, "variant": p.variant,
                "seeds": config.seeds_of(profile, arms["pr1s"])}
    return {"model": cfg.model, "steps": cfg.train.get("max_steps"),
            "completions_per_step": cfg.train.get("per_device_train_batch_size"),
            "full": {"experiment": full, "seeds": config.seeds_of(profile, full)}, "pr1s": pr1s}


def design_line(d: dict) -> str:
    """The design of a report in one sentence (from ``design``)."""
    seeds = lambda s: f"{len(s)} seed{'s' if len(s) != 1 else ''} ({', '.join(map(str, s))})"  # noqa: E731
    line = (f"base model `{d['model']}`; {d['steps']} GRPO steps × {d['completions_per_step']} completions; "
            f"Full RL `{d['full']['experiment']}`, {seeds(d['full']['seeds'])}")
    if d.get("pr1s"):
        p = d["pr1s"]
        line += (f"; PR1S `{p['experiment']}` ({base.PR1S_VARIANTS.get(p['variant'], p['variant'])}, K = {p['every']}: "
                 f"{d['steps'] // p['every']} substitutions), {seeds(p['seeds'])}")
    return line


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
    # from the stored summaries, never a stored verdict string: the class in force and the earlier two-valued rule
    k, v = module.classify(res), base.rejudge(module, res)
    measured = []
    for label, keys in claim.quantities:
        s = _dig(res, keys)
        if s is not None:
            measured.append({"quantity": label, "mean": s["mean"], "ci": list(s["ci"]),
                             "t_ci": list(s["t_ci"]) if s.get("t_ci") else None, "n": s["n"],
                             "thresholds": [claim.thresholds[k] for k in claim.lines.get(label, ())]})
    fragile = base.sensitivity(module, res)
    other = budget_verdict(cid, profile)
    if other is not None and other[1] != k.klass:
        fragile.append(f"the {other[0]} budget gives '{other[1]}'")
    entry.update(verdict=k.klass, why=k.reason, decided_by=k.to_json(), power=k.power_line(),
                 verdict_two_valued=v["verdict"], verdict_bootstrap_only=v["verdict_bootstrap_only"],
                 measured=measured, seeds=max((m["n"] for m in measured), default=0), fragile=fragile,
                 notes=base.notes(module, res))
    earlier = getattr(module, "classify_before_precondition", None)  # a precondition added later (C1)
    if earlier is not None:
        entry["verdict_before_precondition"] = earlier(res).klass
    return entry


def budget_verdict(cid: str, profile: str) -> tuple[str, str] | None:
    """(variant profile, its verdict class) for the longer-budget variant of ``profile``, recomputed from
    its stored cN.json; None where there is no variant or no file."""
    other = BUDGET_VARIANT.get(profile)
    path = paths.REPORTS / other / f"{cid.lower()}.json" if other else None
    if path is None or not path.exists():
        return None
    return other, MODULES[cid].classify(fileio.read_json(path)).klass


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
    changed = preregistration.problem(profile)
    if changed:
        raise preregistration.PreregistrationError(f"refusing to judge {profile}: {changed}")
    entries = [claim_entry(cid, profile, allow_stale) for cid in CLAIMS]
    report = {"profile": profile, "config_hash": profile_hash(profile), "code_commit": code_commit(),
              "design": design(profile), "claims": entries}
    pin = config.load_profile(profile).get(preregistration.KEY)
    if pin:
        report["preregistration"] = pin
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


def deciding(c: dict) -> str:
    """The quantity that decided a claim's verdict, with its mean and intervals ("—" where none did, e.g. a
    claim not run); an untestable claim names its failed precondition instead."""
    d = c.get("decided_by") or {}
    if c["verdict"] == UNTESTABLE:
        return c.get("why") or "a precondition failed"
    if not d.get("quantity"):
        return "—"
    ivs = ", ".join(f"{INTERVAL_LABELS.get(k, k)} {fmt_interval({'ci': iv})}"
                    for k, iv in d.get("intervals", {}).items())
    value = f"{d['value']:.3f}" if d.get("value") is not None else "n/a"
    return f"{d['quantity']}: {value}" + (f", {ivs}" if ivs else "") + (f" (n = {d['n']})" if d.get("n") else "")


def power_cell(c: dict) -> str:
    """MDE and seeds needed (inconclusive), "no variation over seeds", or "—" where power decides nothing."""
    d = c.get("decided_by") or {}
    if power.is_no_variation(d.get("mde")):
        return power.NO_VARIATION
    if d.get("mde") is None:
        return "—"
    cell = f"MDE {d['mde']:.3g}"
    if not d.get("seeds_needed"):
        return cell
    margin = f"θ = {d['theta']:g}" if not d.get("bound") else f"the margin θ − bound = {abs(d['theta'] - d['bound']):g}"
    return cell + f"; {d['seeds_needed']} seeds for {margin}"


def _seeds(c: dict) -> str:
    ns = list(dict.fromkeys(m["n"] for m in c["measured"]))
    return " / ".join(str(n) for n in ns) if ns else str(c["seeds"])


def verdict_cell(c: dict) -> str:
    """The verdict class, with "fragile: …" where a documented alternative reading gives another class."""
    cell = f"**{c['verdict']}**"
    if c.get("fragile"):
        cell += " — fragile: " + "; ".join(c["fragile"])
    return cell


def results_table(report: dict) -> str:
    """The markdown results table (claims.md): one row per claim, the quantity that decided it first."""
    lines = ["| claim | verdict | deciding quantity (mean, 95% intervals) | power of that quantity | seeds | "
             "notebook → figure |", "|---|---|---|---|---|---|"]
    for c in report["claims"]:
        nb = c["notebook"].split("/")[-1]
        lines.append(f"| {c['id']} | {verdict_cell(c)} | {deciding(c)} | {power_cell(c)} | {_seeds(c)} | "
                     f"`{nb}` → `{c['figure'].split('/')[-1]}` |")
    notes = [f"{c['id']}: {n}" for c in report["claims"] for n in c.get("notes", [])]
    if notes:
        lines += [""] + [f"* {n}" for n in notes]
    return "\n".join(lines)


RULE = ("A threshold stated on an interval bound is met only when both the percentile-bootstrap CI and the "
        "Student-t interval meet it; the verdict is inconclusive when one does and the other does not. A threshold "
        "on a mean alone (C3) is unchanged.")
PRECONDITION = ("C1 became untestable unless Full RL overfit: its sampled train − test accuracy gap at the end has "
                "mean ≥ max_test_gap (0.05) and both lower bounds > 0 (claims.c1.overfit_precondition). The "
                "thresholds did not move.")
VOCABULARY = ("The two-valued verdict is replaced by five classes (docs/claims.md, \"Verdict vocabulary\"): holds; "
              "refuted (every interval on the wrong side of the claimed size); below threshold (an effect is "
              "detected, smaller than claimed); inconclusive (an interval spans the claimed size; the minimum "
              "detectable effect is given); untestable here (a named precondition fails). The thresholds did not "
              "move; \"rule not met\" is the two-valued rule's failing verdict.")


def rule_change_table(report: dict) -> str:
    """Once per claim, the verdict under each rule in turn: bootstrap CI alone → both intervals (two-valued)
    → the five classes in force, with the reason of the class."""
    lines = [f"Rule history. (1) {RULE} Why: {WHY_TIGHTENED}. (2) {VOCABULARY}", "",
             f"| claim | bootstrap only → both intervals → class in force (profile {report['profile']}) | reason |",
             "|---|---|---|"]
    for c in report["claims"]:
        steps = [c.get("verdict_bootstrap_only"), c.get("verdict_two_valued"), f"**{c['verdict']}**"]
        lines.append(f"| {c['id']} | {' → '.join(x for x in steps if x)} | {c.get('why') or '—'} |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    lines = [f"# Claims report — profile `{report['profile']}` (config hash {report['config_hash']})", "",
             "Generated by `python -m rlvr_lowrank claims` from the notebooks' outputs; do not edit.", ""]
    if report.get("design"):
        lines += [f"**Design** (from `configs/{report['profile']}.yaml`): {design_line(report['design'])}.", ""]
    if report.get("stale"):
        lines += ["**Stale results, re-judged but not re-run:** " + "; ".join(report["stale"]) + ". Re-run "
                  f"`make reproduce PROFILE={report['profile']}` to measure them with the current code.", ""]
    lines += [results_table(report), "", "## The verdict rule", "", rule_change_table(report), ""]
    for c in report["claims"]:
        lines += [f"## {c['id']}: {c['verdict']}", "", f"**Paper.** {c['paper']}", "", f"**Test.** {c['test']}", "",
                  f"**Thresholds.** {c['thresholds']}", "",
                  f"**Verdict: {c['verdict']}.** {(c.get('why') or '').rstrip('.')}."
                  + (f" Power: {c['power']}." if c.get("power") and c["verdict"] == INCONCLUSIVE
                     and c["power"] not in (c.get("why") or "") else ""), "",
                  f"**Measured.** {_fmt_measured(c['measured'])}.", "",
                  f"**Earlier rules.** Bootstrap CI alone: {c.get('verdict_bootstrap_only', '—')}; both intervals, "
                  f"two-valued: {c.get('verdict_two_valued', '—')}.", ""]
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
