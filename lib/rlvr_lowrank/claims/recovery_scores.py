"""Recovery of the RL gain by model variants, from the scores files of ``evaluate-math``: C0's arithmetic on
a user's own models.

``python -m rlvr_lowrank recovery --base base.json --rl rl_s0.json rl_s1.json rl_s2.json
--variant rank1=r1_s0.json,r1_s1.json,r1_s2.json --variant residual=res_s0.json,... [--metric greedy|pass@1]
[--out recovery.json]``

Per seed i: gain_i = acc(RL_i) − acc(base) and recovery_i = (acc(variant_i) − acc(base)) / gain_i (claims.stats.
recovery, C0's definition); across seeds each is summarised as C0 summarises it (mean, bootstrap and Student-t
95% intervals: claims.stats.summarize). The i-th file of every variant belongs to the i-th RL model (the
variant ``substitute`` wrote from it). When the mean gain is below C0's ``min_gain`` (0.1) there is nothing
to recover: the result says "no gain to recover" with the gain, never a ratio of noise.

Every scores file must come from the same data file (its sha256), verifier and decoding settings; a mismatch is
refused, naming the two files and the field.
"""
from __future__ import annotations

from pathlib import Path

from .. import fileio
from ..checkpoints.math_eval import SCORES_KIND
from . import c0
from .stats import fmt_both, recovery, summarize

SAME_FIELDS = ("data_sha256", "verifier", "max_new_tokens", "limit", "n")
METRICS = ("greedy", "pass@1")


def _read(path: str | Path) -> dict:
    s = fileio.read_json(path)
    if not isinstance(s, dict) or s.get("kind") != SCORES_KIND:
        raise ValueError(f"{path} is not a scores file of `python -m rlvr_lowrank evaluate-math`")
    return s


def _accuracy(scores: dict, metric: str, path) -> float:
    if metric == "greedy":
        return float(scores["greedy_accuracy"])
    if "pass_at" not in scores:
        raise ValueError(f"{path} has no sampled scores; evaluate it with --samples N to read pass@1")
    return float(scores["pass_at"]["1"])


def compute(base: str | Path, rl: list[str | Path], variants: dict[str, list[str | Path]],
            metric: str = "greedy") -> dict:
    """The gain and every variant's recovery per seed and summarised; "no gain to recover" below min_gain."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if not rl:
        raise ValueError("at least one --rl scores file is needed")
    for name, files in variants.items():
        if len(files) != len(rl):
            raise ValueError(f"variant {name!r} has {len(files)} scores files for {len(rl)} RL models; "
                             "give one per RL model, in the same order")
    paths = [base, *rl, *(f for files in variants.values() for f in files)]
    scores = {str(p): _read(p) for p in paths}
    first = scores[str(base)]
    for p, s in scores.items():
        for field in SAME_FIELDS:
            if s.get(field) != first.get(field):
                raise ValueError(f"{p} and {base} differ in {field!r} ({s.get(field)!r} vs {first.get(field)!r}): "
                                 "score every model on the same data with the same settings")
    acc = {p: _accuracy(s, metric, p) for p, s in scores.items()}
    base_acc = acc[str(base)]
    gains = [acc[str(r)] - base_acc for r in rl]
    out = {"metric": metric, "base_accuracy": base_acc, "gain": summarize(gains), "min_gain": c0.THRESHOLDS["min_gain"],
           "n_items": first.get("n"), "verifier": first.get("verifier")}
    if out["gain"]["mean"] < c0.THRESHOLDS["min_gain"]:
        out["no_gain"] = (f"no gain to recover: the RL models gain {out['gain']['mean']:.3f} over the base "
                          f"(< {c0.THRESHOLDS['min_gain']}, C0's min_gain)")
        return out
    out["recovery"] = {name: summarize([recovery(acc[str(v)], base_acc, acc[str(r)]) for v, r in zip(files, rl)])
                       for name, files in variants.items()}
    return out


def markdown(result: dict) -> str:
    lines = [f"metric: {result['metric']}, base accuracy {result['base_accuracy']:.3f}, "
             f"RL gain {fmt_both(result['gain'])} (n = {result['gain']['n']} RL models)"]
    if "no_gain" in result:
        return "\n".join(lines + [result["no_gain"]])
    lines += ["", "| variant | recovery: mean, 95% intervals |", "|---|---|"]
    lines += [f"| {name} | {fmt_both(s)} |" for name, s in result["recovery"].items()]
    return "\n".join(lines)


def parse_variant(spec: str) -> tuple[str, list[str]]:
    """``name=a.json,b.json`` -> (name, [a.json, b.json])."""
    name, sep, files = spec.partition("=")
    if not sep or not name or not files:
        raise ValueError(f"--variant {spec!r}: expected NAME=FILE[,FILE...]")
    return name, [f for f in files.split(",") if f]
