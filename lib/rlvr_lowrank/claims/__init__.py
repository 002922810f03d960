"""claims: the paper's claims made operational, and how the notebooks measure them.

* ``base`` -- the claim protocol every cN module follows (Claim record, verdict words, the cN.json base class);
* ``c0``, ``c1``, ``c2``, ``c3``, ``c4`` -- one module per claim: its Claim (paper wording, operational test,
  thresholds), the ``measure`` functions that read the runs, the verdict rule and its cN.json;
* ``verdict``, ``stats``, ``power`` -- the verdict vocabulary, the shared statistics (intervals, recovery) and
  the minimum detectable effect;
* ``report`` -- gathers the cN.json files into reports/<profile>/claims.{json,md};
* ``readings``, ``readings_c1``, ``readings_c2``, ``readings_c4``, ``readings_weights``, ``readings_saturation`` --
  the readings added after tiny's results were seen (their rules, and their measurement on a profile's runs);
* ``null_arm``, ``arm_evals`` -- RL against the random-reward null arm, each arm's evaluations side by side;
* ``c2_scoring``, ``fast_eval``, ``parallel``, ``recovery_scores`` -- scoring model variants (fast paths, many
  models in a few processes, recovery from ``evaluate-math`` scores files);
* ``suites`` -- a profile's evaluation items (training.eval_items picks them);
* ``extrapolation`` -- notebook 06 (beyond the paper): rank-1 linear dynamics and extrapolation, dynamics.json;
* ``notebooks``, ``profile_parameters``, ``run_config``, ``preregistration`` -- the declared notebook table, a
  notebook's parameters under a tracked profile, a run's typed config and a notebook's run directories, the
  pre-registration file.

Each claim quotes the paper's wording (abstract of arXiv 2605.06523, or AlphaRL for C0).

May import: every package below ``figures``.
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
