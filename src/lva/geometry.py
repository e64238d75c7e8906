"""Geometry of a set of vectors, for the book's maps and tables (chapters 5-6): unit rows, mean
pairwise cosine (anisotropy) and a principal-component map whose signs do not flip."""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray, center: bool = False) -> np.ndarray:
    """Rows scaled to unit length (float64), after subtracting the mean row if ``center``."""
    x = np.asarray(x, dtype=np.float64)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def anisotropy(x: np.ndarray, center: bool = False) -> float:
    """Mean cosine similarity over all pairs of distinct rows (``center``: after subtracting the
    mean row). About 0 for isotropic random vectors; 1 when all rows point the same way; exactly
    ``-1/(n-1)`` for centred rows of equal norm (the mean of a centred cloud is zero)."""
    u = unit_rows(x, center)
    n = len(u)
    if n < 2:
        raise ValueError("anisotropy needs at least two rows")
    total = u.sum(axis=0)
    return float((total @ total - (u * u).sum()) / (n * (n - 1)))


def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of the centred rows: (``(n, k)`` scores, ``(k,)`` explained-variance
    ratios). Signs are fixed so that each component's largest-magnitude loading is positive, so
    the map does not flip between runs or machines."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:k]
    sign = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    vt = vt * sign[:, None]
    total = (s**2).sum()
    ratio = (s[:k] ** 2) / total if total > 0 else np.zeros(len(vt))
    return x @ vt.T, ratio
