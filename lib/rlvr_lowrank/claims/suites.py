"""The evaluation items of a profile, by axis: what its notebooks score models on.

A profile with ``data: chat_math`` (smollm2) is scored on the real-model chat tasks (chat_tasks): the
held-out arithmetic split, the knowledge probe of the facts the base model answers correctly, the plural
skill. Every other profile is scored on the synthetic world of the tiny model (tasks): the held-out math
split, the facts, the reversal skill. The items are picked by training.eval_items, the selector the
training runs' own evaluations use (train.eval_sets), so a notebook and a run's log score the same items;
C0–C2 call these with their sizes from the profile's ``notebooks:``.
"""
from __future__ import annotations

from ..training import config, eval_items
from ..world import chat_tasks
from ..world.tasks import Item

CHAT_DATA = "chat_math"  # the profile key `data:` that selects the chat tasks


def is_chat(profile: str) -> bool:
    """Whether a profile trains and scores the real-model chat tasks (``data: chat_math``)."""
    return config.load_profile(profile).get("data") == CHAT_DATA


def chat_task(profile: str) -> chat_tasks.ChatTask:
    """The profile's real-model arithmetic task (``chat_task:``; chat_tasks.ChatTask() when it sets none)."""
    spec = config.load_profile(profile).get("chat_task")
    return chat_tasks.ChatTask(**spec) if spec else chat_tasks.ChatTask()


def _chat(profile: str) -> chat_tasks.ChatTask | None:
    return chat_task(profile) if is_chat(profile) else None


def math_test(profile: str, n: int | None = None) -> list[Item]:
    """``n`` held-out math problems (all when None), taken at an even stride over the test split."""
    return eval_items.math_test(_chat(profile), n)


def math_rl_train(profile: str) -> list[Item]:
    """The RL training problems of the profile (for chat, its ``chat_task.train_size`` set; for tiny, before
    ``rl_train_size`` narrows them)."""
    return eval_items.math_rl_train(_chat(profile))


def facts(profile: str, n: int | None = None) -> list[Item]:
    """The knowledge probe: the first ``n`` facts (all when None); for chat, only those the base answers right."""
    return eval_items.facts(_chat(profile), n)


def skill_test(profile: str, n: int | None = None) -> list[Item]:
    """The second, non-math skill (never rewarded in the math arms): plurals for chat, reversal for tiny."""
    return eval_items.skill_test(_chat(profile), n)
