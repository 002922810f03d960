"""analysis: the linear algebra of weight updates, with no knowledge of training or of files.

* ``rank1`` -- ΔW = W_RL - W_base, its rank-1 (and rank-k) part, PR1S's substitution, matrix names;
* ``spectra`` -- empirical spectral densities, power-law fits of their tails, singular-vector alignment;
* ``dynamics`` -- beyond the paper: rank-1 linear dynamics of the trajectory and its extrapolation.

May import: nothing of the project (only torch, numpy, scipy, pandas).
"""
