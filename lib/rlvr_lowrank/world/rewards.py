"""Verifiers: every reward function of the project, the one answer parser they share, and the guard
that wraps them for TRL.

Reward functions follow TRL's signature (keyword arguments, ``**kwargs``, one float per completion).
Whatever a model writes -- junk, empty, over-long, malformed -- scores 0 and never raises; a *caller*
error (completions and answers of different lengths) raises ValueError instead of being silently
truncated by ``zip``.

Shared by every verifier, in this order:

1. :func:`completion_text` -- TRL passes ``str`` for plain prompts and ``[{'role', 'content'}, ...]``
   for conversational ones; anything else has no text and scores 0.
2. :data:`MAX_VERIFIED_CHARS` -- a text longer than this scores 0 *before any parsing*, so no
   completion can make a verifier slow (a 10 MB completion with an unclosed ``\\boxed{`` used to take
   seconds per call).
3. :func:`integer_value` -- the one integer parser: ``"12"`` and ``"012"`` are 12, ``"12.9"`` is not an
   integer (it is never read as 12), ``"12.0"`` is 12.

:func:`score` / :func:`extract_answer` are also what evaluation uses, so training rewards and
evaluation accuracies come from the same parser.
"""
from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from . import math_verifier
from .math_verifier import last_boxed  # noqa: F401  (rewards.last_boxed: the extraction rule, public)
from .tasks import MAX_COMPLETION_CHARS, TASKS

# Longest text a verifier reads. The longest legitimate completion of the project's tasks is far
# shorter: 62 characters for the synthetic tasks (MAX_COMPLETION_CHARS), 12 tokens for the smollm2
# addition task, and max_completion_length = 2048 tokens for the paper-* MATH profiles, i.e. < 50
# characters per token even for tokenizers with long whitespace tokens. At this size the slowest
# verifier (the \boxed{} scan) takes about a millisecond.
MAX_VERIFIED_CHARS = 100_000

# The addition task asks for "only the number": the answer must start within this many characters
# (the window of the original verifier, kept so that rewards do not change). The number itself is
# read in full even if it runs past the window -- "= 12" cut to "= 1" would be a wrong answer.
ADDITION_ANSWER_WINDOW = 64

VERIFIED_TASKS = ("math", "fact", "skill")


class RewardError(RuntimeError):
    """A reward function raised, returned non-finite values, or was called with inconsistent inputs."""


# ----------------------------------------------------------------------------------------------
# The shared parser
# ----------------------------------------------------------------------------------------------

def is_completion(completion: Any) -> bool:
    """True for the two shapes TRL passes: a string, or a non-empty list of message dicts."""
    return isinstance(completion, str) or (
        isinstance(completion, list) and bool(completion) and all(isinstance(m, dict) for m in completion))


def completion_text(completion: Any) -> str | None:
    """The text to verify: the string itself, or the content of the last message; None otherwise or
    when it is longer than :data:`MAX_VERIFIED_CHARS`."""
    if isinstance(completion, str):
        text = completion
    elif isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        text = completion[-1].get("content")
        if not isinstance(text, str):
            return None
    else:
        return None
    return text if len(text) <= MAX_VERIFIED_CHARS else None


# ASCII digits only (\d also matches other scripts). A number in running text is an optional minus,
# digits and an optional fraction: "12.9" is read whole, so it cannot pass for 12; a sentence-final
# "12." is just 12.
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_NUMERAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def integer_value(token: str) -> int | None:
    """The integer a numeral denotes, or None if it is not one: "12" -> 12, "-3" -> -3, "12.0" -> 12,
    "12.9" -> None (never truncated to 12), "1e3" / "" / "twelve" -> None."""
    if not isinstance(token, str) or not _NUMERAL.fullmatch(token.strip()):
        return None
    try:
        value = Decimal(token.strip())
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return None
    return int(value) if value == value.to_integral_value() else None


def _columns(completions: Sequence, **columns: Sequence) -> None:
    """Refuse columns whose length differs from the completions' (zip would silently drop items)."""
    n = len(completions)
    for name, col in columns.items():
        if len(col) != n:
            raise ValueError(f"{len(completions)} completions but {len(col)} values in column {name!r}; "
                             "every dataset column must have one value per completion")


# ----------------------------------------------------------------------------------------------
# Synthetic tasks (math, fact, skill)
# ----------------------------------------------------------------------------------------------

_MATH_ANSWER = re.compile(r"A:([0-9]{1,8})\.\Z")
_WORD_ANSWER = re.compile(r"([a-z]{1,16})\.\Z")


