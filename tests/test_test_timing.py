"""The measurements of `time-test` (pipeline.test_timing) and the CPU record of every timing
(reproduce.cpu_record), on inputs with a known answer."""
import os
import subprocess
import sys

from rlvr_lowrank.pipeline import reproduce, test_timing


def test_cpu_record_reads_the_model_name_and_the_bf16_flag(tmp_path, monkeypatch):
    monkeypatch.delenv("RLVR_NO_BF16", raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU @ 1GHz\nflags\t\t: fpu sse2 avx512_bf16\n"
                    "processor\t: 1\nmodel name\t: Test CPU @ 1GHz\nflags\t\t: fpu sse2 avx512_bf16\n")
    assert reproduce.cpu_record(info) == {"model": "Test CPU @ 1GHz", "bf16_feature": "avx512_bf16"}
    info.write_text("model name\t: Other\nflags\t\t: fpu\n")
    assert reproduce.cpu_record(info) == {"model": "Other", "bf16_feature": None}
    assert reproduce.cpu_record(tmp_path / "missing") == {"model": None, "bf16_feature": None}


def test_disk_bytes_counts_allocated_blocks_and_hard_links_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    os.link(tmp_path / "a", tmp_path / "b")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c").write_bytes(b"y" * 50_000)
    expected = sum(os.lstat(p).st_blocks * 512 for p in (tmp_path / "a", tmp_path / "sub" / "c"))
    assert test_timing.disk_bytes(tmp_path) == expected >= 150_000


def test_tree_rss_includes_the_children():
    # a child that holds 200 MB resident: the tree's RSS must exceed this process's own by about that much
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; b = bytearray(200 * 2**20); "
                              "b[::4096] = b'x' * len(b[::4096]); print('ready', flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        own = test_timing.tree_rss(child.pid)
        assert own >= 200 * 2**20
        assert test_timing.tree_rss(os.getpid()) >= own  # the child is under this process
    finally:
        child.kill()
        child.wait()
    assert test_timing.tree_rss(child.pid) == 0  # gone: counted as nothing, no error
