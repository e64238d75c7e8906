"""Compiled loops of the permutation nulls (numba, cached on disk on first use).

Each permutation is scored by one thread in a fixed order, so results do not depend on the
number of threads.  The kernels release the GIL (``nogil``), so the callers run them on the
package's worker threads (:mod:`lva.alignment.common`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from .common import _pool, _split_threads

_TILE = 8192  # upper-triangle entries per tile of the CKA / RSA nulls (cache-sized buffers)


# ----------------------------------------------------------------------------- mutual kNN
@njit(nogil=True, cache=True, error_model="numpy")
def _knn_kernel(
    idx: np.ndarray, member: np.ndarray, P: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[b] = number of pairs (i, j in kNN_A(i)) with P[b, j] a neighbour of P[b, i] in B."""
    for b in range(P.shape[0]):
        p, count = P[b], 0
        for i in range(idx.shape[0]):
            row, nb = member[p[i]], idx[i]
            for j in range(idx.shape[1]):
                count += row[p[nb[j]]]
        out[b] = count


# ----------------------------------------------------------------------------- CKA and RSA
@njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _quad_kernel(
    src: np.ndarray, tri: np.ndarray, P: np.ndarray, tiles: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[s, t, b] += sum over the upper triangle of tri[s] * (P[b] src[t] P[b]^T), s < t.

    Loops space t, then tile of the triangle's rows, then permutation, so that src[t] and the
    partners' tile stay in cache; each tile is gathered once into a small buffer and its dot
    with every partner is summed in float32 (SIMD order fixed at compile time), then added to
    the float64 total."""
    n = src.shape[1]
    h = np.empty(np.max(tiles[:, 3] - tiles[:, 2]), dtype=np.float32)
    for t in range(1, src.shape[0]):
        M = src[t]
        for k in range(tiles.shape[0]):
            i0, i1, e0, e1 = tiles[k, 0], tiles[k, 1], tiles[k, 2], tiles[k, 3]
            hh = h[: e1 - e0]
            for b in range(P.shape[0]):
                p, base = P[b], 0
                for i in range(i0, i1):  # slices keep indices non-negative: no wraparound checks
                    row, dst, q = M[p[i]], hh[base : base + n - i - 1], p[i + 1 :]
                    for j in range(n - i - 1):
                        dst[j] = row[q[j]]
                    base += n - i - 1
                for s in range(t):
                    part, acc = tri[s, e0:e1], np.float32(0.0)
                    for e in range(e1 - e0):
                        acc += part[e] * hh[e]
                    out[s, t, b] += acc


def _row_tiles(n: int, size: int = _TILE) -> np.ndarray:
    """Split the upper triangle's rows into tiles (row i0, row i1, entry e0, entry e1) of at
    most ``size`` entries each (at least one row per tile)."""
    tiles, i0, e0 = [], 0, 0
    while i0 < n - 1:
        i1, e1 = i0 + 1, e0 + n - 1 - i0
        while i1 < n - 1 and e1 + n - 1 - i1 <= e0 + size:
            e1 += n - 1 - i1
            i1 += 1
        tiles.append((i0, i1, e0, e1))
        i0, e0 = i1, e1
    return np.array(tiles, dtype=np.int64).reshape(-1, 4)


def _quad_nulls(families: Sequence[Sequence[np.ndarray]], P: np.ndarray) -> list[np.ndarray]:
    """dots[s, t, j] = <M_s, P_j M_t P_j^T> for s < t, for each family of symmetric matrices.

    ``families`` lists families (e.g. centred Grams, RSA ranks), each a sequence of the S
    spaces' N x N symmetric matrices with zero diagonal, so the product is twice the sum over
    the upper triangle.  A compiled kernel (``_quad_kernel``) gathers every permuted M_t once
    per permutation, tile by tile (float32), and scores it against all its partners s < t.
    The permutations are split between ``_THREADS`` threads that walk the spaces in the same
    order, so they share the matrix in cache (the kernel releases the GIL).
    """
    n, S = len(families[0][0]), len(families[0])
    iu, ju = np.triu_indices(n, 1)
    P32, tiles = np.ascontiguousarray(P, dtype=np.int32), _row_tiles(n)
    out = []
    for fam in families:
        tri = np.stack([M[iu, ju] for M in fam]).astype(np.float32)
        src = np.stack([np.asarray(M, dtype=np.float32) for M in fam])
        dots = np.zeros((S, S, len(P)))
        with _pool() as pool:
            list(pool.map(lambda sl: _quad_kernel(src, tri, P32[sl], tiles, dots[:, :, sl]), _split_threads(len(P))))
        out.append(2.0 * dots)
    return out


# ----------------------------------------------------------------------------- Procrustes
@njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _hits_row(
    Q: np.ndarray,
    Bu: np.ndarray,
    uid: np.ndarray,
    size: np.ndarray,
    order: np.ndarray,
    start: np.ndarray,
    p: np.ndarray,
    invp: np.ndarray,
    test: np.ndarray,
    k: int,
    hits: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """hits[i] = whether the correct row of B[p] is among the k best for test item i.

    Q[ti] is test item i = test[ti]'s mapped query; Bu holds the distinct unit rows of B, uid maps
    a row of B to its distinct row, whose copies are order[start[u]:start[u + 1]].  The rank
    counts rows with a higher cosine, plus equal-cosine rows at lower positions of B[p] (invp[r]
    is row r's position): copies of the correct row tie with it by construction.  The scan stops
    as soon as k rows are ahead (a miss), which under a null is after about k ln(N / k)
    candidates instead of N."""
    m = Bu.shape[1]
    for ti in range(test.shape[0]):
        i, q = test[ti], Q[ti]
        r_true = p[i]
        u_true, rank = uid[r_true], 0
        for r in order[start[u_true] : start[u_true + 1]]:  # copies of the correct row
            if r != r_true and invp[r] < i:
                rank += 1
        s_true = 0.0
        for d in range(m):
            s_true += q[d] * Bu[u_true, d]
        for u in range(Bu.shape[0]):
            if rank >= k:
                break
            if u == u_true:
                continue
            s = 0.0
            for d in range(m):
                s += q[d] * Bu[u, d]
            rank += size[u] * (s > s_true)  # branch-free: the outcome is a coin flip
            if s == s_true:
                for r in order[start[u] : start[u + 1]]:
                    if invp[r] < i:
                        rank += 1
        hits[i] = rank < k


@njit(nogil=True, cache=True, error_model="numpy")
def _procrustes_kernel(
    At: np.ndarray,
    Bf: np.ndarray,
    Atest: np.ndarray,
    Bu: np.ndarray,
    uid: np.ndarray,
    size: np.ndarray,
    order: np.ndarray,
    start: np.ndarray,
    P: np.ndarray,
    invP: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    k: int,
    hits: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """One fold of the retrieval null, permutation by permutation: the map W = U V^T from the SVD
    of At B[P[b]]_train (At = A_train^T), then the hits of the held-out rows Atest W
    (:func:`_hits_row`). The gather, the products and the SVD (LAPACK, as numpy's) run compiled
    with buffers reused: no Python between permutations."""
    G = np.empty((train.shape[0], Bf.shape[1]))
    for b in range(P.shape[0]):
        p = P[b]
        for r in range(train.shape[0]):
            G[r] = Bf[p[train[r]]]
        U, _, Vt = np.linalg.svd(At @ G)
        _hits_row(Atest @ (U @ Vt), Bu, uid, size, order, start, p, invP[b], test, k, hits[b])


@njit(nogil=True, cache=True, error_model="numpy")
def _nuclear_norm(G: np.ndarray) -> float:  # pragma: no cover - compiled
    """Sum of the singular values of a small square matrix by one-sided Jacobi (Hestenes):
    rotate column pairs until all are orthogonal, then add the column norms.  G is
    overwritten."""
    m = G.shape[1]
    for _ in range(100):
        worst = 0.0
        for p in range(m - 1):
            for q in range(p + 1, m):
                alpha, beta, gamma = 0.0, 0.0, 0.0
                for i in range(m):
                    alpha += G[i, p] * G[i, p]
                    beta += G[i, q] * G[i, q]
                    gamma += G[i, p] * G[i, q]
                if gamma == 0.0:
                    continue
                worst = max(worst, abs(gamma) / np.sqrt(alpha * beta))
                zeta = (beta - alpha) / (2.0 * gamma)
                t = (1.0 if zeta >= 0 else -1.0) / (abs(zeta) + np.sqrt(1.0 + zeta * zeta))
                c = 1.0 / np.sqrt(1.0 + t * t)
                for i in range(m):
                    gp, gq = G[i, p], G[i, q]
                    G[i, p], G[i, q] = c * gp - c * t * gq, c * t * gp + c * gq
        if worst < 1e-15:
            break
    total = 0.0
    for j in range(m):
        total += np.sqrt(np.sum(G[:, j] ** 2))
    return total


@njit(nogil=True, cache=True, error_model="numpy")
def _disparity_kernel(
    A: np.ndarray, B: np.ndarray, P: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """out[b] = (nuclear norm of A^T B[P[b]])^2, the cross-product summed row by row."""
    m = A.shape[1]
    G = np.empty((m, m))
    for b in range(P.shape[0]):
        G[:] = 0.0
        for i in range(A.shape[0]):
            bi = B[P[b, i]]
            for r in range(m):
                ar = A[i, r]
                for c in range(m):
                    G[r, c] += ar * bi[c]
        out[b] = _nuclear_norm(G) ** 2
