"""world: what the model is asked and how its answers are judged.

* ``tasks`` -- the synthetic world of the tiny profiles: tasks, splits, facts (written to ``data/tasks/``);
* ``chat_tasks`` -- a chat model's prompts, splits and probes (SmolLM2: arithmetic, facts, plurals);
* ``rewards`` -- the verifiers, i.e. the reward functions GRPO optimises;
* ``evaluate`` -- greedy accuracy, pass@k and log-likelihoods of a model on items of these tasks.

May import: ``paths`` and ``fileio`` only.
"""
