"""What an executed notebook may keep in its outputs: no progress bars, widget stubs, warnings or paths of
the machine that ran it.

Executed notebooks are committed (``reports/<profile>/executed/``, and the smoke outputs stored in
``notebooks/``), so what a kernel printed on the way -- a progress bar, a warning naming a file of the
virtualenv, papermill's record of where it read and wrote -- would be read by everyone who opens them.
Two layers keep them out:

* at the source, :func:`quiet_kernels` sets the variables that turn progress bars and transformers'
  advisory logging off in the kernels papermill starts (:data:`KERNEL_ENV`). transformers' GGUF conversion
  calls ``tqdm.auto`` directly, which under ipywidgets draws a widget that no variable turns off, so
* after papermill wrote a notebook, :func:`sanitize` removes what is left:

  - the widget state store (``metadata.widgets``) and every output that displays a widget (a progress
    bar: without the JavaScript that draws it, a reader sees a text stub of its first frame);
  - from stderr streams, the lines of progress bars (``42%|████``, ``[00:01<00:02, 3.1it/s]``) and of
    Python warnings (``file.py:21: SomeWarning: …`` and the source line echoed under it); a stream left
    blank goes; other stderr lines (an error message a cell means to show) stay;
  - absolute paths in outputs and metadata: this checkout's root becomes relative (``notebooks/…``), the
    virtualenv's site-packages ``<site-packages>``, the virtualenv ``<venv>``, the home directory ``~``; a
    path of another checkout to one of the repository's folders (``/tmp/x/reports/…``) becomes relative
    too; papermill's temporary output name ``.<stem>.running.ipynb`` becomes ``<stem>.ipynb``.

:func:`problems` lists what :func:`sanitize` would remove, for the test that scans every committed notebook.
Only outputs and metadata change: sources are never touched, and a notebook's fingerprint
(``reproduce.fingerprint``) reads its sources only, so a sanitized notebook is not stale.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import site
import sys
import sysconfig
from pathlib import Path

from .. import paths

# the kernels papermill starts inherit these (quiet_kernels)
KERNEL_ENV = {
    "TQDM_DISABLE": "1",                    # tqdm's own default (text bars; a notebook bar overrides it)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",    # huggingface_hub's bars, and transformers' (logging.tqdm)
    "TRANSFORMERS_VERBOSITY": "error",      # transformers' advisory warnings on stderr
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "widgets"   # metadata key of ipywidgets' state store
# repository folders a path of another checkout is cut back to
REPO_DIRS = ("notebooks", "reports", "runs", "figures", "data", "configs", "lib", "tests", "docs", "benchmarks")

# a tqdm bar: "NN%|" or the "[elapsed<remaining, rate]" block (also without a total: "38it [00:00, 9.1it/s]")
PROGRESS = re.compile(r"\d{1,3}%\||\[\d+:\d\d(?::\d\d)?(?:<[\d:?]+)?(?:,\s*[^\]]*)?\]")
# a Python warning as warnings.showwarning writes it: "<file>:<line>: <Category>Warning: <message>"
WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
# an absolute path of at least two parts: not preceded by a word, a dot, a colon (URLs), a slash or "~"/"<"
ABSOLUTE = re.compile(r"(?<![\w.:/~<>-])/(?:[\w.+@-]+/)+[\w.+@-]*")
_FOREIGN_SITE = re.compile(r"(?<![\w.:/~<>-])/(?:[\w.+@-]+/)*?site-packages(?=/|\b)")
_FOREIGN_REPO = re.compile(r"(?<![\w.:/~<>-])/(?:[\w.+@-]+/)+?(?=(?:" + "|".join(REPO_DIRS) + r")/)")
_RUNNING = re.compile(r"(?:(?<=/)|^)\.([^/]+)\.running\.ipynb$")


@contextlib.contextmanager
def quiet_kernels():
    """Within this block (and in the kernels started inside it, which inherit the environment) progress bars
    and transformers' advisory warnings are off (:data:`KERNEL_ENV`); a value already set is kept."""
    old = {k: os.environ.get(k) for k in KERNEL_ENV}
    for k, v in KERNEL_ENV.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def machine_prefixes(root: Path | None = None) -> list[tuple[str, str]]:
    """(absolute prefix, neutral form) for this machine, longest prefix first: the site-packages folders,
    the virtualenv, the repository root (made relative), the home directory."""
    root = Path(root or paths.ROOT)
    pairs = {}
    for sp in {*site.getsitepackages(), site.getusersitepackages(), sysconfig.get_paths()["purelib"]}:
        pairs[str(sp)] = "<site-packages>"
    pairs[sys.prefix] = "<venv>"
    pairs[str(root) + "/"] = ""
    pairs[str(root)] = "."
    home = os.path.expanduser("~")
    if home not in ("/", "~", ""):
        pairs[home] = "~"
    return sorted(((p, r) for p, r in pairs.items() if p and p != "/"), key=lambda pr: -len(pr[0]))


