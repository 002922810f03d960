"""The paper's claims made operational: one module per claim (c0 … c4), each with its Claim (paper
wording, operational test, thresholds), ``measure`` functions that read the runs, the verdict rule,
the dataclass that is its cN.json, and its README block; ``stats`` holds the shared statistics and
``report`` gathers the cN.json files into reports/<profile>/claims.{json,md}.

Each claim quotes the paper's wording (abstract of arXiv 2605.06523, or AlphaRL for C0).
"""
from . import c0, c1, c2, c3, c4, stats
from .base import FAILS, HOLDS, INCONCLUSIVE, MIN_SEEDS, Claim, ClaimResult
from .report import (
           CLAIMS,
           MODULES,
           NOT_RUN,
           build_report,
           load_report,
           profile_hash,
           report_markdown,
           results_table,
)
from .stats import bootstrap_ci, recovery, summarize, t_interval

__all__ = ["c0", "c1", "c2", "c3", "c4", "stats", "Claim", "ClaimResult", "HOLDS", "FAILS", "INCONCLUSIVE", "MIN_SEEDS",
           "CLAIMS", "MODULES", "NOT_RUN", "build_report", "load_report", "profile_hash", "report_markdown",
           "results_table", "bootstrap_ci", "recovery", "summarize", "t_interval"]
