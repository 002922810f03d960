"""What every claim module shares: the Claim record, the verdict words, and the cN.json base class.

The thresholds of each claim were written before any training run of this project was looked at
(git history shows them landing before the results); they are never moved to make a claim pass.
A claim needs at least ``MIN_SEEDS`` seeds, otherwise its verdict is "inconclusive".

The interval rule (``both_intervals``), shared by every claim: a claim's rule is written once as a
function of which interval it reads (``"ci"``: percentile bootstrap, ``"t_ci"``: Student t). The
two-valued verdict holds only when the rule is satisfied under both intervals, "rule not met" when it
fails under both, and is inconclusive when they disagree. A rule on means alone reads no interval, so both
readings agree and its verdict is unchanged. ``verdict_bootstrap_only`` keeps the earlier rule (the
bootstrap interval alone) so the report can show what the tightening changed.

That two-valued verdict is the *earlier* vocabulary: the verdict in force is ``cN.classify(stored)``
(claims.verdict: holds, refuted, below threshold, inconclusive with its minimum detectable effect,
untestable here), which tells apart the situations "rule not met" lumps together. The report shows both,
old → new, once per claim (``verdict_sentence``, report.claim_entry).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

from .. import fileio, paths
from ..training import runs
from . import notebooks, parallel

MIN_SEEDS = 3
# the two-valued rule's words; "rule not met" is what earlier reports printed as "does not hold": it lumps
# together refuted, below threshold, underpowered and untestable, so the report replaces it by cN.classify
HOLDS, FAILS, INCONCLUSIVE = "holds", "rule not met", "inconclusive"


BOOTSTRAP, T_INTERVAL = "ci", "t_ci"  # the two interval keys of a stats.summarize() dict
INTERVAL_NAMES = {BOOTSTRAP: "bootstrap CI", T_INTERVAL: "t-interval"}
WHY_TIGHTENED = ("with 3 to 5 seeds a percentile bootstrap spans about the observed range of the seeds and is "
                 "narrower than the Student-t interval of the same numbers, so a bound that only the bootstrap "
                 "satisfies is not evidence enough")


def both_intervals(rule: Callable[[str], bool]) -> dict:
    """The verdict of a rule read once with each interval key (``rule("ci")``, ``rule("t_ci")``).

    Returns ``verdict`` (holds only when both readings satisfy the rule, inconclusive when they
    disagree), ``verdict_bootstrap_only`` (the earlier rule) and, when they disagree, ``why``.
    A NaN bound (fewer than two seeds) satisfies no threshold.
    """
    boot, t = bool(rule(BOOTSTRAP)), bool(rule(T_INTERVAL))
    out = {"verdict": HOLDS if boot and t else (FAILS if not (boot or t) else INCONCLUSIVE),
           "verdict_bootstrap_only": HOLDS if boot else FAILS}
    if boot != t:
        yes, no = (BOOTSTRAP, T_INTERVAL) if boot else (T_INTERVAL, BOOTSTRAP)
        out["why"] = f"the thresholds are met with the {INTERVAL_NAMES[yes]} but not with the {INTERVAL_NAMES[no]}"
    return out


def inconclusive(why: str) -> dict:
    """An inconclusive verdict under both rules (too few seeds, nothing to measure)."""
    return {"verdict": INCONCLUSIVE, "verdict_bootstrap_only": INCONCLUSIVE, "why": why}


def interval(summary: dict, key: str) -> tuple[float, float]:
    """The (lo, hi) interval ``key`` of a summarize() dict; NaNs where the summary lacks it."""
    lo, hi = summary.get(key) or (float("nan"), float("nan"))
    return (float("nan") if lo is None else float(lo), float("nan") if hi is None else float(hi))


ARM_LABELS = {"full": "Full RL", "lora_r1": "rank-1 LoRA", "mix_full": "multi-task Full RL", "base": "base model",
              "random_reward": "random-reward null (not RL with a verifier)"}
VARIANT_LABELS = {"base": "base model", "full": "full ΔW", "normmatch": "rank-1, norm-matched",
                  "trunc": "rank-1, truncated", "residual": "residual (ΔW − rank-1)",
                  "random": "random rank-1 direction"}
PR1S_VARIANTS = {"trunc": "truncated", "normmatch": "norm-matched"}


def arm_label(name: str) -> str:
    """A reader's label for an experiment or substituted-model key: "pr1s_trunc_k10" -> "PR1S (K = 10,
    truncated)", "normmatch" -> "rank-1, norm-matched"; unknown names are returned with spaces."""
    if name in ARM_LABELS:
        return ARM_LABELS[name]
    if name in VARIANT_LABELS:
        return VARIANT_LABELS[name]
    parts = name.split("_")
    if parts[0] == "pr1s" and len(parts) == 3 and parts[2].startswith("k"):
        return f"PR1S (K = {parts[2][1:]}, {PR1S_VARIANTS.get(parts[1], parts[1])})"
    return name.replace("_", " ")


