"""analysis: the linear algebra of weight updates, with no knowledge of training or of files.

* ``targets`` -- which weights are target matrices, and the matrix type and layer read from a tensor name;
* ``svd`` -- top-k singular triplets of one matrix: exact, or a certified fast path;
* ``rank1`` -- ΔW = W_RL - W_base, its rank-1 (and rank-k) substitutions (PR1S's included), substituted models;
* ``esd`` -- eigenvalues and singular values of weight matrices (the empirical spectral density);
* ``power_law`` -- power-law fits of an ESD's tail (WeightWatcher / powerlaw equivalent), the heavy-tail decision;
* ``goodness_of_fit`` -- the Clauset-Shalizi-Newman bootstrap p of a power-law tail (is the fit plausible at all);
* ``spectral_metrics`` -- shuffled control, Marchenko-Pastur edge and spikes, stable / effective rank, drift;
* ``spectra`` -- the whole-model spectral table (one row per target matrix, claim C3);
* ``alignment`` -- singular-vector alignment over a trajectory (claim C4);
* ``dynamics`` -- beyond the paper: rank-1 linear dynamics of the trajectory and its extrapolation.

May import: the foundations only (``checks``), besides torch, numpy, scipy and pandas.
"""
