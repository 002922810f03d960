"""The evaluation items of a profile, by axis: what its notebooks score models on.

A profile with ``data: chat_math`` (smollm2) is scored on the real-model chat tasks (chat_tasks): the
held-out arithmetic split, the knowledge probe of the facts the base model answers correctly, the plural
skill. Every other profile is scored on the synthetic world of the tiny model (tasks): the held-out math
split, the facts, the reversal skill. The selections (``spread_subset`` of the test split, the first n
facts and skill words) are those of the training runs' own evaluations (train.eval_sets), so a notebook
and a run's log score the same items; C0–C2 call these with their sizes from the profile's ``notebooks:``.
"""
from __future__ import annotations

from ..training import config
from ..world import chat_tasks, tasks
from ..world.tasks import Item

CHAT_DATA = "chat_math"  # the profile key `data:` that selects the chat tasks


def is_chat(profile: str) -> bool:
    """Whether a profile trains and scores the real-model chat tasks (``data: chat_math``)."""
    return config.load_profile(profile).get("data") == CHAT_DATA


def chat_task(profile: str) -> chat_tasks.ChatTask:
    """The profile's real-model arithmetic task (``chat_task:``; chat_tasks.ChatTask() when it sets none)."""
    spec = config.load_profile(profile).get("chat_task")
    return chat_tasks.ChatTask(**spec) if spec else chat_tasks.ChatTask()


def math_test(profile: str, n: int | None = None) -> list[Item]:
    """``n`` held-out math problems (all when None), taken at an even stride over the test split."""
    items = chat_task(profile).items("test") if is_chat(profile) else tasks.load_items("math", "test")
    return tasks.spread_subset(items, n) if n else items


def math_rl_train(profile: str) -> list[Item]:
    """The RL training problems of the profile (for chat, its ``chat_task.train_size`` set; for tiny, before
    ``rl_train_size`` narrows them)."""
    return chat_task(profile).items("rl_train") if is_chat(profile) else tasks.load_items("math", "rl_train")


def facts(profile: str, n: int | None = None) -> list[Item]:
    """The knowledge probe: the first ``n`` facts (all when None); for chat, only those the base answers right."""
    items = chat_tasks.knowledge_items() if is_chat(profile) else tasks.load_items("fact")
    return items[:n] if n else items


def skill_test(profile: str, n: int | None = None) -> list[Item]:
    """The second, non-math skill (never rewarded in the math arms): plurals for chat, reversal for tiny."""
    items = chat_tasks.plural_items() if is_chat(profile) else tasks.load_items("skill", "test")
    return items[:n] if n else items

