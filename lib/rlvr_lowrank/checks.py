"""Argument checks shared by every layer: one wording for "an integer in a range", so a bad value in a
profile, a callback argument or an analysis call fails with the same kind of message naming the argument."""
from __future__ import annotations


def integer(value, name: str, minimum: int = 1, maximum: int | None = None, error: type = ValueError,
            hint: str = "") -> int:
    """``value`` if it is an ``int`` (``bool`` is not) in ``minimum..maximum`` (no upper bound when ``maximum``
    is None), else ``error`` naming ``name``, the allowed range (``hint`` after it) and the value."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        if maximum is not None:
            what = f"an integer in {minimum}..{maximum}"
        elif minimum == 1:
            what = "a positive integer"
        else:
            what = f"an integer >= {minimum}"
        raise error(f"{name} must be {what}{hint}, got {value!r}")
    return value
