import os
import shutil
import tempfile

import pytest

# No network in tests, ever (the suite must pass on an offline machine); set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Under pytest-xdist (make test runs the unit tests in 2 workers on a 2-core machine) each worker computes on
# one thread: two workers with 2 BLAS threads each would oversubscribe the cores (3-50x slower matmuls).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def one_thread():
    """One torch and one BLAS thread for a test module (use with pytest.mark.usefixtures)."""
    # On a shared 2-core box, 2 BLAS threads competing with another process are 3-50x slower than 1.
    import torch  # here, not at the top: the offline flags above must be set before any HF import

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # numpy's BLAS too (the numpy references); threadpoolctl is optional
        from threadpoolctl import threadpool_limits

        limits = threadpool_limits(1)
    except ImportError:  # pragma: no cover
        limits = None
    yield
    torch.set_num_threads(n)
    if limits is not None:
        limits.restore_original_limits()


# The suite writes model and run directories under the temporary directory (a dequantised SmolLM2-135M is
# 135M fp32 parameters, about 0.5 GiB a copy, and several tests write one); on a nearly full disk it fails deep
# inside a safetensors write with "No space left on device". Say so before any test runs.
MIN_FREE_GIB = float(os.environ.get("RLVR_TEST_MIN_FREE_GIB", "3"))


def free_gib(path: str) -> float:
    return shutil.disk_usage(path).free / 2**30


def pytest_sessionstart(session):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the controller checks once
        return
    for where in {tempfile.gettempdir(), str(session.config.rootpath)}:
        free = free_gib(where)
        if free < MIN_FREE_GIB:
            raise pytest.UsageError(
                f"only {free:.1f} GiB free on the disk of {where}; the test suite needs about {MIN_FREE_GIB:g} GiB "
                f"there. Free some space (old clones, /tmp/pytest-of-*), point TMPDIR at a larger disk, or set "
                f"RLVR_TEST_MIN_FREE_GIB to a lower bound if you know the suite fits.")
