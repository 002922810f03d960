"""Is the final answer of a MATH-style completion equal to the reference? The one place that decides it.

Two steps, each with one owner:

1. **Extraction** -- the answer is the content of the completion's *last* ``\\boxed{...}``
   (:func:`last_boxed`: balanced braces, a scan that jumps from brace to brace, so a 100,000-character
   completion costs microseconds). No box, no answer: a completion that only states a number scores 0, as in
   the paper's setting, where the prompt asks for a boxed answer.
2. **Comparison** -- Hugging Face's ``math-verify`` (the verifier of open-r1 and of TRL's ``accuracy_reward``)
   parses the boxed expression and the reference into sympy and compares them symbolically, so ``0.5`` equals
   ``\\frac{1}{2}``, ``1,000`` equals ``1000`` and ``\\dfrac{a}{b}`` equals ``\\frac{a}{b}``. Only the short
   boxed expression is parsed, never the whole completion (math-verify's own extraction runs regular
   expressions over the full text, whose cost grows with its length).

When ``math-verify`` is not installed (it is in ``requirements.txt`` and in the ``[gpu]`` extra) the comparison
falls back to the project's strict string rule (:func:`strict_equal`: spaces, ``$``, ``\\!``, ``\\,`` and a
trailing period removed, ``\\dfrac``/``\\tfrac`` read as ``\\frac``), and :func:`backend` says so; the fallback
accepts a subset of what math-verify accepts (``tests/test_math_verifier.py`` checks both on the same cases).

math-verify bounds its parse and its comparison with ``signal.alarm``, which works only in the main thread;
elsewhere (a reward computed in a worker thread) the bounds are switched off, as TRL's ``accuracy_reward``
does. Nothing here raises on a completion: a parse failure is a wrong answer.
"""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

BACKENDS = ("auto", "math-verify", "strict")
PARSE_TIMEOUT_S = 5   # per expression, main thread only (math-verify's default)
VERIFY_TIMEOUT_S = 5


_BRACE = re.compile(r"[{}]")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` in ``text`` (nested braces balanced), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for m in _BRACE.finditer(text, i):  # jumps from brace to brace (C speed), not character by character
        depth += 1 if m.group() == "{" else -1
        if depth == 0:
            return text[i:m.start()]
    return None


@lru_cache(maxsize=1)
def math_verify_available() -> bool:
    try:
        import math_verify  # noqa: F401
    except ImportError:
        return False
    return True


def backend(requested: str = "auto") -> str:
    """The comparison in use: "math-verify" or "strict". ``auto`` is math-verify when installed."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown math verifier {requested!r}; choose one of {BACKENDS}")
    if requested == "auto":
        return "math-verify" if math_verify_available() else "strict"
    if requested == "math-verify" and not math_verify_available():
        raise ImportError("math verifier 'math-verify' requested but the package is not installed: "
                          "pip install math-verify (or use backend='strict')")
    return requested


def normalize(s: str) -> str:
    """The strict rule's normal form of a boxed expression."""
    s = s.strip().rstrip(".").replace("\\!", "").replace("\\,", "").replace("$", "")
    s = re.sub(r"\\(?:d|t)?frac", r"\\frac", s)
    return re.sub(r"\s+", "", s)


def strict_equal(answer: str, reference: str) -> bool:
    return normalize(answer) == normalize(reference)


def _timeouts() -> tuple[int | None, int | None]:
    if threading.current_thread() is threading.main_thread():
        return PARSE_TIMEOUT_S, VERIFY_TIMEOUT_S
    for name in ("math_verify.parser", "math_verify.grader"):  # "timeout is disabled" once per call otherwise
        logging.getLogger(name).setLevel(logging.ERROR)
    return None, None


def _math_verify_equal(answer: str, reference: str) -> bool:
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    parse_timeout, verify_timeout = _timeouts()
    # TRL's accuracy_reward, given the reference as "$...$" and a completion holding "\\boxed{answer}": the
    # reference parsed with math-verify's defaults, the answer by its boxed LaTeX extraction with the units
    # normalisation only (no repair of malformed operators: the policy must write correct LaTeX)
    gold = parse(f"${reference}$", parsing_timeout=parse_timeout)
    boxed_first = LatexExtractionConfig(normalization_config=NormalizationConfig(units=True), boxed_match_priority=0,
                                        try_extract_without_anchor=False)
    got = parse(f"\\boxed{{{answer}}}", extraction_config=[boxed_first], extraction_mode="first_match",
                parsing_timeout=parse_timeout)
    if not gold or not got:
        return strict_equal(answer, reference)  # e.g. a textual answer ("Monday") math-verify cannot parse
    return bool(verify(gold, got, timeout_seconds=verify_timeout))


def equal(answer: str, reference: str, which: str = "auto") -> bool:
    """Whether the boxed expression ``answer`` equals ``reference`` (both bare LaTeX, no ``\\boxed``)."""
    if which == "auto" and not math_verify_available():
        return strict_equal(answer, reference)
    if backend(which) == "strict":
        return strict_equal(answer, reference)
    try:
        return _math_verify_equal(answer, reference)
    except Exception:  # a parser bug or a timeout on a pathological expression: not a correct answer
        return False


def reference_answer(reference: str) -> str:
    """A dataset's reference as a bare expression: the last ``\\boxed{}`` of a worked solution, else itself."""
    return last_boxed(reference) or reference


def score(text: str | None, reference: str | None, which: str = "auto") -> float:
    """1.0 when the last ``\\boxed{}`` of ``text`` equals ``reference``, else 0.0 (never raises)."""
    try:
        if text is None or reference is None:
            return 0.0
        got = last_boxed(text)
        return 1.0 if got is not None and equal(got, reference_answer(reference), which) else 0.0
    except Exception:
        return 0.0
