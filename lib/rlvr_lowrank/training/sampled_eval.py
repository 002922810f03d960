"""Sampled accuracy at each evaluation, under the training's own decoding (claim C1's reading).

The greedy columns of evals.jsonl cannot show implicit reward overfitting: the training reward is a *sampled*
reward (temperature 1 on tiny), so train and test must be compared under that same decoding. At every
evaluation the run recorder scores ``eval.n_sampled_train`` RL training problems and ``eval.n_sampled_test``
held-out problems, ``eval.samples_per_prompt`` samples each, with the profile's ``train:`` temperature,
top_k, top_p, min_p, repetition_penalty and max_completion_length (GRPOConfig's defaults where unset), and
writes ``sampled_train_acc`` and ``sampled_test_acc`` (and ``sampled_seconds``, their cost).

Sampling runs in a forked RNG (evaluate.generate), so it never perturbs training's RNG: a run with sampled
evaluations trains exactly as one without. The seed (``sample_seed``) depends on the run seed, the step and
the set, not on the arm or the phase, so paired Full and PR1S runs of one seed, and the pre- and
post-substitution evaluations of one step, draw with common random numbers.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from ..world import evaluate, tasks

DECODING_KEYS = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")
COLUMNS = {"train": "sampled_train_acc", "test": "sampled_test_acc"}


def decoding(train: dict) -> dict:
    """The training's decoding: the ``train:`` values of DECODING_KEYS and max_completion_length, GRPOConfig's
    defaults where the profile leaves them unset (min_p None is left out, as TRL's generation config ignores it)."""
    import trl

    defaults = {f.name: f.default for f in dataclasses.fields(trl.GRPOConfig)}
    out = {k: train.get(k, defaults[k]) for k in (*DECODING_KEYS, "max_completion_length")}
    return {k: v for k, v in out.items() if v is not None}


def sample_seed(run_seed: int, step: int, which: str) -> int:
    """The sampling seed of one set at one step: the same in every arm and phase of that seed (common random
    numbers for the paired differences), different across steps and sets."""
    return (run_seed * 1_000_003 + step * 7 + (0 if which == "train" else 1)) % 2**31


@dataclass
class SampledEval:
    """The sampled evaluation of a run (:func:`from_config`); ``measure`` returns the evals.jsonl columns."""
    train_items: list
    test_items: list
    samples_per_prompt: int
    decoding: dict
    run_seed: int = 0
    sampler: str = "generate"  # the run's train.sampler: "kv" samples the same distribution, sooner

    def measure(self, model, tokenizer, step: int) -> dict:
        t0 = time.time()
        dec = dict(self.decoding)
        temperature, max_new = dec.pop("temperature", 1.0), dec.pop("max_completion_length", None)
        row = {}
        for which, items in (("train", self.train_items), ("test", self.test_items)):
            if items:
                row[COLUMNS[which]] = evaluate.sampled_accuracy(
                    model, tokenizer, items, self.samples_per_prompt, temperature=temperature, max_new_tokens=max_new,
                    sampling=dec, seed=sample_seed(self.run_seed, step, which), sampler=self.sampler).accuracy
        row["sampled_seconds"] = round(time.time() - t0, 2)
        return row


def from_config(cfg, rl_train: list, test: list) -> SampledEval | None:
    """The run's SampledEval from its resolved config (``cfg.eval``: n_sampled_train, n_sampled_test,
    samples_per_prompt), ``rl_train`` its math RL problems and ``test`` the held-out math problems (each an
    even-stride subset, tasks.spread_subset); None when both sizes are 0."""
    e = cfg.eval
    if not (e.n_sampled_train or e.n_sampled_test):
        return None
    pick = lambda items, n: tasks.spread_subset(items, n) if 0 < n < len(items) else list(items[:n])  # noqa: E731
    return SampledEval(pick(rl_train, e.n_sampled_train), pick(test, e.n_sampled_test), e.samples_per_prompt,
                       decoding(cfg.train), cfg.seed, cfg.train.get("sampler", "generate"))
