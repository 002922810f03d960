"""Formatting shared by the README's generated blocks (pipeline.readme, pipeline.readme_real_model):
numbers, intervals, and the per-claim verdict table of several profiles side by side."""
from __future__ import annotations

from .. import claims
from ..claims.verdict import INCONCLUSIVE


def fmt(x: float) -> str:
    return f"{x:.3f}"


def ci(x: dict) -> str:
    return f"{x['mean']:.3f} [{x['ci'][0]:.3f}, {x['ci'][1]:.3f}]"


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
