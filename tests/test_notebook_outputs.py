"""Committed notebooks hold no progress bars, widget stubs, warnings or absolute paths; the sanitizer that
keeps them out (pipeline.notebook_outputs) on constructed notebooks; the pipeline applies it and a
cleaned notebook is not stale."""
import copy
import json
import os
import site
import sys

import pytest

from rlvr_lowrank import fileio, paths
from rlvr_lowrank.pipeline import notebook_outputs as no
from rlvr_lowrank.pipeline import reproduce

ROOT = str(paths.ROOT)
SITE = site.getsitepackages()[0]
BAR = "Loading weights:  50%|█████     | 19/38 [00:00<00:00, 812.3it/s]"


@pytest.mark.parametrize("path", no.committed_notebooks(), ids=lambda p: str(p.relative_to(paths.ROOT)))
def test_committed_notebook_is_clean(path):
    found = no.problems(json.loads(path.read_text(encoding="utf-8")))
    assert not found, (f"{path.relative_to(paths.ROOT)}: " + "; ".join(found[:10])
                       + " (`python -m rlvr_lowrank.pipeline.notebook_outputs` cleans every committed notebook)")


def test_the_scan_sees_every_committed_notebook():
    names = {str(p.relative_to(paths.ROOT)) for p in no.committed_notebooks()}
    assert "notebooks/02_reward_overfitting.ipynb" in names
    assert "reports/tiny/executed/03_knowledge_loss.ipynb" in names
    assert "reports/tiny-long/executed/07_claims.ipynb" in names
    assert not any(n.rsplit("/", 1)[-1].startswith(".") for n in names)


def _stream(name, text):
    return {"name": name, "output_type": "stream", "text": text.splitlines(keepends=True)}


def _dirty():
    """A notebook as papermill writes it on a machine with ipywidgets, tqdm bars and warnings."""
    widget = {"output_type": "display_data", "metadata": {},
              "data": {no.WIDGET_VIEW: {"model_id": "2ee7", "version_major": 2, "version_minor": 0},
                       "text/plain": ["Loading weights:   0%|          | 0/38 [00:00<?, ?it/s]"]}}
    warning = (f"{SITE}/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please update jupyter and ipywidgets. "
               "See https://ipywidgets.readthedocs.io/en/stable/user_install.html\n"
               "  from .autonotebook import tqdm as notebook_tqdm\n")
    return {
        "cells": [
            {"cell_type": "code", "execution_count": 1, "id": "a", "metadata": {"tags": ["parameters"]}, "outputs": [],
             "source": ["PROFILE = \"smoke\"\n", f"BASE = \"{ROOT}/data/models/tiny-base\""]},
            {"cell_type": "code", "execution_count": 2, "id": "b", "metadata": {},
             "outputs": [_stream("stderr", warning), _stream("stderr", BAR + "\r" + BAR + "\n"), widget,
                         _stream("stderr", "\n"),
                         _stream("stdout", f"run at {ROOT}/runs/tiny/full/seed0\nfrom {sys.prefix}/bin/python\n"),
                         _stream("stderr", "note: 2 runs missing\n" + BAR + "\n"),
                         {"output_type": "execute_result", "execution_count": 2, "metadata": {},
                          "data": {"text/plain": [f"'{os.path.expanduser('~')}/cache/x.json'"],
                                   "text/html": [f"<td>{ROOT}/figures/tiny/fig.png</td>"],
                                   "image/png": "iVBORw0KGgo+/AAAA/BBBB/CC=="}}],
             "source": ["x = 1"]},
            {"cell_type": "markdown", "id": "c", "metadata": {}, "source": ["see /etc/hosts/x in the source: kept"]},
        ],
        "metadata": {
            "kernelspec": {"name": "python3"},
            "papermill": {"input_path": f"{ROOT}/notebooks/02_reward_overfitting.ipynb",
                          "output_path": "/tmp/other.Bpmb/reports/tiny/executed/.02_reward_overfitting.running.ipynb",
                          "parameters": {"PROFILE": "tiny"}},
            "widgets": {"application/vnd.jupyter.widget-state+json": {"state": {"2ee7": {}}}},
        },
        "nbformat": 4, "nbformat_minor": 5,
    }


def _outputs(nb, i):
    return nb["cells"][i]["outputs"]


def test_sanitize_removes_widgets_bars_and_warnings_and_keeps_the_rest():
    nb = _dirty()
    sources = [c["source"] for c in nb["cells"]]
    before = no.problems(nb)
    assert any("widget state" in p for p in before) and any("widget view" in p for p in before)
    assert any("TqdmWarning" in p for p in before) and any("19/38" in p for p in before)
    assert any("absolute path" in p for p in before)

    removed = no.sanitize(nb)
    assert no.problems(nb) == []
    assert "widgets" not in nb["metadata"] and nb["metadata"]["kernelspec"] == {"name": "python3"}
    assert any("TqdmWarning" in r for r in removed) and any(r.startswith("widget view") for r in removed)
    outs = _outputs(nb, 1)
    # the warning, the bar-only stream, the widget and the blank stream went; stdout, the message and the result stay
    assert [o["output_type"] + ":" + o.get("name", "") for o in outs] == ["stream:stdout", "stream:stderr",
                                                                          "execute_result:"]
    assert "".join(outs[0]["text"]) == "run at runs/tiny/full/seed0\nfrom <venv>/bin/python\n"
    assert "".join(outs[1]["text"]) == "note: 2 runs missing\n"
    assert outs[2]["data"]["text/plain"] == ["'~/cache/x.json'"]
    assert outs[2]["data"]["text/html"] == ["<td>figures/tiny/fig.png</td>"]
    assert outs[2]["data"]["image/png"] == "iVBORw0KGgo+/AAAA/BBBB/CC=="  # images untouched
    assert [c["source"] for c in nb["cells"]] == sources  # sources untouched
    pm = nb["metadata"]["papermill"]
    assert pm["input_path"] == "notebooks/02_reward_overfitting.ipynb"
    assert pm["output_path"] == "reports/tiny/executed/02_reward_overfitting.ipynb"

    again = copy.deepcopy(nb)
    assert no.sanitize(again) == [] and again == nb  # idempotent


