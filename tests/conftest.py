"""Shared fixtures: every test writes its artifacts into a temporary cache, never the user's, and
computes on one thread.

One thread: the suite's arrays and networks are small, so a second BLAS or OpenMP thread buys
little, and its spin-waiting costs several times the work whenever the other core is busy (the
other pytest-xdist worker, a loaded machine). Measured on 2 busy cores: the specification-curve
test 6 s -> 2 s of CPU with one BLAS thread, a tiny training 10 s -> 1 s with one torch thread.
A test that is about thread counts sets its own (``lva.alignment.threads``, ``cfg.threads``).
"""

import os
import sys
from pathlib import Path

import pytest

# before numpy, scipy and torch start their thread pools (and inherited by the subprocesses tests start)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# pytest-xdist: no two workers share a numba cache (lva.alignment's kernels, cache=True; a fresh
# clone compiles them in every run). Two processes saving overloads of one function into one cache
# can leave its index naming the other's data file (numba.core.caching; numba/numba#4807, #10128).
# The first worker keeps numba's default, beside the source, which `make book` then finds warm; the
# others get their own folder, kept between runs.
if (_worker := os.environ.get("PYTEST_XDIST_WORKER", "gw0")) != "gw0":
    _base = os.environ.get("NUMBA_CACHE_DIR") or Path(__file__).resolve().parents[1] / ".cache" / "numba-tests"
    os.environ["NUMBA_CACHE_DIR"] = str(Path(_base) / _worker)


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread():
    """The variables above come too late for a library loaded before this file: limit those too."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LVA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LVA_NO_PROGRESS", "1")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test starts with torch on one thread: a pipeline stage sets ``cfg.threads`` (2 by
    default) for the rest of the process, so the tests after it would run on 2."""
    torch = sys.modules.get("torch")  # not imported here: the pytest-xdist controller never needs it
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
