"""Training and test JSONL for the paper-scale profiles, from a public math dataset in its own format.

``python -m rlvr_lowrank prepare-math --format math500 --input test.jsonl --out data/math/test.jsonl``
reads a local copy of the dataset (JSONL, JSON or Parquet, as the Hugging Face Hub serves it; download it
once on a machine with network, e.g. ``hf download HuggingFaceH4/MATH-500 --repo-type dataset``) and writes
one row per problem, the shape ``training.train.train_dataset`` and ``checkpoints.math_eval`` read::

    {"prompt": [{"role": "user", "content": "<problem>\\n\\nPlease reason step by step, and put your final
      answer within \\\\boxed{}."}], "answer": "<reference, a bare LaTeX expression>", "id": "<row id>"}

Formats (the columns each dataset card documents):

* ``math500`` -- HuggingFaceH4/MATH-500 (``problem``, ``solution``, ``answer``, ``unique_id``): the answer column.
* ``math`` -- the MATH dataset of Hendrycks et al. as republished on the Hub (``problem``, ``solution``, ``level``,
  ``type``; e.g. DigitalLearningGmbH/MATH-lighteval): the last ``\\boxed{}`` of the worked solution.
* ``gsm8k`` -- openai/gsm8k, config ``main`` (``question``, ``answer``): the number after ``####``.

The prompt is the conversational template of Qwen2.5-Math and DeepSeek-R1's evaluations (the problem, then
"Please reason step by step, and put your final answer within \\boxed{}."), so the reward
(``rewards.boxed_math_reward``) finds the answer where the prompt asked for it. TRL applies the model's chat
template. A row whose answer cannot be read (no ``\\boxed{}`` in the solution, an empty answer, no ``####``) is
counted and skipped, and a summary line names how many; nothing is half written (atomic write).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import fileio
from .math_verifier import last_boxed

FORMATS = ("math500", "math", "gsm8k")
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
_GSM8K_ANSWER = re.compile(r"####\s*(.+?)\s*$", re.S)


def _problem_and_answer(row: dict, fmt: str) -> tuple[str | None, str | None]:
    if fmt == "math500":
        return row.get("problem"), row.get("answer")
    if fmt == "math":
        solution = row.get("solution")
        return row.get("problem"), last_boxed(solution) if isinstance(solution, str) else None
    if fmt == "gsm8k":
        answer = row.get("answer")
        m = _GSM8K_ANSWER.search(answer) if isinstance(answer, str) else None
        return row.get("question"), m.group(1).replace(",", "") if m else None
    raise ValueError(f"unknown dataset format {fmt!r}; choose one of {FORMATS}")


def convert(rows: Iterable[dict], fmt: str) -> tuple[list[dict], dict]:
    """(prepared rows, counts): every row with a problem and a readable answer, in input order."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; choose one of {FORMATS}")
    out, skipped = [], {"no_problem": 0, "no_answer": 0}
    for i, row in enumerate(rows):
        problem, answer = _problem_and_answer(row, fmt)
        if not isinstance(problem, str) or not problem.strip():
            skipped["no_problem"] += 1
            continue
        if not isinstance(answer, str) or not answer.strip():
            skipped["no_answer"] += 1
            continue
        out.append({"prompt": [{"role": "user", "content": f"{problem.strip()}\n\n{INSTRUCTION}"}],
                    "answer": answer.strip(), "id": str(row.get("unique_id", row.get("id", i)))})
    return out, {"read": len(out) + sum(skipped.values()), "written": len(out), **skipped}


def read_rows(path: str | Path) -> Iterator[dict]:
    """The rows of a local dataset file: ``.jsonl``, ``.json`` (a list of rows) or ``.parquet``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: download the dataset first (see docs/paper_scale.md)")
    if path.suffix == ".parquet":
        import pandas as pd

        yield from pd.read_parquet(path).to_dict("records")
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of rows, got {type(data).__name__}")
        yield from data
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{n}: not a JSON object ({e.msg})") from None
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .jsonl, .json or .parquet")


def prepare(input_path: str | Path, fmt: str, out: str | Path, limit: int | None = None) -> dict:
    """Convert ``input_path`` and write ``out`` (JSONL, atomically); returns the counts and prints a summary."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    rows, counts = convert(read_rows(input_path), fmt)
    if limit is not None:
        rows = rows[:limit]
        counts["written"] = len(rows)
    if not rows:
        raise ValueError(f"{input_path}: no row with a problem and a readable answer in format {fmt!r} "
                         f"({counts['read']} read); is --format right?")
    fileio.write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    skipped = counts["no_problem"] + counts["no_answer"]
    print(f"prepare-math: {counts['written']} rows written to {out}; {skipped} of {counts['read']} skipped "
          f"({counts['no_answer']} without a readable answer, {counts['no_problem']} without a problem)")
    return counts
