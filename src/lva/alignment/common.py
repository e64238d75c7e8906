"""What every part of :mod:`lva.alignment` shares: input checks, the worker threads, cosine
similarities, PCA on training rows and seeded permutations."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import eigh

# our own threads split the permutations; BLAS inside each stays single-threaded (concurrent
# calls into multithreaded OpenBLAS thrash, and it spins on its many small calls).  The one
# place the package reads its number of threads (a test sets it to 1).
_THREADS = max(1, min(2, os.cpu_count() or 1))


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the statistics inside the block on ``n`` worker threads (the book passes its config's
    ``threads``: ``lva.pipeline`` wraps its alignment stages in ``threads(cfg.threads)``)."""
    global _THREADS
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"threads must be an integer >= 1; got {n!r}")
    saved, _THREADS = _THREADS, int(n)
    try:
        yield
    finally:
        _THREADS = saved


def _pool() -> ThreadPoolExecutor:
    """A pool of ``_THREADS`` worker threads (read at each call)."""
    return ThreadPoolExecutor(_THREADS)


def _split_threads(n_items: int) -> list[slice]:
    """Contiguous, nearly equal shares of n_items for the _THREADS worker threads."""
    edges = np.linspace(0, n_items, _THREADS + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


_BLAS: dict[str, Any] = {"depth": 0, "limiter": None, "controller": None}  # the one-thread BLAS block in force, if any
_BLAS_LOCK = threading.Lock()


@contextlib.contextmanager
def _blas_single() -> Iterator[None]:
    """BLAS limited to one thread inside the block: the statistics make many small BLAS calls,
    which multithreaded OpenBLAS slows down (it spins, and thrashes on a shared machine; figures in
    benchmarks/README.md). Nested blocks, on any thread,
    cost nothing; the library scan of threadpoolctl is done once per process, not per block."""
    with _BLAS_LOCK:
        if _BLAS["depth"] == 0:
            if _BLAS["controller"] is None:
                from threadpoolctl import ThreadpoolController

                _BLAS["controller"] = ThreadpoolController()
            _BLAS["limiter"] = _BLAS["controller"].limit(limits=1, user_api="blas")
        _BLAS["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["depth"] -= 1
            if _BLAS["depth"] == 0:
                _BLAS["limiter"].restore_original_limits()
                _BLAS["limiter"] = None


# ----------------------------------------------------------------------------- validation
#: Spaces whose largest magnitude lies outside [2**-SAFE_EXPONENT, 2**SAFE_EXPONENT] are rescaled.
SAFE_EXPONENT = 32


def _as_matrix(X: ArrayLike, name: str) -> np.ndarray:
    """X as a finite, non-constant float64 2-D array, or ValueError.

    Every metric is invariant to the overall scale of each space, but their sums of squares and
    products overflow or underflow at extreme scales (CKA of ``A * 1e-100`` was inf, RSA at
    ``1e160`` NaN). A space whose largest magnitude is outside ``2**±SAFE_EXPONENT`` is divided by
    the power of two nearest it: exact in floating point, and spaces at ordinary scales are left
    untouched, so their scores do not change by a single bit.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_items, dim); got shape {X.shape}")
    if X.shape[0] < 4 or X.shape[1] < 1:
        raise ValueError(f"{name} needs at least 4 rows and 1 column; got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.all(X == X[0]):
        raise ValueError(f"{name} has no variance: all rows are identical")
    exponent = int(np.frexp(np.abs(X).max())[1])
    return np.ldexp(X, -exponent) if abs(exponent) > SAFE_EXPONENT else X


def _as_pair(A: ArrayLike, B: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate two embeddings of the same items."""
    A, B = _as_matrix(A, "A"), _as_matrix(B, "B")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows (items); got {A.shape[0]} and {B.shape[0]}")
    return A, B


def _check_count(name: str, n: Any, minimum: int = 1) -> int:
    """A number of resamples or permutations: an integer >= minimum, or ValueError."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {n!r}")
    return int(n)


def _check_k(k: int, n: int) -> int:
    """Neighbourhood size must satisfy 1 <= k < N."""
    if not isinstance(k, (int, np.integer)) or not 1 <= k < n:
        raise ValueError(f"k must be an integer with 1 <= k < N (N = {n}); got {k!r}")
    return int(k)


# ----------------------------------------------------------------------------- helpers
def _cosine(X: np.ndarray, center: bool) -> np.ndarray:
    """Cosine similarities (columns optionally centred); duplicate rows get bit-identical rows
    and columns (copied from their first occurrence), so their ties are exact."""
    X = X - X.mean(axis=0) if center else X
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / np.where(norm > 0, norm, 1.0)
    first, uid = _distinct_rows(X)
    S = X @ X.T
    return S if len(first) == len(X) else S[np.ix_(first[uid], first[uid])]


def _distinct_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, uid)``: the row where each distinct row of X first occurs (in order of first
    occurrence) and, for every row, the number of its distinct row, so ``X[first][uid] == X``.
    Rows are compared by their bytes (-0.0 counted as 0.0), which is much faster than ``np.unique(X,
    axis=0)``: that sorts rows as structured records."""
    index: dict[bytes, int] = {}
    first, uid = [], np.empty(len(X), dtype=np.intp)
    for i, row in enumerate(np.ascontiguousarray(X) + 0.0):
        uid[i] = index.setdefault(row.tobytes(), len(index))
        if uid[i] == len(first):
            first.append(i)
    return np.array(first, dtype=np.intp), uid


def neighbours(X: np.ndarray, k: int, center: bool = True) -> np.ndarray:
    """Each row's k nearest other rows (N x k) by cosine (columns centred first if ``center``),
    ordered by (-cosine, row index): the neighbour sets every metric and table uses."""
    S = _cosine(X, center)
    np.fill_diagonal(S, -np.inf)  # exclude self
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def _eigh_top(M: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The m largest eigenvalues (ascending) and eigenvectors of a symmetric matrix, on one BLAS
    thread (LAPACK's eigh on two OpenBLAS threads thrashes on a shared machine)."""
    with _blas_single():
        return eigh(M, subset_by_index=[len(M) - m, len(M) - 1])


def _train_pca(X: np.ndarray, train: np.ndarray, m: int, K: np.ndarray | None = None) -> np.ndarray:
    """All rows centred on the training mean and projected on the top-m PCs of the training rows
    (by decreasing variance), from the d x d scatter matrix or, when d > n_train, the centred
    n_train x n_train Gram (K = X X^T of column-centred X, optionally precomputed)."""
    n_tr, d = len(train), X.shape[1]
    if d <= n_tr:
        Xc = X - X[train].mean(axis=0)
        return Xc @ _eigh_top(Xc[train].T @ Xc[train], m)[1][:, ::-1]
    Kt = X @ X[train].T if K is None else K[:, train]
    C = Kt - Kt.mean(axis=1, keepdims=True) - Kt[train].mean(axis=0) + Kt[train].mean()
    w, U = _eigh_top(C[train], m)
    ok = w > 1e-12 * w[-1]  # directions without training variance are dropped
    return ((C @ U) * np.where(ok, 1.0 / np.sqrt(np.where(ok, w, 1.0)), 0.0))[:, ::-1]


def _perms(n: int, n_perm: int, seed: int) -> np.ndarray:
    """n_perm uniform permutations: rng.permutation(n) repeated, rng = default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(n) for _ in range(n_perm)], dtype=np.intp).reshape(-1, n)
