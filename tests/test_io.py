"""Atomic writes keep the permissions a normal write would give (not mkstemp's private 0600)."""
import os
import stat

import pytest

from rlvr_lowrank import fileio


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077])
def test_atomic_write_is_not_private_0600_but_follows_the_umask(tmp_path, umask, mask):
    umask(mask)
    for name, write in [("README.md", lambda p: fileio.write_text(p, "x\n")),
                        ("DONE", lambda p: fileio.write_json(p, {"a": 1})),
                        ("config.yaml", lambda p: fileio.write_yaml(p, {"a": 1}))]:
        path = tmp_path / name
        write(path)
        plain = tmp_path / f"plain-{name}"
        plain.write_text("x")  # what a normal write gives under the same umask
        assert _mode(path) == _mode(plain) == 0o666 & ~mask, name


def test_atomic_tensor_write_follows_the_umask(tmp_path, umask):
    import torch

    umask(0o027)
    fileio.save_tensors(tmp_path / "t.safetensors", {"a": torch.zeros(2)})
    assert _mode(tmp_path / "t.safetensors") == 0o640


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "report.json"
    path.write_text("{}")
    os.chmod(path, 0o640)
    fileio.write_json(path, {"b": 2})
    assert _mode(path) == 0o640 and fileio.read_json(path) == {"b": 2}
    os.chmod(path, 0o604)
    fileio.write_text(path, "y")
    assert _mode(path) == 0o604


def test_umask_is_read_without_being_changed(umask):
    umask(0o037)
    assert fileio.current_umask() == 0o037
    assert fileio.default_file_mode() == 0o640 and fileio.default_dir_mode() == 0o740
    assert os.umask(0o037) == 0o037  # still what the test set


def test_failed_atomic_write_leaves_no_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_read_jsonl_skips_only_a_torn_last_line(tmp_path):
    import pytest

    good = tmp_path / "ok.jsonl"
    good.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3, "b"\n')
    with pytest.warns(UserWarning, match="torn last line"):
        assert fileio.read_jsonl(good) == [{"a": 1}, {"a": 2}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n{"a": 3}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: not valid JSON"):
        fileio.read_jsonl(bad)
