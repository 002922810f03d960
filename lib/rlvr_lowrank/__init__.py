"""rlvr_lowrank: reproducible companion to arXiv 2605.06523.

Flat modules, one job each (see README "Library"):
paths, io, tasks, models, pretrain, evaluate, train, rank1, trajectory, spectra, claims, plots, cli.
"""
__version__ = "0.1.0"