@dataclass(frozen=True)
class Claim:
    """One claim: the paper's statement, our operational test, its fixed thresholds, and the
    headline quantities of its cN.json shown in the report ((label, key path) pairs)."""
    id: str
    paper: str  # the paper's statement (quoted or closely paraphrased, with its source)
    test: str  # our operational test
    thresholds: dict = field(default_factory=dict)
    quantities: tuple = ()
    plain: str = ""  # what is tested, in plain words (one line of the README's findings)
    lines: dict = field(default_factory=dict)  # quantity label -> names of the thresholds drawn on it


def too_few_seeds(n: int) -> str | None:
    """The "why" of an inconclusive verdict when a claim has fewer than MIN_SEEDS seeds, else None."""
    return f"{n} seed(s) < {MIN_SEEDS}" if n < MIN_SEEDS else None


@dataclass
class ClaimResult:
    """Base of the cN.json schemas: one dataclass field per JSON key.

    Fields left at None are optional keys and are not written (e.g. ``why`` exists only for an
    inconclusive verdict), so the file holds exactly the keys the verdict produced.
    """
    FILE = ""  # set by each subclass: "c0.json", ...

    def to_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    @classmethod
    def from_json(cls, data: dict):
        data = {k: v for k, v in data.items() if k != RUNS_KEY}  # provenance, checked by the report
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"{cls.FILE}: keys {unknown} are not in the {cls.__name__} schema")
        return cls(**data)

    @classmethod
    def path(cls, profile: str) -> Path:
        """Where this result is read from (paths.report_source: this session's copy, else the tracked one)."""
        return paths.report_source(profile, cls.FILE)

    def write(self) -> None:
        """Write cN.json into paths.report_dir(profile) (the tracked reports/<profile>/ under the pipeline),
        with the run hashes of the runs the claim's notebook reads, so the report can refuse a result whose
        runs have changed since. Returns nothing, so a notebook's last line ``result.write()`` displays
        nothing (nbval compares that cell's output)."""
        stem = notebooks.by_claim(self.FILE.removesuffix(".json").upper()).stem
        data = {**self.to_json(),
                RUNS_KEY: runs.recorded_hashes(self.profile, notebooks.experiments_read(stem, self.profile))}
        fileio.write_json(paths.report_dir(self.profile) / self.FILE, data)

    @classmethod
    def read(cls, profile: str):
        return cls.from_json(fileio.read_json(cls.path(profile)))


# ----------------------------------------------------------------------------------------------
# The claim protocol: what every claim module (c0 ... c4) provides, and the defaults of its optional hooks
# ----------------------------------------------------------------------------------------------

REQUIRED = {
    "CLAIM": "the Claim: paper wording, operational test, thresholds, headline quantities",
    "RESULT": "the ClaimResult subclass that is its cN.json",
    "judge": "judge(summaries) -> verdict dict: the claim's rule on its interval summaries (two-valued, earlier)",
    "classify": "classify(stored cN.json) -> verdict.Verdict: the verdict in force, in the five classes",
    "decide": "decide(profile, ...) -> RESULT: the notebook's entry point, from measured rows to a result",
    "readme_block": "readme_block(result) -> str: the claim's README section",
}
HOOKS = {
    "rejudge": "rejudge(stored cN.json) -> verdict dict; default: judge(stored)",
    "sensitivity": "sensitivity(stored) -> sentences naming documented readings that flip the verdict; default: none",
    "notes": "notes(stored) -> sentences the claims table needs to be read right; default: none",
}


