"""Statistics shared by the claims (and by the notebooks that compute them).

Confidence intervals: percentile bootstrap of the mean over seeds (10,000 resamples, seeded), on
*paired* per-seed differences where two arms share a seed. With 3 seeds a bootstrap interval is
narrow-ish by construction (it spans roughly the observed range); the t-interval is reported next
to it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

N_BOOTSTRAP = 10_000
CI_LEVEL = 0.95
LAST_FRACTION = 0.25  # "the last quarter of steps": C1's training-reward window, fixed with its thresholds


def bootstrap_ci(values: Sequence[float], level: float = CI_LEVEL, n: int = N_BOOTSTRAP,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return (float("nan"), float("nan"))
    if len(x) == 1:
        return (float(x[0]), float(x[0]))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def t_interval(values: Sequence[float], level: float = CI_LEVEL) -> tuple[float, float]:
    """Student-t interval of the mean (NaN with fewer than two finite values)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) < 2:
        return (float("nan"), float("nan"))
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return (float(x.mean() - half), float(x.mean() + half))


def summarize(values: Sequence[float]) -> dict:
    """Mean, bootstrap CI, t-interval, count and the values themselves: the shape of every
    measured quantity in cN.json."""
    x = [float(v) for v in values]
    return {"mean": float(np.mean(x)) if x else float("nan"), "ci": bootstrap_ci(x), "t_ci": t_interval(x),
            "n": len(x), "values": x}


def recovery(acc_variant: float, acc_base: float, acc_full: float) -> float:
    """(acc(variant) - acc(base)) / (acc(full) - acc(base)); NaN when full RL gained nothing."""
    gain = acc_full - acc_base
    return float("nan") if abs(gain) < 1e-12 else (acc_variant - acc_base) / gain


def last_steps_start(n_steps: int, fraction: float = LAST_FRACTION) -> int:
    """The step after which "the last ``fraction`` of ``n_steps`` steps" begins (at least one step)."""
    return n_steps - max(1, int(round(fraction * n_steps)))


def last_fraction_mean(metrics: pd.DataFrame, column: str = "reward", n_steps: int | None = None,
                       fraction: float = LAST_FRACTION) -> float:
    """Mean of ``column`` over the last ``fraction`` of optimizer steps: the rows with
    step > last_steps_start(n_steps).

    ``n_steps`` defaults to the run's last step; C1 passes the smaller last step of its two paired
    runs, so both windows start at the same step (the runs of a profile have the same length).
    """
    n = int(metrics["step"].max()) if n_steps is None else int(n_steps)
    return float(metrics.loc[metrics["step"] > last_steps_start(n, fraction), column].mean())


def fmt_pair(lo: float, hi: float, digits: int = 3, spec: str = "f") -> str:
    """``[lo, hi]``: how every interval is written (``spec`` "f": fixed decimals, "g": significant digits)."""
    return f"[{lo:.{digits}{spec}}, {hi:.{digits}{spec}}]"


def fmt_interval(summary: dict, key: str = "ci", digits: int = 3) -> str:
    """``[lo, hi]`` of one interval of a summarize() dict ("—" where the summary lacks it)."""
    iv = summary.get(key)
    if not iv or any(v is None or not np.isfinite(v) for v in iv):
        return "—"
    return fmt_pair(iv[0], iv[1], digits)


def fmt_mean_ci(summary: dict, digits: int = 2, key: str = "ci") -> str:
    """``mean [lo, hi]`` of a summarize() dict: the short form of notebook printouts and table cells."""
    return f"{summary['mean']:.{digits}f} {fmt_pair(*summary[key], digits)}"


def fmt_both(summary: dict, digits: int = 3) -> str:
    """``mean, bootstrap [lo, hi], t [lo, hi]``: how every claim table shows a quantity."""
    return (f"{summary['mean']:.{digits}f}, bootstrap {fmt_interval(summary, 'ci', digits)}, "
            f"t {fmt_interval(summary, 't_ci', digits)}")