def neutral_paths(text: str, root: Path | None = None) -> str:
    """``text`` with the absolute paths of this machine (and of other checkouts of the repository) replaced
    by relative or neutral forms (module docstring)."""
    for prefix, neutral in machine_prefixes(root):
        if prefix in text:
            text = re.sub(r"(?<![\w.-])" + re.escape(prefix) + (r"(?![\w.+@-])" if not prefix.endswith("/") else ""),
                          neutral, text)
    text = _FOREIGN_SITE.sub("<site-packages>", text)
    return _FOREIGN_REPO.sub("", text)


def _strip_stderr(text: str) -> tuple[str, list[str]]:
    """(what stays of a stderr text, the lines removed)."""
    kept, removed, in_warning = [], [], False
    for line in text.splitlines(keepends=True):
        shown = line.rstrip("\r\n").rsplit("\r", 1)[-1]   # what a terminal shows after the carriage returns
        if WARNING.search(shown):
            in_warning = True
        elif in_warning and shown[:1] in (" ", "\t"):
            pass  # the source line the warning echoes under itself
        else:
            in_warning = False
            if not PROGRESS.search(line):
                kept.append(line)
                continue
        removed.append(shown)
    out = "".join(kept)
    return ("" if not out.strip() else out), [r for r in removed if r.strip()]


def _text(value) -> str:
    return "".join(value) if isinstance(value, list) else value


def _like(original, text: str):
    """``text`` in the form of ``original`` (nbformat stores multi-line strings as lists of lines)."""
    return text.splitlines(keepends=True) if isinstance(original, list) else text


def _neutral_json(value, root):
    if isinstance(value, str):
        return neutral_paths(value, root)
    if isinstance(value, list):
        return [_neutral_json(v, root) for v in value]
    if isinstance(value, dict):
        return {k: _neutral_json(v, root) for k, v in value.items()}
    return value


def sanitize(nb: dict, root: Path | None = None) -> list[str]:
    """Clean a notebook (its JSON as a dict) in place; return what was removed, one line each (for a log)."""
    removed = []
    meta = nb.get("metadata", {})
    if WIDGET_STATE in meta:
        del meta[WIDGET_STATE]
        removed.append("widget state (metadata.widgets)")
    pm = meta.get("papermill")
    if isinstance(pm, dict) and isinstance(pm.get("output_path"), str):
        pm["output_path"] = _RUNNING.sub(r"\1.ipynb", pm["output_path"])
    nb["metadata"] = _neutral_json(meta, root)
    for cell in nb.get("cells", []):
        if "metadata" in cell:
            cell["metadata"] = _neutral_json(cell["metadata"], root)
        if "outputs" not in cell:
            continue
        outputs = []
        for out in cell["outputs"]:
            kind = out.get("output_type")
            if kind in ("display_data", "execute_result") and WIDGET_VIEW in out.get("data", {}):
                removed.append("widget view: " + _text(out["data"].get("text/plain", "")).strip()[:80])
                continue
            if kind == "stream":
                text = _text(out.get("text", ""))
                if out.get("name") == "stderr":
                    text, gone = _strip_stderr(text)
                    removed += gone
                    if not text:
                        continue
                out["text"] = _like(out.get("text", ""), neutral_paths(text, root))
            elif kind in ("display_data", "execute_result"):
                out["data"] = {m: (_like(v, neutral_paths(_text(v), root)) if _is_text(m, v) else v)
                               for m, v in out["data"].items()}
            elif kind == "error":
                out["traceback"] = [neutral_paths(t, root) for t in out.get("traceback", [])]
                out["evalue"] = neutral_paths(out.get("evalue", ""), root)
            outputs.append(out)
        cell["outputs"] = outputs
    return removed


