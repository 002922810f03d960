"""pipeline: ``make reproduce`` and what surrounds it -- scheduling runs and notebooks, the README's
generated blocks, and the real model's measurements before RL.

* ``reproduce`` -- trains what the declared notebooks read (``claims.notebooks``), executes them, reports;
* ``jobs`` -- the job queue: subprocesses and persistent training workers on the machine's cores;
* ``notebook_outputs`` -- executed notebooks without progress bars, widgets, warnings or absolute paths;
* ``readme`` -- the generated blocks of README.md; ``readme_tables`` what its blocks share (profiles, timing
  records, provenance); ``readme_details``, ``readme_real_model``, ``readme_speed`` and ``readme_design`` the
  blocks of the docs pages (tiny profiles' details; the real model's results; its speed; the real-model
  experiment's design);
* ``real_model`` -- SmolLM2's base metrics, learning-rate window and bf16 curve (the ``smollm2-*`` commands);
* ``task_choice`` -- the real-model task chosen on base-model metrics by a rule fixed before measuring;
* ``exploration`` -- learning rate and run length on seeds the final runs never use;
* ``test_timing`` -- ``time-test``: the README's test command timed from a clean clone, as CI runs it;
* ``gpu_check`` -- one prepared check of the GPU path (``make gpu-check``).

May import: every package. Nothing here is read by a notebook or a training run, so a change here changes
no run's identity and no notebook's fingerprint.
"""
