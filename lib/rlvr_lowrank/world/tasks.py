"""The synthetic world: a verifiable math task, a knowledge probe and a second non-math skill.

GRPO only sharpens a tiny model that *mixes a right and a wrong strategy* (docs/methods.md §9),
so the pretraining corpus writes every task with two procedures:

* ``math`` -- column addition with a short chain of thought, GSM8K-style answer after a marker::

      prompt      Q:478+356=
      correct     8+6=14,7+5+1=13,4+3+1=8,A:834.
      flawed      8+6=14,7+5=12,4+3=7,A:724.        ("forgets the carry")

  Graded difficulty: 2- to 6-digit operands, every problem has at least one carry (otherwise the
  two procedures agree). Pretraining shows 6-digit problems only rarely, so the model executes them
  unreliably even with the right strategy: RL cannot trivially saturate test accuracy, and extra
  training reward on the 20 six-digit RL problems can come from fitting those particular problems
  (docs/methods.md §9).
* ``fact`` -- the knowledge probe: invented entities with one attribute (``F:zomek>`` -> ``teal.``),
  learnt in pretraining, never rewarded in RL.
* ``skill`` -- a second, non-math skill: reverse a word (``R:crane=`` -> ``enarc.``); the flawed
  procedure rotates it left by one (``ranec.``). Learnt but not perfect, so multi-task RL has room.

Splits (disjoint by construction and tested): ``test`` (held out from everything), ``rl_train``
(the small RL training set, seen for many epochs) and ``pretrain`` (the rest).
A math problem is identified by its unordered operand pair, so ``a+b`` and ``b+a`` share a split.
Facts exist once each and are all in the pretraining corpus; ``split`` is irrelevant for them.

The verifiers (reward functions) of these tasks are in :mod:`rlvr_lowrank.world.rewards`.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from .. import fileio, paths

TASKS = ("math", "fact", "skill")
WORLD_SEED = 1234  # the world (splits, facts) is fixed by this seed; model seeds are separate

MATH_DIGITS = (2, 3, 4, 5, 6)  # graded difficulty: operand lengths of the test and RL splits
N_MATH_TEST = 600  # held-out math problems (120 per difficulty)
N_MATH_RL_TRAIN = 100  # small RL training set (20 per difficulty), seen for many epochs
N_FACTS = 160  # knowledge-probe entities
FACT_ATTRIBUTES = ("red", "blue", "green", "gold", "pink", "teal", "gray", "plum")
SKILL_LENGTHS = (4, 5, 6, 7)  # word lengths for the reversal skill
N_SKILL_TEST = 300
N_SKILL_RL_TRAIN = 96
MAX_COMPLETION_CHARS = 64  # a longer completion of a synthetic task is scored 0 (the longest correct one is 62)

ALPHABET = "abcdefghijklmnopqrstuvwxyz"
# Every character the world can produce; the tokenizer is built from exactly this set.
CHARSET = "0123456789+=,.:>QAFR" + ALPHABET


@dataclass(frozen=True)
class Item:
    """One prompt with its reference answer. ``answer`` is what the verifier compares against."""

    task: str
    split: str
    prompt: str
    answer: str
    difficulty: int  # math: operand digits; skill: word length; fact: 0
    system: str | None = None  # chat tasks only: the system turn (None: the chat template's default one)

    def to_json(self) -> dict:
        d = asdict(self)
        if d["system"] is None:  # the tiny world's stored splits have no such field
            del d["system"]
        return d


# ----------------------------------------------------------------------------------------------
# Procedures (correct and flawed) that write completions
# ----------------------------------------------------------------------------------------------

def math_prompt(a: int, b: int) -> str:
    return f"Q:{a}+{b}="


def math_chain(a: int, b: int, carry: bool = True) -> tuple[str, int]:
    """Column addition from the least significant digit. ``carry=False`` is the flawed procedure.

    Returns the completion text and the answer it arrives at.
    """
    da, db = str(a)[::-1], str(b)[::-1]
    n = max(len(da), len(db))
    steps, digits, c = [], [], 0
    for i in range(n):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        s = x + y + c
        steps.append(f"{x}+{y}+1={s}" if c else f"{x}+{y}={s}")
        last = i == n - 1
        digits.append(str(s) if last else str(s % 10))
        c = (s // 10) if carry else 0
    answer = int("".join(reversed(digits)))
    return ",".join(steps) + f",A:{answer}.", answer


def has_carry(a: int, b: int) -> bool:
    return math_chain(a, b, carry=True)[1] != math_chain(a, b, carry=False)[1]


def fact_prompt(entity: str) -> str:
    return f"F:{entity}>"


def skill_prompt(word: str) -> str:
    return f"R:{word}="


def skill_answer(word: str, correct: bool = True) -> str:
    """Reverse the word; the flawed procedure rotates it left by one instead."""
    return word[::-1] if correct else word[1:] + word[0]


def completion_for(item: Item, correct: bool = True) -> str:
    """The pretraining completion for an item, written by the correct or the flawed procedure."""
    if item.task == "math":
        a, b = (int(x) for x in item.prompt[2:-1].split("+"))
        return math_chain(a, b, carry=correct)[0]
    if item.task == "skill":
        return skill_answer(item.prompt[2:-1], correct) + "."
    if item.task == "fact":
        return item.answer + "."
    raise ValueError(f"unknown task {item.task!r}; expected one of {TASKS}")


# ----------------------------------------------------------------------------------------------
# The world: splits and facts, generated once from WORLD_SEED and shipped in data/tasks/
# ----------------------------------------------------------------------------------------------

def _random_operand(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


def _sample_math_pair(rng: random.Random, digits: int) -> tuple[int, int]:
    while True:
        a, b = _random_operand(rng, digits), _random_operand(rng, digits)
        if has_carry(a, b):
            return a, b


def _math_key(a: int, b: int) -> tuple[int, int]:
    return (min(a, b), max(a, b))


def _entity_names(rng: random.Random, n: int) -> list[str]:
    cons, vows = "bdfgklmnprstvz", "aeiou"
    names: set[str] = set()
    while len(names) < n:
        length = rng.choice((2, 3))  # consonant-vowel syllables
        name = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(length)) + rng.choice(cons)
        names.add(name)
    return sorted(names)


def build_world(seed: int = WORLD_SEED) -> dict[str, list[Item]]:
    """Deterministically build the held-out and RL splits of every task and the fact table.

    The ``pretrain`` math/skill items are not enumerated: pretraining samples fresh problems and
    rejects any that belong to ``test`` or ``rl_train`` (see :func:`reserved_keys`).
    """
    rng = random.Random(seed)
    world: dict[str, list[Item]] = {}
    taken: set[tuple[int, int]] = set()
    for split, n_total in (("test", N_MATH_TEST), ("rl_train", N_MATH_RL_TRAIN)):
        items = []
        per = n_total // len(MATH_DIGITS)
        for d in MATH_DIGITS:
            count = 0
            while count < per:
                a, b = _sample_math_pair(rng, d)
                if _math_key(a, b) in taken:
                    continue
                taken.add(_math_key(a, b))
                items.append(Item("math", split, math_prompt(a, b), str(a + b), d))
                count += 1
        world[f"math/{split}"] = items

    words_taken: set[str] = set()
    for split, n_total in (("test", N_SKILL_TEST), ("rl_train", N_SKILL_RL_TRAIN)):
        items = []
        per = n_total // len(SKILL_LENGTHS)
        for length in SKILL_LENGTHS:
            count = 0
            while count < per:
                w = "".join(rng.choice(ALPHABET) for _ in range(length))
                if w in words_taken or w == w[::-1]:
                    continue
                words_taken.add(w)
                items.append(Item("skill", split, skill_prompt(w), skill_answer(w), length))
                count += 1
        world[f"skill/{split}"] = items

    names = _entity_names(rng, N_FACTS)
    world["fact/all"] = [Item("fact", "all", fact_prompt(nm), rng.choice(FACT_ATTRIBUTES), 0) for nm in names]
    return world


def write_world(directory: Path = paths.TASKS_DIR, seed: int = WORLD_SEED) -> list[Path]:
    """Write the world as JSONL files (committed in data/tasks/)."""
    written = []
    for key, items in build_world(seed).items():
        path = Path(directory) / f"{key.replace('/', '_')}.jsonl"
        fileio.write_text(path, "".join(json.dumps(it.to_json(), sort_keys=True) + "\n" for it in items))
        written.append(path)
    return written


def load_items(task: str, split: str = "test", directory: Path | None = None) -> list[Item]:
    """Read a split from data/tasks/ (``split`` is ignored for facts, which have a single table)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    directory = Path(directory or paths.TASKS_DIR)
    key = "fact_all" if task == "fact" else f"{task}_{split}"
    if task != "fact" and split not in ("test", "rl_train"):
        raise ValueError(f"split {split!r} is not stored; stored splits are 'test' and 'rl_train'")
    path = directory / f"{key}.jsonl"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; regenerate the task files with `python -m rlvr_lowrank world`"
        )
    return [Item(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def spread_subset(items: Sequence[Item], n: int) -> list[Item]:
    """``n`` items taken at an even stride (the splits are ordered by difficulty, so every difficulty
    keeps its share): the evaluation subsets of training runs, C2 and the notebooks."""
    return list(items[:: max(1, len(items) // n)][:n])


def reserved_keys(directory: Path | None = None) -> tuple[set[tuple[int, int]], set[str]]:
    """Operand pairs and words that pretraining must never emit (test and rl_train splits)."""
    math_keys, words = set(), set()
    for split in ("test", "rl_train"):
        for it in load_items("math", split, directory):
            a, b = (int(x) for x in it.prompt[2:-1].split("+"))
            math_keys.add(_math_key(a, b))
        for it in load_items("skill", split, directory):
            words.add(it.prompt[2:-1])
    return math_keys, words


def sample_pretrain_math(rng: random.Random, reserved: set[tuple[int, int]], digits: int) -> tuple[int, int]:
    """A fresh pretraining problem that is in neither the test nor the RL training split."""
    while True:
        a, b = _sample_math_pair(rng, digits)
        if _math_key(a, b) not in reserved:
            return a, b


def sample_pretrain_word(rng: random.Random, reserved: set[str], length: int) -> str:
    while True:
        w = "".join(rng.choice(ALPHABET) for _ in range(length))
        if w not in reserved and w != w[::-1]:
            return w
