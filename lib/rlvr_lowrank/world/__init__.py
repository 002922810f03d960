"""world: what the model is asked and how its answers are judged.

* ``tasks`` -- the synthetic world of the tiny profiles: tasks, splits, facts (written to ``data/tasks/``);
* ``chat_tasks`` -- a chat model's prompts, splits and probes (SmolLM2: arithmetic, facts, plurals);
* ``rewards`` -- the verifiers, i.e. the reward functions GRPO optimises;
* ``random_reward`` -- the null arm's reward: Bernoulli(p), independent of the completion;
* ``math_verifier`` -- is a MATH-style completion's final answer the reference (math-verify, one owner);
* ``math_data`` -- training and test JSONL of the paper-scale profiles from a public math dataset;
* ``evaluate`` -- greedy accuracy, pass@k and log-likelihoods of a model on items of these tasks.

May import: the foundations (``paths``, ``fileio``, ``checks``) and ``sampling`` (``evaluate``'s fast sampler).
"""
