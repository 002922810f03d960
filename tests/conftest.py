import os

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
