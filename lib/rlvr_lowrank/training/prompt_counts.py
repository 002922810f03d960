"""How many times each training prompt was seen: ``prompt_counts.json`` of a run directory (claim C1).

Implicit reward overfitting needs prompts that are revisited: with none revisited, the sampled training reward
is an unbiased estimate on the test distribution. The count is taken where the prompts are actually used, in
the reward call (``counting_reward`` wraps the reward function): TRL passes it the ``prompts`` of every
completion it scores and its ``trainer_state``. That is independent of how the sampler orders prompts, of the
number of processes (each rank logs the completions it scored, and the counts are summed over ranks) and of a
resume: every rank appends one line per reward call to ``prompts_seen/rank<r>.jsonl`` (``step`` = the optimizer
step the completions train, ``completions`` per prompt index), a resume truncates those lines to the
checkpoint's step like the other logs (``reset``), and at the end ``write_counts`` sums them. A prompt's
``seen`` = its scored completions / num_generations = the number of groups drawn for it.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
from collections import Counter
from pathlib import Path

from .. import fileio

LOG_DIR = "prompts_seen"
FILE = "prompt_counts.json"


def prompt_key(prompt) -> str:
    """A prompt as a dictionary key: the text, or a conversational prompt's messages as canonical JSON."""
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


def index_of(prompts) -> dict[str, int]:
    """Prompt key -> its first row in the training dataset."""
    out: dict[str, int] = {}
    for i, p in enumerate(prompts):
        out.setdefault(prompt_key(p), i)
    return out


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def counting_reward(fn, run: Path, prompt_index: dict[str, int]):
    """``fn`` with the count of its prompts logged on each call (one line per call in this rank's log); a call
    without ``prompts`` or ``trainer_state`` (outside a trainer) is not counted. ``__name__`` is kept (TRL
    logs rewards/<__name__>/mean)."""
    log = Path(run) / LOG_DIR / f"rank{rank()}.jsonl"

    @functools.wraps(fn)
    def wrapped(completions, *args, **kwargs):
        out = fn(completions, *args, **kwargs)
        prompts, state = kwargs.get("prompts"), kwargs.get("trainer_state")
        if prompts is not None and state is not None:
            counts = Counter(str(prompt_index.get(prompt_key(p), "unknown")) for p in prompts)
            fileio.append_jsonl(log, {"step": int(state.global_step) + 1, "completions": dict(sorted(counts.items()))})
        return out

    return wrapped


def reset(run: Path, resume_step: int | None) -> None:
    """This rank's log before training: removed for a fresh start, cut to the lines of steps <= the
    checkpoint's step for a resume (the later steps are trained, and counted, again)."""
    log = Path(run) / LOG_DIR / f"rank{rank()}.jsonl"
    if resume_step is None:
        log.unlink(missing_ok=True)
    elif log.exists():
        rows = [r for r in fileio.read_jsonl(log) if r["step"] <= resume_step]
        fileio.write_text(log, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def counts(run: Path, n_prompts: int, num_generations: int) -> dict:
    """The summed logs of every rank: per prompt index its scored completions and ``seen`` (completions /
    num_generations), and a summary over the ``n_prompts`` prompts of the dataset (never-seen ones count 0)."""
    total: Counter = Counter()
    last = 0
    for log in sorted((Path(run) / LOG_DIR).glob("rank*.jsonl")):
        for row in fileio.read_jsonl(log):
            total.update(row["completions"])
            last = max(last, row["step"])
    unknown = total.pop("unknown", 0)
    seen = [total.get(str(i), 0) / num_generations for i in range(n_prompts)]
    return {"num_generations": num_generations, "n_prompts": n_prompts, "last_step": last,
            "summary": {"min": min(seen, default=0.0), "max": max(seen, default=0.0),
                        "mean": sum(seen) / n_prompts if n_prompts else 0.0,
                        "never_seen": sum(s == 0 for s in seen), "seen_more_than_once": sum(s > 1 for s in seen)},
            "unknown_prompt_completions": unknown,
            "per_prompt": [{"index": i, "completions": total.get(str(i), 0), "seen": s} for i, s in enumerate(seen)]}


def write_counts(run: Path, n_prompts: int, num_generations: int) -> dict:
    """``prompt_counts.json`` from the logs (:func:`counts`); the logs are then removed."""
    out = counts(run, n_prompts, num_generations)
    fileio.write_json(Path(run) / FILE, out)
    shutil.rmtree(Path(run) / LOG_DIR, ignore_errors=True)
    return out


def read(run: Path) -> dict | None:
    """A finished run's prompt counts, or None when it has none (trained before they were recorded)."""
    path = Path(run) / FILE
    return fileio.read_json(path) if path.exists() else None