def _is_text(mime: str, value) -> bool:
    return (mime.startswith("text/") or mime.endswith("json")) and isinstance(value, (str, list))


def _brief(line: str) -> str:
    """A removed stderr line, shortened for a problem list: a warning from its category on (its file path
    is as long as the machine's, and would push the category out of the first 80 characters)."""
    m = re.search(r"\w*Warning: .*", line) if WARNING.match(line) else None
    return (m.group(0) if m else line)[:80]


def problems(nb: dict) -> list[str]:
    """What a committed notebook must not hold, one line each: widget state or views, progress-bar or
    warning lines on stderr, absolute paths in outputs or metadata (images are not scanned)."""
    found = []
    meta = nb.get("metadata", {})
    if WIDGET_STATE in meta:
        found.append("metadata.widgets (widget state)")
    for hit in ABSOLUTE.findall(json.dumps(meta, ensure_ascii=False)):
        found.append(f"metadata: absolute path {hit}")
    for i, cell in enumerate(nb.get("cells", [])):
        for hit in ABSOLUTE.findall(json.dumps(cell.get("metadata", {}), ensure_ascii=False)):
            found.append(f"cell {i} metadata: absolute path {hit}")
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            texts = []
            if kind == "stream":
                text = _text(out.get("text", ""))
                if out.get("name") == "stderr":
                    _, gone = _strip_stderr(text)
                    found += [f"cell {i} stderr: {_brief(g)}" for g in gone]
                texts.append(text)
            elif kind in ("display_data", "execute_result"):
                if WIDGET_VIEW in out.get("data", {}):
                    found.append(f"cell {i}: widget view")
                texts += [_text(v) for m, v in out.get("data", {}).items() if _is_text(m, v)]
            elif kind == "error":
                texts += list(out.get("traceback", [])) + [out.get("evalue", "")]
            for text in texts:
                found += [f"cell {i} output: absolute path {hit}" for hit in ABSOLUTE.findall(text)]
    return found


def sanitize_file(path: Path, root: Path | None = None) -> list[str]:
    """:func:`sanitize` a notebook file, rewriting it only when something changed, in its own layout (indent 1,
    keys in their order, non-ASCII kept, a final newline where it had one); returns what was removed."""
    raw = Path(path).read_text(encoding="utf-8")
    nb = json.loads(raw)
    removed = sanitize(nb, root)
    text = json.dumps(nb, indent=1, ensure_ascii=False) + ("\n" if raw.endswith("\n") else "")
    if text != raw:
        tmp = Path(path).with_name(f".{Path(path).name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return removed


def committed_notebooks() -> list[Path]:
    """The notebooks whose outputs are committed: ``notebooks/*.ipynb`` and ``reports/*/executed/*.ipynb``
    (not the hidden temporaries or ``*.failed.ipynb``)."""
    found = sorted(paths.NOTEBOOKS.glob("*.ipynb")) + sorted(paths.REPORTS.glob("*/executed/*.ipynb"))
    return [p for p in found if not p.name.startswith(".") and not p.name.endswith(".failed.ipynb")]


def main() -> None:
    """``python -m rlvr_lowrank.pipeline.notebook_outputs``: clean every committed notebook in place (after
    saving outputs into ``notebooks/`` from JupyterLab, say); prints the files it changed."""
    for path in committed_notebooks():
        before = path.read_bytes()
        removed = sanitize_file(path)
        if path.read_bytes() != before:
            print(f"{path.relative_to(paths.ROOT)}: {len(removed)} item(s) removed, {len(before)} -> "
                  f"{path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
