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

Items are :class:`tasks.Item`; their ``prompt`` is the user message. :func:`render` applies the
tokenizer's chat template (with the generation prompt) -- what TRL does for a conversational dataset
-- so evaluation sees exactly the text training sampled from.
"""
from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

from .. import paths
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
    """The text the model is given for an item: its prompt as a user turn, chat template applied, ending
    with the assistant header (``add_generation_prompt``)."""
    return tokenizer.apply_chat_template([{"role": "user", "content": item.prompt}], tokenize=False,
                                         add_generation_prompt=True)


def conversational(item: Item) -> list[dict]:
    """The prompt of an item in TRL's conversational format (TRL then applies the chat template)."""
    return [{"role": "user", "content": item.prompt}]


def arithmetic_items(split: str, n: int | None = None, max_operand: int = 20, op: str = "+") -> list[Item]:
    """``What is a <op> b? Reply with only the number.`` for a, b in 1..max_operand.

    The unordered pairs {a, b} are shuffled once (seed :data:`SEED`) and split in half: ``test`` and
    ``rl_train`` never share a pair, in either order. Each split lists both orders of its pairs, in the
    shuffled order; ``n`` keeps the first n. ``difficulty`` is the number of two-digit operands (0–2).
    """
    if split not in ("rl_train", "test"):
        raise ValueError(f"split must be 'rl_train' or 'test', got {split!r}")
    if op not in ("+", "-", "*"):
        raise ValueError(f"op must be '+', '-' or '*', got {op!r}")
    pairs = list(itertools.combinations_with_replacement(range(1, max_operand + 1), 2))
    random.Random(SEED).shuffle(pairs)
    half = pairs[: len(pairs) // 2] if split == "test" else pairs[len(pairs) // 2:]
    value = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}[op]
    items = []
    for a, b in half:
        for x, y in ((a, b), (b, a)) if a != b else ((a, b),):
            items.append(Item("chat_math", split, f"What is {x} {op} {y}? {MATH_INSTRUCTION}", str(value(x, y)),
                              (x >= 10) + (y >= 10)))
    return items[:n] if n else items


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
