"""Tasks for a real chat model (the smollm2 profile), each asked as one user turn of the chat template.

Three tasks, the real-model counterparts of the tiny world's math / fact / skill:

* ``chat_math`` -- arithmetic, the only rewarded task: ``What is a + b? Reply with only the number.``
  (operands in ``1..max_operand``; :func:`arithmetic_items`). Train and test splits never share an
  unordered operand pair. Scored by ``rewards.addition_answer``, the same parser for the GRPO reward and
  for greedy evaluation.
* ``chat_fact`` -- a knowledge probe of short factual questions (capitals, chemical symbols, authors,
  official languages, general facts) in ``data/real/knowledge_candidates.jsonl``; C2 scores only the
  items the base model answers correctly (``data/real/knowledge.jsonl``, written by
  ``python -m rlvr_lowrank smollm2-base``), so a drop is knowledge lost, not knowledge never there.
* ``chat_skill`` -- a word skill the model partly has and is never rewarded for: the plural of an
  English noun (regular and irregular, ``data/real/plurals.jsonl``).

Items are :class:`tasks.Item`; their ``prompt`` is the user message and their ``system`` the system turn
(None: the template's default one). :func:`render` applies the tokenizer's chat template (with the
generation prompt) -- what TRL does for a conversational dataset -- so evaluation sees exactly the text
training sampled from.

A profile picks its arithmetic task with ``chat_task:`` (:class:`ChatTask`): the operand range, whether
each unordered pair appears in both orders, a fixed small training set (a set revisited for many epochs is
where a train - test gap can open), the system turn, and an out-of-distribution set of larger operands.
Without ``chat_task:`` a run gets ``ChatTask()``: the task the smollm2 profile trained on first.
"""
from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from .. import checks, paths
from .tasks import Item

CHAT_TASKS = ("chat_math", "chat_fact", "chat_skill")
REAL_DATA = paths.DATA / "real"
KNOWLEDGE_CANDIDATES = REAL_DATA / "knowledge_candidates.jsonl"
KNOWLEDGE_KEPT = REAL_DATA / "knowledge.jsonl"  # the candidates the base model answers correctly
PLURALS = REAL_DATA / "plurals.jsonl"
SEED = 2605  # the split of the operand pairs; model seeds are separate
MATH_INSTRUCTION = "Reply with only the number."
FACT_INSTRUCTION = "Reply with only the answer."
SKILL_INSTRUCTION = "Reply with only the word."


def render(tokenizer, item: Item) -> str:
    """The text the model is given for an item: its system turn (if set) and its prompt as a user turn, chat
    template applied, ending with the assistant header (``add_generation_prompt``)."""
    return tokenizer.apply_chat_template(conversational(item), tokenize=False, add_generation_prompt=True)


def conversational(item: Item) -> list[dict]:
    """The prompt of an item in TRL's conversational format (TRL then applies the chat template). Without a
    system turn SmolLM2's template inserts its default one (27 tokens); ``system: ""`` gives an empty one."""
    system = [] if item.system is None else [{"role": "system", "content": item.system}]
    return system + [{"role": "user", "content": item.prompt}]


VALUE = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
OPS = ("+", "-", "*", "+-")  # "+-": sums and differences mixed (ChatTask.one_order only)


def _item(split: str, x: int, y: int, op: str, system: str | None) -> Item:
    return Item("chat_math", split, f"What is {x} {op} {y}? {MATH_INSTRUCTION}", str(VALUE[op](x, y)),
                (x >= 10) + (y >= 10), system)


