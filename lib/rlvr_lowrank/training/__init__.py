"""training: GRPO runs of this project and the pieces that make them reproducible.

* ``config`` -- the typed profile configuration (``configs/<profile>.yaml``), validated once;
* ``train`` -- one GRPO run with TRL's GRPOTrainer (resumed when interrupted, reused when finished);
* ``eval_items`` -- which items a model is scored on, by axis (the run recorder's and the notebooks' selector);
* ``rollout`` -- the fast sampler as GRPOTrainer's ``rollout_func`` (``train.sampler: kv``);
* ``sampled_eval`` -- sampled accuracy under the training's own decoding at each evaluation (C1);
* ``prompt_counts`` -- how many times each training prompt was seen (C1's precondition);
* ``pr1s``, ``trajectory``, ``monitor`` -- TrainerCallbacks that work in any TRL trainer: Periodic Rank-1
  Substitution, the trajectory recorder, the spectral monitor;
* ``run_recorder`` -- the TrainerCallback that writes this project's run directory (metrics, evals, checkpoints);
* ``precision`` -- the fast path: the loss on bf16 copies with fp32 master weights, on a CPU with native bf16;
* ``runs`` -- where runs live, their identity (config, base model, data and code hashes) and how they are read;
* ``integrity`` -- content hashes, DONE markers and resumable checkpoints.

Callbacks fire in the order they are registered; the order this project's runs use, and what each recorder
therefore sees at a substitution step, is stated in one place: ``train.make_callbacks``.

May import: the foundations (``paths``, ``fileio``, ``checks``, ``layout``), ``sampling``, ``world``,
``models`` and ``analysis``. Every module that a training run imports, here or below, is a *result module*:
its source is part of each run's identity (:func:`rlvr_lowrank.layout.result_modules`).
"""
