"""rlvr_lowrank: reproducible companion to arXiv 2605.06523 ("On the Implicit Reward Overfitting and the
Low-rank Dynamics in RLVR").

One sub-package per part of the system, imported in one direction (:mod:`rlvr_lowrank.layout` states the
order and a test enforces it): ``world`` (tasks, rewards, evaluation) -> ``models`` -> ``analysis`` (rank-1
algebra, spectra) -> ``checkpoints`` (your own checkpoints) -> ``training`` (GRPO runs, PR1S) -> ``claims``
(C0-C4) -> ``figures`` -> ``pipeline`` (make reproduce) -> ``cli``; ``paths`` and ``fileio`` underneath all.
Each package's docstring says what lives there.
"""
__version__ = "0.1.0"
