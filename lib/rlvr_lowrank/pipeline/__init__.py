"""pipeline: ``make reproduce`` and what surrounds it -- scheduling runs and notebooks, the README's
generated blocks, and the real model's measurements before RL.

* ``reproduce`` -- trains what the declared notebooks read (``claims.notebooks``), executes them, reports;
* ``jobs`` -- the job queue: subprocesses and persistent training workers on the machine's cores;
* ``notebook_outputs`` -- executed notebooks without progress bars, widgets, warnings or absolute paths;
* ``readme`` -- the generated blocks of README.md;
* ``real_model`` -- SmolLM2's base metrics, learning-rate window and bf16 curve (the ``smollm2-*`` commands).

May import: every package. Nothing here is read by a notebook or a training run, so a change here changes
no run's identity and no notebook's fingerprint.
"""
