"""Which items a model is scored on, by axis: the one selector behind a run's own evaluations
(train.eval_sets, what the run recorder scores) and the notebooks' (claims.suites), so both score the same
items.

``chat`` is the real-model arithmetic task (``data: chat_math``, world.chat_tasks.ChatTask) or None for the
synthetic world of the tiny model (world.tasks). Sizes: ``n`` items, all when None. The held-out math
problems are taken at an even stride over the test split (tasks.spread_subset: the splits are ordered by
difficulty, so each difficulty keeps its share); facts and skill items are the first ``n``. ``n = 0`` gives no
item (``config.Eval``'s "0: none").
"""
from __future__ import annotations

from ..world import chat_tasks, tasks
from ..world.tasks import Item


def math_test(chat: chat_tasks.ChatTask | None, n: int | None = None) -> list[Item]:
    """``n`` held-out math problems at an even stride over the test split."""
    items = chat.items("test") if chat else tasks.load_items("math", "test")
    return items if n is None else tasks.spread_subset(items, n) if n else []


def math_rl_train(chat: chat_tasks.ChatTask | None) -> list[Item]:
    """Every stored RL training problem (for the tiny world before a profile's ``rl_train_size`` narrows them)."""
    return chat.items("rl_train") if chat else tasks.load_items("math", "rl_train")


def math_ood(chat: chat_tasks.ChatTask | None) -> list[Item]:
    """The out-of-distribution problems of a chat task (empty unless it sets them; none for the tiny world)."""
    return chat.ood_items() if chat else []


def facts(chat: chat_tasks.ChatTask | None, n: int | None = None) -> list[Item]:
    """The knowledge probe: the first ``n`` facts; for chat, only those the base model answers correctly."""
    items = chat_tasks.knowledge_items() if chat else tasks.load_items("fact")
    return items if n is None else items[:n]


def skill_test(chat: chat_tasks.ChatTask | None, n: int | None = None) -> list[Item]:
    """The second, non-math skill (never rewarded in the math arms): plurals for chat, reversal for tiny."""
    items = chat_tasks.plural_items() if chat else tasks.load_items("skill", "test")
    return items if n is None else items[:n]
