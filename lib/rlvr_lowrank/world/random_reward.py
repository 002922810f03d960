"""The null arm's reward: Bernoulli(p) for every completion, drawn independently of what the model wrote.

GRPO with this reward is the null for "is this effect RL's?": the optimiser, the sampling, the learning rate,
the steps and the data are those of Full RL; only the link between the reward and the completion is cut.
Random rewards lifted Qwen2.5-Math-7B on MATH-500 by 21.4 points and gave Llama3 and OLMo2 nothing
(Spurious Rewards, arXiv 2506.10947, attributed to pretraining); tiny and SmolLM2 are Llama-architecture.

Reproducible and resume-safe: the draws of one call come from ``numpy.random.default_rng`` seeded by
(run seed, optimizer step, call index within that step, process rank), never from a global generator. The
step is TRL's ``trainer_state.global_step`` (GRPOTrainer passes ``trainer_state`` to every reward function),
so a run resumed from a checkpoint draws at step t what the uninterrupted run drew there. The profile sets
``reward: random`` and ``reward_p: <p>`` (training.config checks both), e.g. p = the base model's mean reward.
"""
from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

RANDOM = "random"  # the ``reward:`` value of the null arm (the other names are rewards.REWARDS)
DOMAIN = 0x6E756C6C  # "null": keeps these draws apart from any other generator seeded by the run seed alone


def check_p(p) -> float:
    """``p`` as a float strictly between 0 and 1 (at 0 or 1 every group has one reward and GRPO's advantage is
    0: nothing would be trained), else ValueError naming it."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0.0 < p < 1.0:
        raise ValueError(f"reward_p must be a number strictly between 0 and 1 (the success probability of the "
                         f"random reward), got {p!r}")
    return float(p)


def draws(p: float, seed: int, step: int, call: int, n: int, rank: int = 0) -> list[float]:
    """``n`` rewards in {0.0, 1.0}, each 1.0 with probability ``p``, a pure function of its arguments."""
    rng = np.random.default_rng([DOMAIN, int(seed), int(step), int(call), int(rank)])
    return [float(x) for x in (rng.random(n) < p)]


def random_reward(p: float, seed: int):
    """A TRL reward function (named ``random_reward``: TRL logs ``rewards/random_reward/mean``) that ignores the
    completions, prompts and answers and returns :func:`draws` for the current optimizer step.

    Without ``trainer_state`` (a direct call outside a trainer) the calls are numbered from 0 and each is its
    own "step", so repeated direct calls still differ and are reproducible from a fresh function.
    """
    p, seed = check_p(p), int(seed)
    calls: dict[int, int] = {}  # step -> calls so far at that step
    counter = [0]  # direct calls without a trainer_state

    def random_reward(completions: Sequence, trainer_state=None, **kwargs) -> list[float]:
        if trainer_state is not None:
            step = int(trainer_state.global_step)
        else:
            step, counter[0] = counter[0], counter[0] + 1
        call = calls.get(step, 0)
        calls[step] = call + 1
        return draws(p, seed, step, call, len(completions), rank=int(os.environ.get("RANK", "0")))

    random_reward.p, random_reward.seed = p, seed
    return random_reward