def _pairs(max_operand: int, split: str) -> list[tuple[int, int]]:
    """The unordered pairs of a split, in the shuffled order (seed :data:`SEED`)."""
    pairs = list(itertools.combinations_with_replacement(range(1, max_operand + 1), 2))
    random.Random(SEED).shuffle(pairs)
    return pairs[: len(pairs) // 2] if split == "test" else pairs[len(pairs) // 2:]


def _pair_of(item: Item) -> tuple[int, int]:
    a, b = (int(x) for x in re.findall(r"\d+", item.prompt)[:2])
    return (min(a, b), max(a, b))


def distinct_problems(lo: int, hi: int, op: str) -> list[tuple[int, int, str]]:
    """Every distinct problem with operands in lo..hi, one written order each: for "+" and "*" an unordered
    pair (a <= b) is one problem; for "-" the larger operand comes first (the answer is >= 0); "+-" is both
    the sum and the difference of every pair (two problems). Shuffled with seed :data:`SEED`."""
    pairs = list(itertools.combinations_with_replacement(range(lo, hi + 1), 2))
    problems = [(a, b, o) for a, b in pairs for o in (("+", "-") if op == "+-" else (op,))]
    random.Random(SEED).shuffle(problems)
    return problems


def _written(problems, split: str, system: str | None) -> list[Item]:
    """Items of (a <= b, op) problems: a difference larger operand first, a sum or product in an order drawn
    with seed :data:`SEED` + 1."""
    flip = random.Random(SEED + 1)
    items = []
    for a, b, o in problems:
        x, y = (b, a) if o == "-" or flip.random() < 0.5 else (a, b)
        items.append(_item(split, x, y, o, system))
    return items


def arithmetic_items(split: str, n: int | None = None, max_operand: int = 20, op: str = "+", one_order: bool = False,
                     system: str | None = None) -> list[Item]:
    """``What is a <op> b? Reply with only the number.`` for a, b in 1..max_operand.

    With ``one_order`` the distinct problems (:func:`distinct_problems`, one item each; ``op`` may be "+-")
    are split in half, ``test`` the first half. Without it (the first smollm2 task) the unordered pairs
    {a, b} are shuffled once (seed :data:`SEED`) and split in half, and each split lists both orders of its
    pairs. Either way ``test`` and ``rl_train`` never share a pair in either order (or, for "+-", a problem);
    ``n`` keeps the first n items; ``difficulty`` is the number of two-digit operands (0–2); ``system`` the
    system turn.
    """
    if split not in ("rl_train", "test"):
        raise ValueError(f"split must be 'rl_train' or 'test', got {split!r}")
    if op not in OPS or (op == "+-" and not one_order):
        raise ValueError(f"op must be one of {OPS} ('+-' with one_order only), got {op!r}")
    if one_order:
        problems = distinct_problems(1, max_operand, op)
        half = problems[: len(problems) // 2] if split == "test" else problems[len(problems) // 2:]
        items = _written(half, split, system)
    else:
        items = [_item(split, x, y, op, system) for a, b in _pairs(max_operand, split)
                 for x, y in (((a, b), (b, a)) if a != b else ((a, b),))]
    return items[:n] if n else items


@dataclass(frozen=True)
class ChatTask:
    """The arithmetic task of a real-model run: the profile key ``chat_task:``.

    Args:
        max_operand (int, default 20): operands in 1..max_operand (:func:`arithmetic_items` splits the
            unordered pairs in half: held-out test and RL training never share one).
        op (str, default "+"): "+", "-", "*", or "+-" (sums and differences of every pair, with one_order).
        one_order (bool, default False): each distinct problem once (True: :func:`distinct_problems`), or
            every unordered pair in both orders (False). With True every held-out item is a distinct problem.
        train_size (int | None, default None): the RL training set is the first ``train_size`` pairs of the
            (shuffled) training half, revisited every epoch; None: the whole half.
        system (str | None, default None): the system turn of every arithmetic prompt; None: the template's
            default. The knowledge and skill probes keep the default (their filter was measured with it).
        held_out (str, default "half"): "half": the shuffled problems are split in half, held-out test and
            training; "rest" (with one_order and train_size): the training set is the first ``train_size``
            shuffled problems and *every other* problem is held out (more distinct held-out problems from a
            small operand range).
        ood_operands (list[int] | None, default None): [lo, hi] with lo > max_operand: an out-of-distribution
            set of ``n_ood`` distinct pairs with operands in lo..hi (evals.jsonl ``ood_acc``); None: none.
        n_ood (int, default 200): the size of that set.
    """
    max_operand: int = 20
    op: str = "+"
    one_order: bool = False
    train_size: int | None = None
    system: str | None = None
    held_out: str = "half"
    ood_operands: list | None = None
    n_ood: int = 200

    def __post_init__(self):
        checks.integer(self.max_operand, "chat_task.max_operand", minimum=2)
        if self.op not in OPS or (self.op == "+-" and not self.one_order):
            raise ValueError(f"chat_task.op must be one of {OPS} ('+-' needs one_order: true), got {self.op!r}")
        n_all = self.max_operand * (self.max_operand + 1) // 2 * (2 if self.op == "+-" else 1)
        most = n_all - n_all // 2 if self.held_out != "rest" else n_all - 1
        if self.train_size is not None:
            checks.integer(self.train_size, "chat_task.train_size", maximum=most,
                           hint=f" (the problems it can take for max_operand {self.max_operand})")
        rest_ok = self.held_out != "rest" or (self.one_order and self.train_size)
        if self.held_out not in ("half", "rest") or not rest_ok:
            raise ValueError(f"chat_task.held_out must be 'half' or 'rest' ('rest' needs one_order: true and a "
                             f"train_size), got {self.held_out!r}")
        if self.system is not None and not isinstance(self.system, str):
            raise ValueError(f"chat_task.system must be a string (\"\": an empty system turn) or null, "
                             f"got {self.system!r}")
        if self.ood_operands is not None:
            lo_hi = self.ood_operands
            if (not isinstance(lo_hi, (list, tuple)) or len(lo_hi) != 2
                    or not all(isinstance(x, int) and not isinstance(x, bool) for x in lo_hi)
                    or not self.max_operand < lo_hi[0] < lo_hi[1]):
                raise ValueError(f"chat_task.ood_operands must be [lo, hi] with {self.max_operand} (max_operand) "
                                 f"< lo < hi, got {lo_hi!r}")
            span = lo_hi[1] - lo_hi[0] + 1
            most = span * (span + 1) // 2 * (2 if self.op == "+-" else 1)
            checks.integer(self.n_ood, "chat_task.n_ood", maximum=most,
                           hint=f" (the problems of {lo_hi[0]}..{lo_hi[1]})")

    def n_pairs(self, split: str) -> int:
        """Distinct problems of a split (unordered operand pairs, or for "+-" pairs × 2), before ``train_size``."""
        n = self.max_operand * (self.max_operand + 1) // 2 * (2 if self.op == "+-" else 1)
        if self.held_out == "rest":
            return n - self.train_size if split == "test" else self.train_size
        return n // 2 if split == "test" else n - n // 2

    def items(self, split: str) -> list[Item]:
        """``rl_train`` (the RL training set: ``train_size`` problems if set) or ``test`` (every held-out one)."""
        if split not in ("rl_train", "test"):
            raise ValueError(f"split must be 'rl_train' or 'test', got {split!r}")
        if self.held_out == "rest":
            problems = distinct_problems(1, self.max_operand, self.op)
            mine = problems[: self.train_size] if split == "rl_train" else problems[self.train_size:]
            return _written(mine, split, self.system)
        items = arithmetic_items(split, max_operand=self.max_operand, op=self.op, one_order=self.one_order,
                                 system=self.system)
        if split == "rl_train" and self.train_size:
            if self.one_order:
                return items[: self.train_size]
            keep = set(_pairs(self.max_operand, split)[: self.train_size])
            items = [it for it in items if _pair_of(it) in keep]
        return items

    def ood_items(self) -> list[Item]:
        """The out-of-distribution set (empty without ``ood_operands``): ``n_ood`` distinct problems
        (:func:`distinct_problems`) with operands in lo..hi; split ``ood``."""
        if self.ood_operands is None:
            return []
        lo, hi = self.ood_operands
        return _written(distinct_problems(lo, hi, self.op)[: self.n_ood], "ood", self.system)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; it is part of the repository "
                                f"(git checkout {path.relative_to(paths.ROOT)})")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _answers(row: dict) -> str:
    """An item's answer field: the reference answer and its aliases, joined by ``|`` (rewards.fact_match
    accepts any of them)."""
    return "|".join([row["answer"], *row.get("aliases", [])])


def knowledge_items(kept_only: bool = True) -> list[Item]:
    """The knowledge probe: the items the base model answers correctly (``kept_only``), or all candidates."""
    rows = _read_jsonl(KNOWLEDGE_KEPT if kept_only else KNOWLEDGE_CANDIDATES)
    if kept_only:
        rows = [r for r in rows if r.get("base_correct", True)]
    return [Item("chat_fact", "test", f"{r['question']} {FACT_INSTRUCTION}", _answers(r), 0) for r in rows]


def plural_items() -> list[Item]:
    """The word skill: ``What is the plural of "<noun>"? Reply with only the word.``; difficulty 1 for an
    irregular noun, 0 for a regular one."""
    return [Item("chat_skill", "test", f'What is the plural of "{r["word"]}"? {SKILL_INSTRUCTION}', _answers(r),
                 int(r["kind"] == "irregular")) for r in _read_jsonl(PLURALS)]


def reference_completion(item: Item) -> str:
    """The completion whose log-likelihood C2's second reading scores: the reference answer alone."""
    return item.answer.split("|")[0]
