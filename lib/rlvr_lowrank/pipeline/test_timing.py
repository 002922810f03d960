"""``python -m rlvr_lowrank time-test``: the README's test command, measured the way CI runs it.

It clones the repository's committed HEAD into a temporary directory (what CI checks out: uncommitted
changes are not in it, and the record names the commit), runs ``make test`` there from nothing (the clone
has no ``.venv``, so the set-up is included), and writes ``reports/test_timing.json``:

* ``total_s``: wall time of ``make test``;
* ``peak_rss_gib``: the largest *sum* of resident memory over ``make`` and every process under it, sampled
  every ``SAMPLE_S`` seconds (psutil). A peak shorter than the interval can be missed, so this is a lower
  bound on what the machine needs; the README says so;
* ``disk_gib``: the clone's size on disk when the tests end (the venv, the smoke runs, the executed
  notebooks), read from the files' allocated blocks;
* ``cpu_count``, ``cpu`` (model name and bf16 flag: ``reproduce.cpu_record``) and ``commit``.

Nothing is written when ``make test`` fails: the time of a failing suite is not the suite's time. The
clone is removed afterwards unless ``keep`` is set.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import fileio, paths
from . import reproduce

SAMPLE_S = 1.0
GIB = 1024 ** 3


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants now (processes that vanish meanwhile count 0)."""
    import psutil  # a dependency of jupyter_client, so present wherever the notebooks run

    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def disk_bytes(root: Path) -> int:
    """Allocated bytes of every file under ``root`` (hard links counted once, symlinks not followed)."""
    seen, total = set(), 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def _head_commit() -> str:
    return subprocess.run(["git", "-C", str(paths.ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def time_make_test(keep: bool = False) -> dict:
    """Clone HEAD, run ``make test`` in the clone (its output streamed here), return the record (see module)."""
    if shutil.which("git") is None or shutil.which("make") is None:
        raise SystemExit("time-test needs git and make on PATH")
    work = Path(tempfile.mkdtemp(prefix="rlvr-time-test-"))
    clone = work / "clone"
    subprocess.run(["git", "clone", "-q", str(paths.ROOT), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "RLVR_RUNS_DIR", paths.WRITE_TRACKED_ENV)}
    peak, done = [0], threading.Event()
    t0 = time.time()
    proc = subprocess.Popen(["make", "test"], cwd=clone, env=env)

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            done.wait(SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rc = proc.wait()
    total = time.time() - t0
    done.set()
    sampler.join()
    record = {"total_s": round(total, 1), "peak_rss_gib": round(peak[0] / GIB, 2),
              "disk_gib": round(disk_bytes(clone) / GIB, 2), "cpu_count": os.cpu_count(),
              "cpu": reproduce.cpu_record(), "commit": _head_commit(), "sample_s": SAMPLE_S}
    if keep:
        print(f"[time-test] clone kept at {clone}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if rc != 0:
        raise SystemExit(f"time-test: `make test` failed (exit {rc}) after {total:.0f} s; nothing recorded")
    return record


def command(keep: bool = False) -> dict:
    record = time_make_test(keep)
    out = paths.REPORTS / "test_timing.json"
    fileio.write_json(out, record)
    print(f"[time-test] make test: {record['total_s'] / 60:.1f} min, peak memory >= {record['peak_rss_gib']} GiB, "
          f"disk {record['disk_gib']} GiB -> {out.relative_to(paths.ROOT)}")
    return record