def extract_answer(task: str, completion) -> str | None:
    """The final answer a completion commits to, or None if it is malformed or longer than
    :data:`tasks.MAX_COMPLETION_CHARS` (a synthetic-task completion that long is a runaway)."""
    text = completion_text(completion)
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > MAX_COMPLETION_CHARS:
        return None
    if task == "math":
        m = _MATH_ANSWER.search(text)
        return str(integer_value(m.group(1))) if m else None
    if task in ("fact", "skill"):
        m = _WORD_ANSWER.fullmatch(text)
        return m.group(1) if m else None
    return None


def score(task: str, completion, answer: str) -> float:
    """1.0 for an exactly correct final answer, else 0.0. Never raises. The chat tasks of a real model
    (chat_tasks.CHAT_TASKS) are scored by :data:`CHAT_SCORERS`."""
    try:
        if task in CHAT_SCORERS:
            return CHAT_SCORERS[task](completion, answer)
        got = extract_answer(task, completion)
        return 1.0 if got is not None and got == str(answer).strip() else 0.0
    except Exception:  # a verifier must never take down a training run
        return 0.0


def math_reward(completions: Sequence, answer: Sequence[str], **kwargs) -> list[float]:
    """TRL reward function for the math task (dataset column ``answer``)."""
    _columns(completions, answer=answer)
    return [score("math", c, a) for c, a in zip(completions, answer)]


def skill_reward(completions: Sequence, answer: Sequence[str], **kwargs) -> list[float]:
    """TRL reward function for the reversal skill."""
    _columns(completions, answer=answer)
    return [score("skill", c, a) for c, a in zip(completions, answer)]


def task_reward(completions: Sequence, answer: Sequence[str], task: Sequence[str], **kwargs) -> list[float]:
    """Multi-task reward: dispatch on the dataset's ``task`` column.

    A task without a verifier scores 0 for every completion rather than raising, but such a mix is
    rejected up front by :func:`check_task_mix`.
    """
    _columns(completions, answer=answer, task=task)
    return [score(t, c, a) for c, a, t in zip(completions, answer, task)]


def check_task_mix(tasks: Iterable[str]) -> None:
    """Raise if a task in an RL mix has no verifier."""
    unknown = sorted(set(tasks) - set(VERIFIED_TASKS))
    if unknown:
        raise ValueError(f"no verifier for task(s) {unknown}; tasks with verifiers: {TASKS}")


# ----------------------------------------------------------------------------------------------
# Real math data (paper-* profiles): the answer is the last \boxed{...} of the completion
# ----------------------------------------------------------------------------------------------

def boxed_math_reward(completions: Sequence, answer: Sequence[str], **kwargs) -> list[float]:
    """TRL reward for MATH-style data (paper-* profiles): 1.0 when the last ``\\boxed{}`` of the completion
    equals the reference (a bare expression or a worked solution whose last ``\\boxed{}`` is taken), else 0.0.

    The comparison is math-verify's symbolic one when installed, else the strict string rule
    (:mod:`math_verifier`, which owns both). Never raises on a completion.
    """
    _columns(completions, answer=answer)
    return [math_verifier.score(completion_text(c), a if isinstance(a, str) and len(a) <= MAX_VERIFIED_CHARS else None)
            for c, a in zip(completions, answer)]


# ----------------------------------------------------------------------------------------------
# One-digit addition in a chat turn (smollm2 profile)
# ----------------------------------------------------------------------------------------------

_AFTER_EQ = re.compile(r"=\s*(" + _NUMBER.pattern + ")")
# a restated problem answered in words: "7 + 5 is 12", "7 + 5 equals 12" (SmolLM2's sampled replies often are)
_RESTATED = re.compile(r"-?[0-9]+\s*[-+*]\s*-?[0-9]+\s+(?:is|equals)\s+(" + _NUMBER.pattern + ")")


def addition_answer(completion) -> int | None:
    """The integer a reply commits to: the number after the first ``=`` if there is one (the model
    often restates ``7 + 5 = 12``), else the number after a restated problem and "is" or "equals"
    (``7 + 5 is 12``), else the first number; None if that number is not an integer ("12.9") or does not
    start within :data:`ADDITION_ANSWER_WINDOW` characters."""
    text = completion_text(completion)
    if text is None:
        return None
    m = _AFTER_EQ.search(text)
    if m is None or m.start(1) >= ADDITION_ANSWER_WINDOW:
        m = _RESTATED.search(text)
    if m is None or m.start(1) >= ADDITION_ANSWER_WINDOW:
        m = _NUMBER.search(text)
        if m is None or m.start() >= ADDITION_ANSWER_WINDOW:
            return None
    return integer_value(m.group(1) if m.re is not _NUMBER else m.group())


def addition_reward(completions: Sequence, answer: Sequence[str], **kwargs) -> list[float]:
    """1.0 when the reply's integer (:func:`addition_answer`) equals the reference, else 0.0. Never raises
    on a completion."""
    _columns(completions, answer=answer)
    return [score("chat_math", c, a) for c, a in zip(completions, answer)]


