"""What the generated blocks (pipeline.readme, readme_details, readme_real_model) share: the tracked profiles,
their timing records and provenance, the number and interval formats, and the per-claim verdict table of
several profiles side by side."""
from __future__ import annotations

import contextlib
import re

from .. import claims, fileio, paths
from ..claims.verdict import INCONCLUSIVE

TRACKED_PROFILES = ("tiny", "tiny-long", "smollm2")
NOT_YET = "_Not produced yet: run `make reproduce` (notebook 07 writes reports/tiny/claims.json)._"
_memo: dict | None = None  # within computed_once(): a value several blocks need is computed once


@contextlib.contextmanager
def computed_once():
    """While generating every block at once, ``provenance`` (a few seconds per profile) is computed once."""
    global _memo
    _memo = {}
    try:
        yield
    finally:
        _memo = None


def provenance(profile: str) -> dict:
    """claims.report.provenance: which code computed a profile's reports, and whether it is today's."""
    if _memo is None:
        return claims.report.provenance(profile)
    if profile not in _memo:
        _memo[profile] = claims.report.provenance(profile)
    return _memo[profile]


def timing(profile: str) -> dict:
    """reports/<profile>/timing.json (``make reproduce``'s cold, warm and last records), or {}."""
    path = paths.REPORTS / profile / "timing.json"
    return fileio.read_json(path) if path.exists() else {}


def default_profile() -> str:
    """The profile `make reproduce` runs without PROFILE= (the Makefile's ``PROFILE ?=``)."""
    m = re.search(r"^PROFILE \?= *(\S+)", (paths.ROOT / "Makefile").read_text(), re.M)
    return m.group(1) if m else "tiny"


def fmt(x: float) -> str:
    return f"{x:.3f}"


def verdict_with_power(c: dict) -> str:
    """The verdict class in bold, with the MDE (or "no variation over seeds") where it is inconclusive."""
    cell = f"**{c['verdict']}**"
    power = claims.report.power_cell(c)
    return cell + (f" ({power})" if c["verdict"] == INCONCLUSIVE and power != "—" else "")


def claim_of(report: dict, cid: str) -> dict | None:
    return next((c for c in report["claims"] if c["id"] == cid), None)


def verdict_table(reports: dict[str, dict]) -> list[str]:
    """One row per claim: each profile's deciding quantity (both intervals) and its verdict class."""
    head = "| claim | " + " | ".join(f"{p}: deciding quantity | {p}: verdict" for p in reports) + " |"
    lines = [head, "|---|" + "---|---|" * len(reports)]
    for cid in [c["id"] for c in next(iter(reports.values()))["claims"]]:
        cells = []
        for report in reports.values():
            c = claim_of(report, cid)
            cells += ["—", "—"] if c is None else [claims.report.deciding(c), verdict_with_power(c)]
        lines.append(f"| {cid} | " + " | ".join(cells) + " |")
    return lines


def load_report(profile: str) -> dict:
    """``claims.load_report``, except that a report made under an earlier version of its profile's config is
    returned, with ``config_changed`` saying so, instead of refused: the pages show every tracked profile, and
    one whose reports predate its config is marked as computed by earlier code (:func:`provenance`, from the
    recorded run hashes, which a config change changes too) rather than dropped."""
    try:
        return claims.load_report(profile)
    except ValueError as e:
        if "config hash" not in str(e):
            raise
        return {**fileio.read_json(paths.report_source(profile, "claims.json")), "config_changed": str(e)}