def protocol_problems(module: ModuleType) -> list[str]:
    """What a claim module lacks of the protocol (empty when it satisfies it)."""
    out = [f"{module.__name__} has no {name} ({why})" for name, why in REQUIRED.items() if not hasattr(module, name)]
    if not out:
        if not isinstance(module.CLAIM, Claim):
            out.append(f"{module.__name__}.CLAIM is not a Claim")
        if not (isinstance(module.RESULT, type) and issubclass(module.RESULT, ClaimResult)):
            out.append(f"{module.__name__}.RESULT is not a ClaimResult subclass")
        elif module.RESULT.FILE != f"{module.CLAIM.id.lower()}.json":
            out.append(f"{module.__name__}.RESULT.FILE is {module.RESULT.FILE!r}, not {module.CLAIM.id.lower()}.json")
    out += [f"{module.__name__}.{name} is not callable" for name in [*REQUIRED, *HOOKS]
            if name not in ("CLAIM", "RESULT") and hasattr(module, name) and not callable(getattr(module, name))]
    return out


def rejudge(module: ModuleType, stored: dict) -> dict:
    """The verdict under the rule in force, recomputed from a stored cN.json (never a stored verdict string)."""
    hook = getattr(module, "rejudge", None)
    return hook(stored) if hook else module.judge(stored)


def sensitivity(module: ModuleType, stored: dict) -> list[str]:
    hook = getattr(module, "sensitivity", None)
    return list(hook(stored)) if hook else []


def notes(module: ModuleType, stored: dict) -> list[str]:
    hook = getattr(module, "notes", None)
    return list(hook(stored)) if hook else []


def classified(module: ModuleType, result: "ClaimResult") -> "ClaimResult":
    """``result`` (a fresh cN result) with ``verdict`` set to its class in force (``module.classify``) and ``why``
    to that class's reason; the two-valued verdict moves to ``verdict_two_valued``. Every ``decide`` ends here,
    so a notebook that prints ``result.verdict`` prints the class the report will show."""
    k = module.classify(result.to_json())
    result.verdict_two_valued, result.verdict, result.why = result.verdict, k.klass, k.reason
    return result


def verdict_sentence(module: ModuleType, stored: dict) -> str:
    """The claim's verdict as its README block states it: the class in force with its reason and, where the
    data could not decide, the power of the deciding quantity; then the two-valued verdict of earlier reports."""
    k, old = module.classify(stored), rejudge(module, stored)["verdict"]
    line = f"**Verdict (profile {stored['profile']}): {module.CLAIM.id} {k.klass}** — {k.reason}."
    if k.klass == INCONCLUSIVE and k.power_line() and k.power_line() not in k.reason:
        line += f" Power: {k.power_line()}."
    return line + f" (Earlier two-valued rule: {old}.)"


RUNS_KEY = "runs"  # cN.json: {"<experiment>/seed<k>": run hash} of the runs the result was computed from


def score_models(fn: Callable, specs: list[tuple], processes: int = 1) -> list[dict]:
    """Rows ``{"seed": seed, **head, **fn(*args)}`` of ``specs`` = (seed, head, args, variant, reuse), in order,
    computed by ``processes`` processes (parallel.map_tasks: the rows do not depend on it). A spec with
    ``reuse`` is not scored: it takes the result of the last "base" variant before it (base_reused)."""
    scored = iter(parallel.map_tasks(fn, [args for _, _, args, _, reuse in specs if not reuse], processes))
    rows, base = [], None
    for seed, head, _, variant, reuse in specs:
        got = base if reuse else next(scored)
        base = got if variant == "base" else base
        rows.append({"seed": seed, **head, **got})
    return rows


def base_reused(runs_by_seed: dict, index: int, variant: str) -> bool:
    """Whether the base model of the ``index``-th seed's run need not be scored again: every run was trained
    from one base (runs.same_base) and an earlier seed scored it (greedy decoding of one model is deterministic)."""
    return variant == "base" and index > 0 and runs.same_base(runs_by_seed.values())