# ----------------------------------------------------------------------------------------------
# Short answers of a chat model: facts and words (never rewarded; C2's probes on a real model)
# ----------------------------------------------------------------------------------------------

# A reply longer than this is a runaway and scores 0 (the probes ask for one short answer; evaluation caps
# them at 16 new tokens, which is at most a few dozen characters for SmolLM2's tokenizer).
MAX_SHORT_ANSWER_CHARS = 200
_WORDS = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> list[str]:
    """Lower-case words with accents, punctuation and the articles a/an/the removed ("Brasília." -> ["brasilia"])."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return [w for w in _WORDS.findall(plain.replace("'", "")) if w not in ("a", "an", "the")]


def fact_match(completion, answers: str) -> float:
    """1.0 when the reply contains one of the ``|``-separated answers as whole words after
    :func:`normalise` ("The capital of France is Paris." matches "Paris"; "Parisian" does not), else 0.0.
    Whole-word containment, not equality, because an instruction-tuned model answers in a sentence."""
    text = completion_text(completion)
    if text is None or not text.strip() or len(text) > MAX_SHORT_ANSWER_CHARS:
        return 0.0
    words = normalise(text)
    for answer in str(answers).split("|"):
        target = normalise(answer)
        if target and any(words[i:i + len(target)] == target for i in range(len(words) - len(target) + 1)):
            return 1.0
    return 0.0


def addition_score(completion, answer: str) -> float:
    """:func:`addition_reward` for one completion (the chat arithmetic task)."""
    got, ref = addition_answer(completion), integer_value(str(answer))
    return 1.0 if got is not None and got == ref else 0.0


CHAT_SCORERS = {"chat_math": addition_score, "chat_fact": fact_match, "chat_skill": fact_match}


REWARDS = {"math": math_reward, "skill": skill_reward, "task": task_reward, "boxed_math": boxed_math_reward,
           "addition": addition_reward}


# ----------------------------------------------------------------------------------------------
# The guard TRL calls
# ----------------------------------------------------------------------------------------------

def guarded_reward(fn):
    """Wrap a TRL reward function so that a failure is a clear error instead of a silent wrong reward.

    Before the call: ``completions`` must be a list of strings or chat message lists, and every
    list-valued keyword argument (the dataset columns TRL forwards: ``answer``, ``task``, ``prompts``,
    ...) must have one value per completion. After it: one reward per completion, each a finite number
    or ``None`` (TRL's "not applicable to this sample" for multi-reward setups). An exception inside
    ``fn`` becomes a RewardError naming the function and the first completion. The run directory is
    left as it is (no DONE), so re-running the same command after the fix resumes from the last
    checkpoint.
    """

    @functools.wraps(fn)  # TRL logs rewards/<__name__>/mean
    def wrapped(completions, *args, **kwargs):
        name = getattr(fn, "__name__", repr(fn))
        if isinstance(completions, (str, bytes)) or not isinstance(completions, Sequence):
            raise RewardError(f"reward function {name} got completions of type {type(completions).__name__}; "
                              "TRL passes a list with one completion per sample")
        for i, c in enumerate(completions):
            if not is_completion(c):
                raise RewardError(f"reward function {name}: completion {i} is {type(c).__name__} {repr(c)[:60]}; "
                                  "expected a str or a list of {'role', 'content'} messages (is the dataset's "
                                  "prompt column plain text or conversational?)")
        for key, col in kwargs.items():
            if isinstance(col, (list, tuple)) and len(col) != len(completions):
                raise RewardError(f"reward function {name}: {len(completions)} completions but {len(col)} values "
                                  f"in {key!r}; every dataset column must have one value per completion")
        try:
            out = fn(completions, *args, **kwargs)
        except Exception as e:
            first = repr(completions[0])[:80] if len(completions) else "<none>"
            raise RewardError(f"reward function {name} raised {type(e).__name__}: {e} "
                              f"(first completion of the batch: {first}); fix it and re-run: the run resumes") from e
        if not isinstance(out, (list, tuple)) or len(out) != len(completions):
            got = f"{len(out)} values" if isinstance(out, (list, tuple)) else type(out).__name__
            raise RewardError(f"reward function {name} returned {got} for {len(completions)} completions; "
                              "it must return one reward per completion")
        bad = [r for r in out if r is not None and not _is_finite_number(r)]
        if bad:
            raise RewardError(f"reward function {name} returned {len(bad)} non-finite or non-numeric reward(s) "
                              f"(e.g. {bad[0]!r}) for {len(out)} completions; rewards must be finite numbers or None")
        return out

    return wrapped


def _is_finite_number(r: Any) -> bool:
    # float("1") would accept a string, which TRL's torch.tensor(rewards) then fails on far from here.
    if isinstance(r, (str, bytes)):
        return False
    try:
        return math.isfinite(float(r))
    except (TypeError, ValueError):
        return False