def test_neutral_paths_forms():
    assert no.neutral_paths(f"{SITE}/tqdm/auto.py:21: x") == "<site-packages>/tqdm/auto.py:21: x"
    assert no.neutral_paths(f"cwd {ROOT}") == "cwd ."
    assert no.neutral_paths(f"{ROOT}/notebooks/a.ipynb") == "notebooks/a.ipynb"
    assert no.neutral_paths("/srv/ci/lib/python3.12/site-packages/torch/x.py") == "<site-packages>/torch/x.py"
    assert no.neutral_paths("/work/wt-7/runs/smoke/planted-rl/base-bf16") == "runs/smoke/planted-rl/base-bf16"
    # not paths of a machine: URLs, ratios, relative paths, a lone slash
    for text in ("https://github.com/a/b", "19/38 done", "runs/tiny/full/seed0", "a / b", "reports/<profile>/c0.json"):
        assert no.neutral_paths(text) == text
        assert not no.ABSOLUTE.findall(text)


def test_a_stderr_line_that_is_neither_bar_nor_warning_is_kept():
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": [], "execution_count": 1,
                     "outputs": [_stream("stderr", "Traceback (most recent call last):\nValueError: 50% of it\n")]}],
          "metadata": {}}
    assert no.sanitize(nb) == [] and len(_outputs(nb, 0)) == 1


def test_sanitize_file_keeps_the_layout_and_leaves_a_clean_file_alone(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(_dirty(), indent=1, ensure_ascii=False), encoding="utf-8")  # no final newline
    assert no.sanitize_file(path)
    text = path.read_text(encoding="utf-8")
    assert not text.endswith("\n") and "█" not in text and text == json.dumps(json.loads(text), indent=1,
                                                                                 ensure_ascii=False)
    assert list(json.loads(text)) == ["cells", "metadata", "nbformat", "nbformat_minor"]  # key order kept
    mtime = path.stat().st_mtime_ns
    assert no.sanitize_file(path) == [] and path.stat().st_mtime_ns == mtime


def test_quiet_kernels_sets_the_variables_and_restores_them(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # a value already set is kept
    with no.quiet_kernels():
        assert os.environ["TQDM_DISABLE"] == "1" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"
        assert os.environ["TRANSFORMERS_VERBOSITY"] == "error"
    assert "TQDM_DISABLE" not in os.environ and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"


def test_fingerprint_reads_the_cells_not_the_stored_outputs(tmp_path, monkeypatch):
    src = paths.NOTEBOOKS / "07_claims.ipynb"
    monkeypatch.setattr(paths, "NOTEBOOKS", tmp_path)
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")
    nb = fileio.read_json(src)
    (tmp_path / "07_claims.ipynb").write_text(json.dumps(nb, indent=1))
    params = {"PROFILE": "smoke"}
    before = reproduce.fingerprint("07_claims", "smoke", params)
    for cell in nb["cells"]:  # other outputs, counts and metadata: the same notebook
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [_stream("stderr", BAR + "\n")], 99
    nb["metadata"]["widgets"] = {"x": 1}
    (tmp_path / "07_claims.ipynb").write_text(json.dumps(nb))
    assert reproduce.fingerprint("07_claims", "smoke", params) == before
    nb["cells"][-1]["source"] = ["print('changed')"]
    (tmp_path / "07_claims.ipynb").write_text(json.dumps(nb))
    assert reproduce.fingerprint("07_claims", "smoke", params) != before


def test_run_notebook_writes_a_clean_copy_with_the_kernel_quiet(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "REPORTS", tmp_path / "reports")  # a checkout elsewhere: its path is cut back
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    seen = {}

    def fake_execute(input_path, output_path, **kwargs):  # what papermill would write, bars and all
        seen["env"] = os.environ.get("TQDM_DISABLE")
        nb = _dirty()
        nb["metadata"]["papermill"]["output_path"] = output_path
        with open(output_path, "w", encoding="utf-8") as fh:
            json.dump(nb, fh, indent=1, ensure_ascii=False)

    monkeypatch.setattr(reproduce.papermill, "execute_notebook", fake_execute)
    out = reproduce.run_notebook("07_claims", "smoke", force=True)
    assert seen["env"] == "1" and "TQDM_DISABLE" not in os.environ
    nb = fileio.read_json(out)
    assert no.problems(nb) == []
    assert nb["metadata"]["papermill"]["output_path"] == "reports/smoke/executed/07_claims.ipynb"
    params = reproduce.checked_parameters("07_claims", "smoke")
    assert reproduce.is_cached("07_claims", "smoke", reproduce.fingerprint("07_claims", "smoke", params))
