"""The verdict vocabulary: five classes, one rule for a condition, two ways to combine conditions.

Pure functions on numbers (no file I/O). The truth table of every claim is in docs/claims.md
("Verdict vocabulary"); the tests (tests/test_claims_verdict.py) have one case per cell.

Classes, checked in this order for one condition (``judge_threshold``):

1. ``UNTESTABLE`` "untestable here": a named precondition fails (the caller passes preconditions as
   ``(name, ok, numbers)``; the first failing one is named in ``Verdict.precondition``);
2. ``INCONCLUSIVE`` with fewer than ``MIN_SEEDS`` seeds (as before);
3. ``HOLDS``: the claim's existing rule, unchanged: the mean meets θ where the rule reads the mean
   (``require_mean``), and every interval's end meets ``bound`` (θ unless the claim names another;
   ``strict`` as before), with *both* intervals (bootstrap and t) for a ``stats.summarize`` dict;
4. every interval on the wrong side of θ:
   * ``AT_LEAST`` ("Δ ≥ θ"): every upper bound < θ, then ``BELOW`` "below threshold" if every lower
     bound > ``reference`` (0: an effect is detected), else ``REFUTED`` (for θ = 0, as C4: every upper
     bound < 0, an effect in the opposite direction);
   * ``AT_MOST`` ("Δ ≤ θ"): every lower bound > θ → ``REFUTED``;
   * ``WITHIN`` ("|Δ| ≤ θ", C1's test gap): every lower bound > θ or every upper bound < −θ → ``REFUTED``;
5. ``INCONCLUSIVE`` otherwise: the verdict carries the minimum detectable effect and the seeds needed.

A NaN bound meets no threshold and lies on no side. Every verdict carries the MDE of its quantity
(``power.min_detectable_effect`` of the per-seed values, or ``power.NO_VARIATION``) and the seeds
needed for the margin |θ − bound| (None where θ = bound).

Combining conditions (docs/claims.md):

* ``all_of(conditions, preconditions)``: a failing claim precondition → untestable; else the first
  class present in the order refuted, below threshold, untestable, inconclusive; else holds.
* ``any_of(conditions)``: the first class present in the order holds, inconclusive, untestable, below
  threshold, refuted (an alternative that could not be tested keeps the others from refuting the claim).

The combined verdict copies the quantity, value, intervals, MDE … of the condition that decided it
(the first, in the given order, of the deciding class), so a findings line can quote it.

API::

    Precondition(name, ok, numbers="")                      # or a plain (name, ok[, numbers]) tuple
    varies_over_seeds(values, name="varies over seeds") -> Precondition
    judge_threshold(intervals, theta, direction=AT_LEAST, *, bound=THETA, strict=False, mean=None,
                    require_mean=False, reference=0.0, values=None, n=None, sd=None, preconditions=(),
                    quantity="", min_seeds=MIN_SEEDS) -> Verdict
    judge_summary(summary, theta, direction=AT_LEAST, *, keys=("ci", "t_ci"), **same keywords) -> Verdict
    all_of(conditions, preconditions=(), quantity="") -> Verdict
    any_of(conditions, quantity="") -> Verdict
    Verdict.to_json() -> dict;  Verdict.power_line() -> str

Example (C1's reward condition)::

    judge_summary(c1_json["reward_gap"], 0.02, AT_LEAST, bound=0.0, strict=True, require_mean=True,
                  quantity="Δ training reward (Full − PR1S)")
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from . import power, stats

UNTESTABLE = "untestable here"
HOLDS = "holds"
REFUTED = "refuted"
BELOW = "below threshold"
INCONCLUSIVE = "inconclusive"
CLASSES = (UNTESTABLE, HOLDS, REFUTED, BELOW, INCONCLUSIVE)

AT_LEAST, AT_MOST, WITHIN = "at least", "at most", "within"  # Δ ≥ θ, Δ ≤ θ, |Δ| ≤ θ
DIRECTIONS = (AT_LEAST, AT_MOST, WITHIN)

MIN_SEEDS = 3  # = base.MIN_SEEDS (not imported: this module stays free of the claims' I/O imports)

# all_of: a conjunction is false once one condition is shown false; all_of takes the first class present
ALL_OF_ORDER = (REFUTED, BELOW, UNTESTABLE, INCONCLUSIVE, HOLDS)
# any_of: a disjunction takes the best outcome still possible; an untested alternative is still possible
ANY_OF_ORDER = (HOLDS, INCONCLUSIVE, UNTESTABLE, BELOW, REFUTED)

INTERVAL_LABELS = {"ci": "bootstrap", "t_ci": "t", "wilson": "Wilson over matrices, descriptive"}


class _Theta:
    def __repr__(self) -> str:
        return "THETA"


THETA = _Theta()  # default of ``bound``: the interval end must clear θ itself


class Precondition(NamedTuple):
    """A named precondition of a claim or condition: ``ok`` False makes it "untestable here".
    ``numbers``: what was measured, for the reason text (e.g. "gain 0.03 < 0.1")."""
    name: str
    ok: bool
    numbers: str = ""


@dataclass(frozen=True)
class Verdict:
    """The verdict of a condition or a claim.

    ``klass``: one of CLASSES. ``reason``: one sentence. ``quantity``/``value``/``intervals``: the
    deciding quantity, its mean and its intervals (name → (lo, hi); "ci" bootstrap, "t_ci" t,
    "wilson"). ``theta``/``direction``: the claimed size and its direction. ``mde``: minimum
    detectable effect (float, ``power.NO_VARIATION``, ``inf`` below 2 seeds, or None when no per-seed
    values were given). ``seeds_needed``: seeds for the margin |θ − bound| (None where θ = bound or
    sd = 0). ``precondition``: the name of the failed precondition of an untestable verdict.
    ``conditions``: the member verdicts of a combined verdict.
    """
    klass: str
    reason: str
    quantity: str = ""
    value: float | None = None
    intervals: dict = field(default_factory=dict)
    theta: float | None = None
    direction: str | None = None
    mde: float | str | None = None
    seeds_needed: int | None = None
    n: int | None = None
    bound: float | None = None
    precondition: str | None = None
    conditions: tuple = ()

    def power_line(self) -> str:
        """The power of the deciding quantity in words ("" when no per-seed values were given)."""
        return power_line(self.mde, self.seeds_needed, self.n, self.theta, self.bound)

    def to_json(self) -> dict:
        """JSON-ready: non-finite floats become None, None fields are left out."""
        out = {"class": self.klass, "reason": self.reason, "quantity": self.quantity, "value": _num(self.value),
               "intervals": {k: [_num(lo), _num(hi)] for k, (lo, hi) in self.intervals.items()},
               "theta": self.theta, "direction": self.direction,
               "mde": self.mde if power.is_no_variation(self.mde) else _num(self.mde),
               "seeds_needed": self.seeds_needed, "n": self.n, "bound": _num(self.bound),
               "precondition": self.precondition,
               "power": self.power_line() or None,
               "conditions": [c.to_json() for c in self.conditions] or None}
        return {k: v for k, v in out.items() if v is not None and v != "" and v != {}}


def _num(x):
    return None if x is None or not math.isfinite(float(x)) else float(x)


def power_line(mde, seeds, n: int | None, theta: float | None, bound: float | None = 0.0) -> str:
    """"MDE 0.306 (80% power, two-sided α = 0.05, from the observed sd over 3 seeds, itself uncertain by a
    factor of several); 175 seeds needed for θ = 0.02", or "no variation over seeds". Where the rule's
    interval bound is not 0 (C0: lower bound ≥ 0.75 for θ = 0.9) the seeds are for the margin |θ − bound|."""
    if mde is None:
        return ""
    if power.is_no_variation(mde):
        return power.NO_VARIATION
    if not math.isfinite(mde):
        return f"no MDE with {n} seed(s)"
    line = (f"MDE {mde:.3g} (80% power, two-sided α = 0.05, from the observed sd over {n} seeds, itself "
            "uncertain by a factor of several)")
    if seeds is not None:
        line += (f"; {seeds} seeds needed for θ = {theta:g}" if not bound else
                 f"; {seeds} seeds needed to resolve the margin {abs(theta - bound):g} between θ = {theta:g} and "
                 f"the bound {bound:g}")
    return line


def _preconditions(pre: Iterable) -> list[Precondition]:
    return [p if isinstance(p, Precondition) else Precondition(*p) for p in pre]


def _failed(pre: Iterable) -> Precondition | None:
    return next((p for p in _preconditions(pre) if not p.ok), None)


def _untestable(p: Precondition, **fields) -> Verdict:
    why = f"precondition '{p.name}' fails" + (f" ({p.numbers})" if p.numbers else "")
    return Verdict(UNTESTABLE, why, precondition=p.name, **fields)


def varies_over_seeds(values: Sequence[float], name: str = "varies over seeds") -> Precondition:
    """The precondition of a rule that reads intervals over seeds: the quantity's sd over seeds is not 0
    (``power.sd_over_seeds``; fewer than two values cannot vary either)."""
    sd = power.sd_over_seeds(values)
    n = int(np.isfinite(np.asarray(values, dtype=float)).sum())
    ok = bool(np.isfinite(sd) and sd > 0)
    return Precondition(name, ok, "" if ok else f"sd 0 over {n} seeds" if np.isfinite(sd) else f"{n} value(s)")


def _fmt_intervals(intervals: Mapping) -> str:
    return ", ".join(f"{INTERVAL_LABELS.get(k, k)} {stats.fmt_pair(lo, hi)}" for k, (lo, hi) in intervals.items())


def _holds(direction, ivs, theta, bound, strict, mean, require_mean) -> tuple[bool, str]:
    """(the claim's existing rule is met, its wording)."""
    parts, ok = [], True
    if require_mean:
        if direction == AT_LEAST:
            ok &= mean >= theta
            parts.append(f"mean {mean:.3f} ≥ {theta:g}")
        elif direction == AT_MOST:
            ok &= mean <= theta
            parts.append(f"mean {mean:.3f} ≤ {theta:g}")
        else:
            ok &= abs(mean) <= theta
            parts.append(f"|mean| {abs(mean):.3f} ≤ {theta:g}")
    if bound is not None:
        if direction == AT_LEAST:
            ok &= all((lo > bound) if strict else (lo >= bound) for lo, _ in ivs)
            parts.append(f"every lower bound {'>' if strict else '≥'} {bound:g}")
        else:  # AT_MOST, and WITHIN reads the upper end only (C1: PR1S's test accuracy is not lower)
            ok &= all((hi < bound) if strict else (hi <= bound) for _, hi in ivs)
            parts.append(f"every upper bound {'<' if strict else '≤'} {bound:g}")
    return bool(ok), " and ".join(parts)


def judge_threshold(intervals: Mapping[str, Sequence[float]], theta: float, direction: str = AT_LEAST, *,
                    bound=THETA, strict: bool = False, mean: float | None = None, require_mean: bool = False,
                    reference: float = 0.0, values: Sequence[float] | None = None, n: int | None = None,
                    sd: float | None = None, preconditions: Iterable = (), quantity: str = "",
                    min_seeds: int = MIN_SEEDS) -> Verdict:
    """The verdict of one condition (rule in the module doc and docs/claims.md).

    ``intervals``: name → (lo, hi), every one must agree (bootstrap and t for a quantity over seeds;
    one Wilson interval for C3). ``theta``: the claimed size; ``direction``: AT_LEAST, AT_MOST or WITHIN.
    ``bound``: the threshold an interval end must clear for "holds" (default θ; None: the rule reads
    the mean alone), ``strict`` for > / < instead of ≥ / ≤. ``mean`` with ``require_mean``: the rule
    also needs the mean to meet θ (non-strict, as every claim today). ``reference``: the no-effect
    level of "below threshold" (AT_LEAST only; 0, or C3's shuffled control). ``values``: the per-seed
    values (n, sd and the MDE follow from them; else ``n`` and ``sd`` if known).
    ``preconditions``: (name, ok, numbers) checked first. ``min_seeds``: fewer seeds → inconclusive.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
    bound = theta if bound is THETA else bound
    if bound is None and not require_mean:
        raise ValueError("a condition needs an interval bound or a rule on the mean (require_mean)")
    if require_mean and mean is None:
        raise ValueError("require_mean needs the mean")
    ivs = {k: (float("nan") if v[0] is None else float(v[0]), float("nan") if v[1] is None else float(v[1]))
           for k, v in intervals.items()}
    if not ivs:
        raise ValueError("a condition needs at least one interval")
    if values is not None:
        x = np.asarray(values, dtype=float)
        n, sd = int(np.isfinite(x).sum()), power.sd_over_seeds(x)
        mean = float(np.nanmean(x)) if mean is None and n else mean
    mde = None if sd is None or n is None else power.min_detectable_effect(sd, n)
    margin = abs(theta - bound) if bound is not None else 0.0
    seeds = None if sd is None or margin == 0 else power.seeds_needed(margin, sd)
    common = dict(quantity=quantity, value=mean, intervals=ivs, theta=theta, direction=direction, mde=mde,
                  seeds_needed=seeds, n=n, bound=bound)
    failed = _failed(preconditions)
    if failed:
        return _untestable(failed, **common)
    if n is not None and n < min_seeds:
        return Verdict(INCONCLUSIVE, f"{n} seed(s) < {min_seeds}", **common)
    text = _fmt_intervals(ivs)
    pairs = list(ivs.values())
    ok, rule = _holds(direction, pairs, theta, bound, strict, mean, require_mean)
    if ok:
        return Verdict(HOLDS, f"{rule} ({text})", **common)
    if direction == AT_LEAST and all(hi < theta for _, hi in pairs):
        if all(lo > reference for lo, _ in pairs):
            return Verdict(BELOW, f"an effect is detected (every lower bound > {reference:g}) but every interval lies "
                                  f"below θ = {theta:g} ({text})", **common)
        if theta <= reference:
            return Verdict(REFUTED, f"every interval lies below {theta:g}: an effect in the opposite direction "
                                    f"({text})", **common)
        return Verdict(REFUTED, f"every interval lies below θ = {theta:g} and not every one excludes "
                                f"{reference:g} ({text})", **common)
    if direction == AT_MOST and all(lo > theta for lo, _ in pairs):
        return Verdict(REFUTED, f"every interval lies above θ = {theta:g} ({text})", **common)
    if direction == WITHIN and (all(lo > theta for lo, _ in pairs) or all(hi < -theta for _, hi in pairs)):
        return Verdict(REFUTED, f"every interval lies outside ±{theta:g} on one side ({text})", **common)
    why = f"the rule ({rule}) is not met and not every interval lies on the wrong side of θ = {theta:g} ({text})"
    line = power_line(mde, seeds, n, theta, bound)
    return Verdict(INCONCLUSIVE, why + (f"; {line}" if line else ""), **common)


def judge_summary(summary: Mapping, theta: float, direction: str = AT_LEAST, *, keys: Sequence[str] = ("ci", "t_ci"),
                  **kw) -> Verdict:
    """``judge_threshold`` on a ``stats.summarize`` dict: its intervals ``keys`` (both by default;
    ``keys=("ci",)`` is the earlier bootstrap-only rule; a missing interval is NaN and meets nothing),
    its mean, and its per-seed ``values`` (else its ``n``) for the seeds check and the MDE."""
    ivs = {k: tuple(summary.get(k) or (float("nan"), float("nan"))) for k in keys}
    values = summary.get("values") or None
    kw.setdefault("mean", summary.get("mean"))
    if values is None:
        kw.setdefault("n", summary.get("n"))
    return judge_threshold(ivs, theta, direction, values=values, **kw)


def _labelled(v: Verdict) -> str:
    """"quantity: reason" of a condition; a combined verdict's reason already names its quantity."""
    return f"{v.quantity}: {v.reason}" if v.quantity and not v.conditions else v.reason


def _decided(klass: str, members: list[Verdict], quantity: str, reason: str | None = None) -> Verdict:
    """A combined verdict of class ``klass``, with the fields of its first member of that class."""
    d = next(m for m in members if m.klass == klass)
    why = reason or _labelled(d)
    return Verdict(klass, why, quantity=d.quantity, value=d.value, intervals=d.intervals, theta=d.theta,
                   direction=d.direction, mde=d.mde, seeds_needed=d.seeds_needed, n=d.n, bound=d.bound,
                   precondition=d.precondition,
                   conditions=tuple(members))


def all_of(conditions: Sequence[Verdict], preconditions: Iterable = (), quantity: str = "") -> Verdict:
    """Every condition is part of the claim: a failing precondition → untestable; else the first class
    present in ALL_OF_ORDER (refuted, below threshold, untestable, inconclusive); else holds."""
    members = list(conditions)
    if not members:
        raise ValueError("all_of needs at least one condition")
    failed = _failed(preconditions)
    if failed:
        return _untestable(failed, quantity=quantity, conditions=tuple(members))
    klass = next(k for k in ALL_OF_ORDER if any(m.klass == k for m in members))
    if klass == HOLDS:
        return _decided(HOLDS, members, quantity, "every condition holds: " + "; ".join(
            _labelled(m) for m in members))
    return _decided(klass, members, quantity)


def any_of(conditions: Sequence[Verdict], quantity: str = "") -> Verdict:
    """The claim needs one of the conditions: the first class present in ANY_OF_ORDER (holds, inconclusive,
    untestable, below threshold, refuted). An untestable alternative is not dropped: while one alternative
    could not be tested, the others failing does not refute the claim (it is then untestable, naming the
    precondition that failed)."""
    members = list(conditions)
    if not members:
        raise ValueError("any_of needs at least one condition")
    klass = next(k for k in ANY_OF_ORDER if any(m.klass == k for m in members))
    return _decided(klass, members, quantity)
