"""Representational alignment metrics with permutation nulls, bootstrap CIs and paired tests.

Every metric compares embeddings ``A`` (N x d_a) and ``B`` (N x d_b) of the same N items (row i
of both embeds instruction i); higher always means more aligned.

  metric                definition                                               chance
  mutual_knn            mean_i |kNN_A(i) & kNN_B(i)| / k, cosine, self excluded    k / (N-1)
  procrustes_retrieval  5-fold CV orthogonal-Procrustes map A -> B, hit@k          ~ k / N
  procrustes_disparity  1 - scipy.spatial.procrustes disparity after PCA to dim     > 0: use null
  cka                   debiased linear CKA (Song et al. 2012 HSIC estimator)      ~ 0, may be < 0
  cka_biased            biased linear CKA (Kornblith et al. 2019), teaching only   large if d >> N
  rsa                   Spearman rho of the upper triangles of 1 - cosine RDMs     ~ 0

Ties in neighbour rankings are broken deterministically: candidates are ordered by (-cosine,
row index), so among equal similarities the lower row index wins.  Duplicate rows (synonyms
with identical embeddings) get their similarities copied from the first copy, so they tie bit
for bit and floating-point noise never decides the order.

Permutation nulls permute the rows of B (for RSA: rows and columns of B's RDM together) with
i.i.d. uniform permutations from ``np.random.default_rng(seed)``.  Everything that does not
depend on the pairing (kNN sets, centred Gram matrices, RDM ranks, PCA bases) is computed once;
a permutation only relabels it.  All randomness is seeded; results are deterministic.

The permutation loops run in small compiled kernels (numba, cached on first use): each
permutation is scored by one thread in a fixed order, so results do not depend on the number
of threads.  The slowest null is procrustes_retrieval, which must refit its map for every fold
and permutation (5 SVDs per permutation): hence its smaller default number of permutations.
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import partial
from typing import Any, NamedTuple

import numpy as np
from numba import njit
from numpy.typing import ArrayLike
from scipy.linalg import eigh
from scipy.stats import rankdata

METRICS: tuple[str, ...] = ("mutual_knn", "procrustes_retrieval", "procrustes_disparity",
                            "cka", "cka_biased", "rsa")
PER_ITEM_METRICS: tuple[str, ...] = ("mutual_knn", "procrustes_retrieval")
# procrustes_retrieval refits W for every fold and permutation, hence fewer permutations
DEFAULT_N_PERM: dict[str, int] = {m: 1000 for m in METRICS} | {"procrustes_retrieval": 100}
_CHUNK = 16  # permutations per batch of SVDs in the retrieval null (keeps buffers cache-sized)
_TILE = 8192  # upper-triangle entries per tile of the CKA / RSA nulls (cache-sized buffers)
# our own threads split the permutations; BLAS inside each stays single-threaded (concurrent
# calls into multithreaded OpenBLAS thrash, and it spins on its many small calls)
_THREADS = max(1, min(2, os.cpu_count() or 1))


def _blas_single() -> Any:
    """Context limiting BLAS to one thread (threadpoolctl), or a no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        return nullcontext()
    return threadpool_limits(1, user_api="blas")


class Interval(NamedTuple):
    """Point estimate with a two-sided percentile bootstrap interval."""
    estimate: float
    low: float
    high: float


class Paired(NamedTuple):
    """alignment(A,B) - alignment(A,C) on per-item scores: mean, bootstrap CI, sign-flip p."""
    mean_diff: float
    low: float
    high: float
    p_value: float
    n: int


class Spread(NamedTuple):
    """One score over agent training seeds (std with ddof=1)."""
    mean: float
    std: float
    min: float
    max: float
    n: int


# ----------------------------------------------------------------------------- validation
def _as_matrix(X: ArrayLike, name: str) -> np.ndarray:
    """X as a finite, non-constant float64 2-D array, or ValueError."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_items, dim); got shape {X.shape}")
    if X.shape[0] < 4 or X.shape[1] < 1:
        raise ValueError(f"{name} needs at least 4 rows and 1 column; got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.all(X == X[0]):
        raise ValueError(f"{name} has no variance: all rows are identical")
    return X


def _as_pair(A: ArrayLike, B: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate two embeddings of the same items."""
    A, B = _as_matrix(A, "A"), _as_matrix(B, "B")
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"A and B must have the same number of rows (items); "
                         f"got {A.shape[0]} and {B.shape[0]}")
    return A, B


def _check_metric(metric: str, per_item: bool = False) -> None:
    """ValueError naming the valid choices for an unknown metric."""
    valid = PER_ITEM_METRICS if per_item else METRICS
    if metric not in valid:
        why = " has no per-item form" if metric in METRICS else ""
        raise ValueError(f"unknown {'per-item ' * per_item}metric '{metric}'{why}; "
                         f"valid choices: {', '.join(valid)}")


def _check_k(k: int, n: int) -> int:
    """Neighbourhood size must satisfy 1 <= k < N."""
    if not isinstance(k, (int, np.integer)) or not 1 <= k < n:
        raise ValueError(f"k must be an integer with 1 <= k < N (N = {n}); got {k!r}")
    return int(k)


def _split(metric: str, options: Mapping[str, Any]) -> tuple[dict, dict]:
    """Split options into (per-space preparation, pair scoring) keywords; reject unknown ones."""
    prep = [p for p in inspect.signature(_PREP[metric]).parameters if p != "X"]
    score = [p for p in inspect.signature(_SCORE[metric]).parameters if p not in ("a", "b")]
    bad = sorted(set(options) - set(prep) - set(score))
    if bad:
        raise ValueError(f"unknown option(s) {bad} for metric '{metric}'; "
                         f"valid options: {sorted(prep + score)}")
    return ({k: v for k, v in options.items() if k in prep},
            {k: v for k, v in options.items() if k in score})


# ----------------------------------------------------------------------------- helpers
def _cosine(X: np.ndarray, center: bool) -> np.ndarray:
    """Cosine similarities (columns optionally centred); duplicate rows get bit-identical rows
    and columns (copied from their first occurrence), so their ties are exact."""
    X = X - X.mean(axis=0) if center else X
    norm = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / np.where(norm > 0, norm, 1.0)
    first: dict[bytes, int] = {}
    rep = np.array([first.setdefault(row.tobytes(), i) for i, row in enumerate(X)])
    S = X @ X.T
    return S if len(first) == len(X) else S[np.ix_(rep, rep)]


def _train_pca(X: np.ndarray, train: np.ndarray, m: int,
               K: np.ndarray | None = None) -> np.ndarray:
    """All rows centred on the training mean and projected on the top-m PCs of the training rows
    (by decreasing variance), from the d x d scatter matrix or, when d > n_train, the centred
    n_train x n_train Gram (K = X X^T of column-centred X, optionally precomputed)."""
    n_tr, d = len(train), X.shape[1]
    if d <= n_tr:
        Xc = X - X[train].mean(axis=0)
        return Xc @ eigh(Xc[train].T @ Xc[train], subset_by_index=[d - m, d - 1])[1][:, ::-1]
    Kt = X @ X[train].T if K is None else K[:, train]
    C = Kt - Kt.mean(axis=1, keepdims=True) - Kt[train].mean(axis=0) + Kt[train].mean()
    w, U = eigh(C[train], subset_by_index=[n_tr - m, n_tr - 1])
    ok = w > 1e-12 * w[-1]  # directions without training variance are dropped
    return ((C @ U) * np.where(ok, 1.0 / np.sqrt(np.where(ok, w, 1.0)), 0.0))[:, ::-1]


def _perms(n: int, n_perm: int, seed: int) -> np.ndarray:
    """n_perm uniform permutations: rng.permutation(n) repeated, rng = default_rng(seed)."""
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(n) for _ in range(n_perm)], dtype=np.intp).reshape(-1, n)


# ----------------------------------------------------------------------------- mutual kNN
def _prep_mutual_knn(X: np.ndarray, k: int = 15, center: bool = True) -> dict[str, np.ndarray]:
    """kNN index sets (N x k) ordered by (-cosine, index) and the boolean membership matrix."""
    k = _check_k(k, X.shape[0])
    S = _cosine(X, center)
    np.fill_diagonal(S, -np.inf)  # exclude self
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    member = np.zeros(S.shape, dtype=bool)
    member[np.arange(len(S))[:, None], idx] = True
    return {"idx": idx, "member": member}


def _items_mutual_knn(a: dict, b: dict) -> np.ndarray:
    """Per-item overlap |S_A(i) & S_B(i)| / k, read from B's membership matrix."""
    return b["member"][np.arange(len(a["idx"]))[:, None], a["idx"]].mean(axis=1)


def _score_mutual_knn(a: dict, b: dict) -> float:
    """Mean neighbourhood overlap (Huh et al. 2024)."""
    return float(_items_mutual_knn(a, b).mean())


@njit(nogil=True, cache=True, error_model="numpy")
def _knn_kernel(idx: np.ndarray, member: np.ndarray, P: np.ndarray,
                out: np.ndarray) -> None:  # pragma: no cover - compiled
    """out[b] = number of pairs (i, j in kNN_A(i)) with P[b, j] a neighbour of P[b, i] in B."""
    for b in range(P.shape[0]):
        p, count = P[b], 0
        for i in range(idx.shape[0]):
            row, nb = member[p[i]], idx[i]
            for j in range(idx.shape[1]):
                count += row[p[nb[j]]]
        out[b] = count


def _null_mutual_knn(a: dict, b: dict, P: np.ndarray) -> np.ndarray:
    """Overlap under B[p]: j is a neighbour of i in B[p] iff member_B[p_i, p_j]; O(N k) each."""
    out = np.empty(len(P), dtype=np.int64)
    _knn_kernel(a["idx"], b["member"].view(np.uint8), P, out)
    return out / a["idx"].size


# ----------------------------------------------------------------------------- CKA and RSA
def _prep_gram(X: np.ndarray) -> dict[str, Any]:
    """Doubly-centred linear Gram K_c split into off-diagonal part and diagonal, plus norms.

    Both CKA estimators follow from the off-diagonal product <K~, L~> and diag(K).diag(L):
    biased <K_c, L_c> = <K~, L~> + diag.diag; debiased (Song et al. 2012) N(N-3) HSIC_u =
    <K~, L~> - 2 diag.diag / (N-2) + tr K tr L / ((N-1)(N-2)), its norm from the U-centred
    Gram (Szekely & Rizzo 2014).  A permutation only relabels both parts, and the off-diagonal
    product carries no large diagonal terms, so it is accurate in float32.
    """
    n = len(X)
    Xc = X - X.mean(axis=0)
    K = Xc @ Xc.T
    diag = np.diag(K).copy()
    off = K - np.diag(diag)
    r = off.sum(axis=1)
    Ku = off + r.sum() / ((n - 1) * (n - 2)) - (r[:, None] + r[None, :]) / (n - 2)
    np.fill_diagonal(Ku, 0.0)
    return {"perm": off, "diag": diag, "trace": diag.sum(), "nc": np.linalg.norm(K),
            "nu": np.linalg.norm(Ku)}


def _prep_rsa(X: np.ndarray, center: bool = True) -> dict[str, Any]:
    """Centred average ranks of the upper-triangle RDM (1 - cosine) as a symmetric matrix."""
    iu = np.triu_indices(len(X), 1)
    r = rankdata((1.0 - _cosine(X, center))[iu])
    r -= r.mean()
    R = np.zeros((len(X), len(X)))
    R[iu] = r / np.linalg.norm(r)
    return {"perm": R + R.T}


_QUAD = ("cka", "cka_biased", "rsa")  # scores built from <a["perm"], P b["perm"] P^T>


def _quad_finish(metric: str, a: dict, b: dict, dots: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Scores from the products dots[j] = <a["perm"], P_j b["perm"] P_j^T>."""
    if metric == "rsa":  # Spearman rho: each pair appears twice in the product
        return dots / 2.0
    n, dg = P.shape[1], b["diag"][P] @ a["diag"]
    if metric == "cka_biased":
        return (dots + dg) / (a["nc"] * b["nc"])
    hsic = dots - 2.0 * dg / (n - 2) + a["trace"] * b["trace"] / ((n - 1) * (n - 2))
    return hsic / (a["nu"] * b["nu"])


def _score_quad(metric: str, a: dict, b: dict) -> float:
    """Observed score in float64: debiased CKA = HSIC_u(K,L) / sqrt(HSIC_u(K,K) HSIC_u(L,L)),
    biased CKA = <K_c,L_c> / (|K_c| |L_c|), RSA = Pearson r of the centred ranks."""
    eye = np.arange(len(a["perm"]))[None]
    return float(_quad_finish(metric, a, b, np.array([np.vdot(a["perm"], b["perm"])]), eye)[0])


@njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _quad_kernel(src: np.ndarray, tri: np.ndarray, P: np.ndarray, tiles: np.ndarray,
                 out: np.ndarray) -> None:  # pragma: no cover - compiled
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
            hh = h[:e1 - e0]
            for b in range(P.shape[0]):
                p, base = P[b], 0
                for i in range(i0, i1):  # slices keep indices non-negative: no wraparound checks
                    row, dst, q = M[p[i]], hh[base:base + n - i - 1], p[i + 1:]
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


def _split_threads(n_items: int) -> list[slice]:
    """Contiguous, nearly equal shares of n_items for the _THREADS worker threads."""
    edges = np.linspace(0, n_items, _THREADS + 1).round().astype(int)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


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
        with ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(lambda sl: _quad_kernel(src, tri, P32[sl], tiles, dots[:, :, sl]),
                          _split_threads(len(P))))
        out.append(2.0 * dots)
    return out


# ----------------------------------------------------------------------------- Procrustes
def _prep_procrustes_retrieval(X: np.ndarray, n_components: int | None = 32, n_folds: int = 5,
                               fold_seed: int = 0, in_sample: bool = False) -> dict[str, Any]:
    """Seeded folds and, per fold, all rows on PCs fitted to the training rows only (to
    min(n_components, d, n_train - 1) dims: PCs fitted on held-out rows inflate chance)."""
    if n_components is not None and (not isinstance(n_components, (int, np.integer))
                                      or n_components < 1):
        raise ValueError(f"n_components must be None or an integer >= 1; got {n_components!r}")
    n, every = len(X), np.arange(len(X))
    if in_sample:  # the pitfall: fit and evaluate on the same rows
        folds = [(every, every)]
    else:
        if not isinstance(n_folds, (int, np.integer)) or n_folds < 2 or n < 2 * n_folds:
            raise ValueError(f"n_folds must be an integer >= 2 with N >= 2 * n_folds "
                             f"(N = {n}); got n_folds={n_folds!r}")
        fold_of = np.empty(n, dtype=np.intp)
        fold_of[np.random.default_rng(fold_seed).permutation(n)] = every % n_folds
        folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f))
                 for f in range(n_folds)]
    m = min(n_components or X.shape[1], X.shape[1], min(len(tr) for tr, _ in folds) - 1)
    _, first, uid, size = np.unique(X, axis=0, return_index=True, return_inverse=True,
                                    return_counts=True)
    X = X - X.mean(axis=0)
    K = X @ X.T if X.shape[1] > len(folds[0][0]) else None
    return {"folds": folds, "proj": [_train_pca(X, tr, m, K) for tr, _ in folds],
            "first": first, "uid": uid.ravel(), "size": size,  # identical rows, for exact ties
            "order": np.argsort(uid.ravel(), kind="stable"), "start": np.r_[0, np.cumsum(size)]}


def _fold_perms(folds: list[tuple], n: int, n_perm: int, seed: int) -> np.ndarray:
    """Permutations shuffling rows only within each held-out fold (rng = default_rng(seed))."""
    rng = np.random.default_rng(seed)
    P = np.tile(np.arange(n), (n_perm, 1))
    for i in range(n_perm):
        for _, test in folds:
            P[i, test] = rng.permutation(test)
    return P


@njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _hits_kernel(Q: np.ndarray, Bu: np.ndarray, uid: np.ndarray, size: np.ndarray,
                 order: np.ndarray, start: np.ndarray, P: np.ndarray, invP: np.ndarray,
                 test: np.ndarray, k: int, hits: np.ndarray) -> None:  # pragma: no cover
    """hits[b, i] = whether the correct row of B[P[b]] is among the k best for test item i.

    Q[b, i] is item i's mapped query; Bu holds the distinct unit rows of B, uid maps a row of
    B to its distinct row, whose copies are order[start[u]:start[u + 1]].  The rank counts
    rows with a higher cosine, plus equal-cosine rows at lower positions of B[P[b]] (invP[b, r]
    is row r's position): copies of the correct row tie with it by construction.  The scan
    stops as soon as k rows are ahead (a miss), which under a null is after about k ln(N / k)
    candidates instead of N."""
    m = Bu.shape[1]
    for b in range(Q.shape[0]):
        for ti in range(test.shape[0]):
            i, q = test[ti], Q[b, ti]
            r_true = P[b, i]
            u_true, rank = uid[r_true], 0
            for r in order[start[u_true]:start[u_true + 1]]:  # copies of the correct row
                if r != r_true and invP[b, r] < i:
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
                    for r in order[start[u]:start[u + 1]]:
                        if invP[b, r] < i:
                            rank += 1
            hits[b, i] = rank < k


def _retrieval_hits(a: dict, b: dict, k: int, P: np.ndarray) -> np.ndarray:
    """Hit@k of every item, one row per permutation p of B's rows in P.

    Per fold: W = U V^T from the SVD of A_train^T B[p]_train (minimises ||A_train W - B_train||),
    then each held-out A_i W is ranked against all N rows of B[p] by cosine (|A_i W| = |A_i|
    since W is orthogonal); ties go to the lower row position in B[p].  Identical rows of B are
    scored once (``_hits_kernel``), so their ties are exact."""
    n, k = len(a["proj"][0]), _check_k(k, len(a["proj"][0]))
    m = min(a["proj"][0].shape[1], b["proj"][0].shape[1])
    hits = np.zeros((len(P), n), dtype=np.bool_)
    invP = np.empty_like(P)
    np.put_along_axis(invP, P, np.arange(n)[None], axis=1)
    for (train, test), Af, Bf in zip(a["folds"], a["proj"], b["proj"]):
        Af, Bf = Af[:, :m], Bf[:, :m]
        At = Af[train].T
        Bu = Bf[b["first"]]
        Bu = Bu / np.maximum(np.linalg.norm(Bu, axis=1, keepdims=True), 1e-300)
        for c in range(0, len(P), _CHUNK):  # SVD buffers stay small
            Pc = P[c:c + _CHUNK]
            U, _, Vt = np.linalg.svd(np.matmul(At, Bf[Pc[:, train]]))
            _hits_kernel(np.matmul(Af[test], U @ Vt), Bu, b["uid"], b["size"], b["order"],
                         b["start"], Pc, invP[c:c + _CHUNK], test, k, hits[c:c + _CHUNK])
    return hits


def _score_procrustes_retrieval(a: dict, b: dict, k: int = 15) -> float:
    """Mean held-out hit@k (Li et al. 2024)."""
    return float(_retrieval_hits(a, b, k, np.arange(len(a["proj"][0]))[None]).mean())


def _prep_procrustes_disparity(X: np.ndarray, dim: int = 8) -> dict[str, Any]:
    """Scores on the top min(dim, d, N-1) principal components (fit on all rows: no labels)."""
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1; got {dim!r}")
    m = min(dim, X.shape[1], len(X) - 1)
    return {"scores": _train_pca(X - X.mean(axis=0), np.arange(len(X)), m)}


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
def _disparity_kernel(A: np.ndarray, B: np.ndarray, P: np.ndarray,
                      out: np.ndarray) -> None:  # pragma: no cover - compiled
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


def _disparity_similarity(a: dict, b: dict, P: np.ndarray) -> np.ndarray:
    """(sum of singular values of A^T B[p])^2 for unit-Frobenius A, B = 1 - scipy disparity."""
    m = min(a["scores"].shape[1], b["scores"].shape[1])
    A, B = a["scores"][:, :m], b["scores"][:, :m]
    out = np.empty(len(P))
    _disparity_kernel(A / np.linalg.norm(A), B / np.linalg.norm(B), P, out)
    return out


def _score_procrustes_disparity(a: dict, b: dict) -> float:
    """1 - disparity, so that higher = more aligned like every other metric."""
    return float(_disparity_similarity(a, b, np.arange(len(a["scores"]))[None])[0])


_PREP: dict[str, Callable[..., dict]] = {
    "mutual_knn": _prep_mutual_knn, "procrustes_retrieval": _prep_procrustes_retrieval,
    "procrustes_disparity": _prep_procrustes_disparity, "cka": _prep_gram,
    "cka_biased": _prep_gram, "rsa": _prep_rsa}
_SCORE: dict[str, Callable[..., float]] = {
    "mutual_knn": _score_mutual_knn, "procrustes_retrieval": _score_procrustes_retrieval,
    "procrustes_disparity": _score_procrustes_disparity, "cka": partial(_score_quad, "cka"),
    "cka_biased": partial(_score_quad, "cka_biased"), "rsa": partial(_score_quad, "rsa")}


def _prepare(metric: str, X: Sequence[np.ndarray], prep: Mapping[str, Any]) -> list[dict]:
    """Per-space preparation of every space, on ``_THREADS`` threads (eigh, BLAS and the
    compiled kernels release the GIL)."""
    with _blas_single(), ThreadPoolExecutor(_THREADS) as pool:
        return list(pool.map(lambda x: _PREP[metric](x, **prep), X))


def _pair_null(metric: str, a: dict, b: dict, P: np.ndarray, score_opts: dict) -> np.ndarray:
    """Scores of a prepared pair for each row permutation p of B in P."""
    if metric == "mutual_knn":
        return _null_mutual_knn(a, b, P)
    if metric == "procrustes_disparity":
        return _disparity_similarity(a, b, P)
    if metric == "procrustes_retrieval":
        k = score_opts.get("k", 15)
        return _retrieval_hits(a, b, k, P).mean(axis=1)
    dots = _quad_nulls([[a["perm"], b["perm"]]], P)[0][0, 1]
    return _quad_finish(metric, a, b, dots, P)


def _null_perms(metric: str, a: dict, n: int, n_perm: int, seed: int) -> np.ndarray:
    """Within-fold permutations for procrustes_retrieval, unrestricted ones otherwise."""
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1; got {n_perm}")
    if metric == "procrustes_retrieval":
        return _fold_perms(a["folds"], n, n_perm, seed)
    return _perms(n, n_perm, seed)


# ----------------------------------------------------------------------------- public API
def measure(metric: str, A: ArrayLike, B: ArrayLike, **options: Any) -> float:
    """Alignment of A and B under ``metric`` (one of METRICS); higher = more aligned.

    Options: mutual_knn(k=15, center=True); procrustes_retrieval(k=15, n_folds=5,
    n_components=32, fold_seed=0, in_sample=False); procrustes_disparity(dim=8);
    rsa(center=True); cka and cka_biased take none.  ``center`` centres columns before cosines
    (decoder-LLM embeddings are anisotropic: raw cosines are all ~0.98); center=False gives the
    uncentred Huh et al. variant.  procrustes_retrieval maps A onto B (not symmetric);
    n_components=None reduces both to the smaller dimension (Li et al.), capped at n_train - 1;
    in_sample=True fits and evaluates on all rows (the pitfall: ~1.0 on noise when d >= N).
    """
    _check_metric(metric)
    A, B = _as_pair(A, B)
    prep, score = _split(metric, options)
    return _SCORE[metric](_PREP[metric](A, **prep), _PREP[metric](B, **prep), **score)


def per_item(metric: str, A: ArrayLike, B: ArrayLike, **options: Any) -> np.ndarray:
    """Per-item scores (length N, mean = ``measure``): kNN overlap or held-out retrieval hit."""
    _check_metric(metric, per_item=True)
    A, B = _as_pair(A, B)
    prep, score = _split(metric, options)
    a, b = _PREP[metric](A, **prep), _PREP[metric](B, **prep)
    if metric == "mutual_knn":
        return _items_mutual_knn(a, b)
    return _retrieval_hits(a, b, score.get("k", 15), np.arange(len(A))[None])[0].astype(float)


def permutation_null(metric: str, A: ArrayLike, B: ArrayLike, n_perm: int | None = None,
                     seed: int = 0, **options: Any) -> np.ndarray:
    """Scores of A against row-permuted copies of B (n_perm: DEFAULT_N_PERM[metric] if None).

    Value j equals ``measure(metric, A, B[p_j])`` (CKA/RSA accumulate in float32; for
    mutual_knn exact ties at the k-th neighbour keep B's tie order).  procrustes_retrieval
    shuffles rows only within each held-out fold: every fold keeps its training *set*, so its
    PCA is unchanged and only W is refit, and the test stays exact (any permutation subgroup
    is valid under exchangeability).  Reusing the maps W fitted on the true pairing would not
    be valid (they encode that pairing), so W is refit for every fold and permutation.
    """
    _check_metric(metric)
    A, B = _as_pair(A, B)
    prep, score = _split(metric, options)
    a, b = _PREP[metric](A, **prep), _PREP[metric](B, **prep)
    n_perm = DEFAULT_N_PERM[metric] if n_perm is None else int(n_perm)
    return _pair_null(metric, a, b, _null_perms(metric, a, len(A), n_perm, seed), score)


def p_value(observed: float, null: ArrayLike) -> float:
    """One-sided permutation p-value (1 + #{null >= observed}) / (K + 1); never 0."""
    null = np.asarray(null, dtype=np.float64).ravel()
    if null.size == 0:
        raise ValueError("null must contain at least one value")
    return float((1 + np.count_nonzero(null >= observed)) / (null.size + 1))


def calibrated(observed: float, null: ArrayLike, alpha: float = 0.05,
               max_value: float = 1.0) -> float:
    """clamp((obs - tau) / (max - tau), 0, 1), tau = (1 - alpha) null quantile (Groeger 2026)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    tau = float(np.quantile(np.asarray(null, dtype=np.float64), 1.0 - alpha))
    if max_value <= tau:
        return 0.0
    return float(np.clip((observed - tau) / (max_value - tau), 0.0, 1.0))


def _interval(x: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided percentile interval."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    low, high = np.percentile(x, (50 * (1 - level), 50 * (1 + level)))
    return float(low), float(high)


def bootstrap_ci(metric: str, A: ArrayLike, B: ArrayLike, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95, **options: Any) -> Interval:
    """Percentile bootstrap interval over items (instructions).

    Per-item metrics resample the per-item scores (neighbour sets and fold maps stay those of
    the full data).  The others resample items with replacement and recompute on the *distinct*
    drawn items (~63% of N): duplicated rows would add zero-distance pairs (RSA, kNN ties) and
    off-diagonal self-similarities (CKA) that inflate alignment; the smaller sample widens the
    interval (conservative) instead of biasing the score upwards.
    """
    _check_metric(metric)
    A, B = _as_pair(A, B)
    rng, n = np.random.default_rng(seed), len(A)
    if metric in PER_ITEM_METRICS:
        items = per_item(metric, A, B, **options)
        est, boots = float(items.mean()), items[rng.integers(0, n, (n_boot, n))].mean(axis=1)
    else:
        est = measure(metric, A, B, **options)
        draws = [np.unique(rng.integers(0, n, n)) for _ in range(n_boot)]
        with _blas_single(), ThreadPoolExecutor(_THREADS) as pool:  # resamples on threads
            boots = np.array(list(pool.map(
                lambda idx: measure(metric, A[idx], B[idx], **options), draws)))
    return Interval(est, *_interval(boots, level))


def paired_comparison(metric: str, A: ArrayLike, B: ArrayLike, C: ArrayLike, n_boot: int = 1000,
                      n_perm: int = 1000, seed: int = 0, level: float = 0.95,
                      **options: Any) -> Paired:
    """Is alignment(A,B) > alignment(A,C)?  Mean per-item difference, its bootstrap CI and a
    one-sided paired sign-flip p-value (items treated as independent units: kNN overlaps of
    neighbouring items are correlated, so read p as approximate)."""
    _check_metric(metric, per_item=True)
    d = per_item(metric, A, B, **options) - per_item(metric, A, C, **options)
    rng, n = np.random.default_rng(seed), len(d)
    low, high = _interval(d[rng.integers(0, n, (n_boot, n))].mean(axis=1), level)
    flips = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n)) @ d / n
    return Paired(float(d.mean()), low, high, p_value(d.mean(), flips), n)


def spread_over_seeds(scores: ArrayLike) -> Spread:
    """Mean, sample std (ddof=1; 0 for one seed), min and max of a score over agent seeds."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("scores must be a non-empty sequence of finite numbers")
    std = float(s.std(ddof=1)) if s.size > 1 else 0.0
    return Spread(float(s.mean()), std, float(s.min()), float(s.max()), int(s.size))


def compare_all(spaces: Mapping[str, ArrayLike], metrics: Sequence[str] = METRICS,
                n_perm: int = 1000, seed: int = 0, alpha: float = 0.05,
                n_perm_retrieval: int | None = None,
                options: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Records {a, b, metric, score, p, calibrated, null_mean, n_perm} for every unordered pair
    (a before b in dict order) and metric; ``options`` maps a metric to its keyword options.

    b's rows are permuted exactly as in ``permutation_null(metric, a, b, n_perm, seed)``, so each
    record matches the single-pair functions.  Per-space work is done once; for CKA and RSA each
    permuted matrix is gathered once and scored against all partners (and both CKA estimators)
    in one matrix product.  procrustes_retrieval uses ``n_perm_retrieval`` permutations
    (default DEFAULT_N_PERM["procrustes_retrieval"]).
    """
    names = list(spaces)
    if len(names) < 2:
        raise ValueError("compare_all needs at least two spaces")
    X = [_as_matrix(spaces[name], repr(name)) for name in names]
    if len({len(x) for x in X}) != 1:
        raise ValueError(f"all spaces must have the same number of rows; "
                         f"got {dict(zip(names, map(len, X)))}")
    for m in metrics:
        _check_metric(m)
    split = {m: _split(m, (options or {}).get(m, {})) for m in metrics}
    n_retrieval = DEFAULT_N_PERM["procrustes_retrieval"] if n_perm_retrieval is None \
        else n_perm_retrieval
    obs: dict[tuple, float] = {}
    nulls: dict[tuple, np.ndarray] = {}
    pairs = [(s, t) for t in range(1, len(X)) for s in range(t)]
    # CKA (both estimators share the centred Grams) and RSA: one pass over the permutations
    quad = [m for m in _QUAD if m in metrics]
    fams = {"gram": [m for m in quad if m != "rsa"], "rsa": [m for m in quad if m == "rsa"]}
    fams = {f: ms for f, ms in fams.items() if ms}
    if fams:
        prepared = {f: _prepare(ms[0], X, split[ms[0]][0]) for f, ms in fams.items()}
        P = _null_perms(quad[0], prepared[next(iter(fams))][0], len(X[0]), n_perm, seed)
        dots = _quad_nulls([[a["perm"] for a in prepared[f]] for f in fams], P)
        for (f, ms), d in zip(fams.items(), dots):
            S = prepared[f]
            for m in ms:
                for s, t in pairs:
                    obs[m, s, t] = _SCORE[m](S[s], S[t])
                    nulls[m, s, t] = _quad_finish(m, S[s], S[t], d[s, t], P)
    for m in [m for m in metrics if m not in quad]:  # per-pair nulls, pairs split over threads
        S = _prepare(m, X, split[m][0])
        P = _null_perms(m, S[0], len(X[0]), n_retrieval if m == "procrustes_retrieval"
                        else n_perm, seed)
        with _blas_single(), ThreadPoolExecutor(_THREADS) as pool:
            done = pool.map(lambda st: (_SCORE[m](S[st[0]], S[st[1]], **split[m][1]),
                                        _pair_null(m, S[st[0]], S[st[1]], P, split[m][1])),
                            pairs)
            for (s, t), (score, null) in zip(pairs, done):
                obs[m, s, t], nulls[m, s, t] = score, null
    return [{"a": names[s], "b": names[t], "metric": m, "score": obs[m, s, t],
             "p": p_value(obs[m, s, t], nulls[m, s, t]),
             "calibrated": calibrated(obs[m, s, t], nulls[m, s, t], alpha),
             "null_mean": float(nulls[m, s, t].mean()), "n_perm": len(nulls[m, s, t])}
            for m in metrics for t in range(1, len(X)) for s in range(t)]


# ----------------------------------------------------------------------------- chapter 5 tables
def chance(metric: str, n: int, k: int = 15) -> float:
    """Expected score of unrelated spaces: k/(N-1) for mutual_knn, k/N for held-out retrieval,
    0 for debiased CKA and RSA; NaN where only a permutation null tells (disparity, biased CKA)."""
    _check_metric(metric)
    return {"mutual_knn": k / (n - 1), "procrustes_retrieval": k / n, "cka": 0.0,
            "rsa": 0.0}.get(metric, float("nan"))


def pair_matrix(spaces: Mapping[str, ArrayLike], metric: str = "mutual_knn",
                **options: Any) -> Any:
    """Symmetric pandas DataFrame of ``measure(metric, a, b)`` over all pairs of ``spaces`` (each
    space prepared once; the diagonal is the score of a space with itself)."""
    import pandas as pd

    _check_metric(metric)
    if metric == "procrustes_retrieval":
        raise ValueError("pair_matrix needs a symmetric metric; procrustes_retrieval maps A -> B")
    names = list(spaces)
    X = [_as_matrix(spaces[name], repr(name)) for name in names]
    prep, score = _split(metric, options)
    out = np.ones((len(X), len(X)))
    S = _prepare(metric, X, prep)
    with _blas_single():
        for t in range(len(X)):
            for s in range(t + 1):
                out[s, t] = out[t, s] = _SCORE[metric](S[s], S[t], **score)
    return pd.DataFrame(out, index=names, columns=names)


def knn_curve(spaces: Mapping[str, ArrayLike], anchor: str, ks: Sequence[int],
              center: bool = True) -> Any:
    """Mutual k-NN precision of ``anchor`` against every other space for each k in ``ks``:
    long DataFrame (model, k, precision, chance = k/(N-1)); neighbour lists are sorted once."""
    import pandas as pd

    if anchor not in spaces:
        raise ValueError(f"anchor {anchor!r} is not one of the spaces: {', '.join(spaces)}")
    A = _as_matrix(spaces[anchor], repr(anchor))
    n, kmax = len(A), max(ks)
    for k in ks:
        _check_k(k, n)

    def order(X: np.ndarray) -> np.ndarray:
        S = _cosine(X, center)
        np.fill_diagonal(S, -np.inf)
        return np.argsort(-S, axis=1, kind="stable")[:, :kmax]

    a = order(A)
    rows = []
    for name, X in spaces.items():
        if name == anchor:
            continue
        b = order(_as_pair(A, X)[1])
        for k in ks:
            member = np.zeros((n, n), dtype=bool)
            member[np.arange(n)[:, None], b[:, :k]] = True
            rows.append({"model": name, "k": int(k), "chance": k / (n - 1),
                         "precision": float(member[np.arange(n)[:, None], a[:, :k]].mean())})
    return pd.DataFrame(rows)


def headline(spaces: Mapping[str, ArrayLike], anchor: str, metrics: Sequence[str] = METRICS,
             n_perm: int = 1000, n_perm_retrieval: int | None = None, n_boot: int = 1000,
             level: float = 0.95, alpha: float = 0.05, seed: int = 0,
             options: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """``anchor`` against every other space under every metric: one DataFrame row per (model,
    metric) with score, bootstrap CI (low, high), chance, permutation p, calibrated score and
    null mean.  Each row is ``compare_all({anchor: A, model: B})`` (B's rows permuted;
    procrustes_retrieval maps A -> B) plus ``bootstrap_ci`` with the same options (n_boot=0:
    no interval, low and high are NaN)."""
    import pandas as pd

    if anchor not in spaces:
        raise ValueError(f"anchor {anchor!r} is not one of the spaces: {', '.join(spaces)}")
    options = options or {}
    rows = []
    for name, X in spaces.items():
        if name == anchor:
            continue
        with _blas_single():  # many small BLAS calls: threads only spin
            recs = compare_all({anchor: spaces[anchor], name: X}, metrics, n_perm=n_perm,
                               seed=seed, alpha=alpha, n_perm_retrieval=n_perm_retrieval,
                               options=options)
            cis = {r["metric"]: bootstrap_ci(r["metric"], spaces[anchor], X, n_boot=n_boot,
                                             seed=seed, level=level,
                                             **options.get(r["metric"], {}))
                   if n_boot else Interval(r["score"], np.nan, np.nan) for r in recs}
        for r in recs:
            opts = dict(options.get(r["metric"], {}))
            ci = cis[r["metric"]]
            rows.append({"model": name, "metric": r["metric"], "score": r["score"],
                         "low": ci.low, "high": ci.high,
                         "chance": chance(r["metric"], len(X), opts.get("k", 15)),
                         "p": r["p"], "calibrated": r["calibrated"],
                         "null_mean": r["null_mean"], "n_perm": r["n_perm"]})
    return pd.DataFrame(rows)


def headline_for(spaces: Mapping[str, ArrayLike], anchor: str, align: Any) -> Any:
    """``headline`` with the sizes of a config's ``align`` section (``lva.config.AlignConfig``:
    permutations, resamples, level, alpha, seed, and k for mutual k-NN and retrieval)."""
    k = {"k": align.k}
    return headline(spaces, anchor, n_perm=align.n_perm, n_perm_retrieval=align.n_perm_retrieval,
                    n_boot=align.n_boot, level=align.level, alpha=align.alpha, seed=align.seed,
                    options={"mutual_knn": k, "procrustes_retrieval": k})


def layer_curve(A: ArrayLike, layers: ArrayLike, metrics: Sequence[str] = ("mutual_knn", "cka"),
                options: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """Alignment of A with each layer of a layered representation ``layers`` (L, N, d): long
    DataFrame (layer, metric, score).  Report the whole curve: the best layer, picked after the
    fact, is biased upwards (a max over L noisy scores)."""
    import pandas as pd

    L = np.asarray(layers)
    if L.ndim != 3:
        raise ValueError(f"layers must have shape (n_layers, N, d); got {L.shape}")
    options = options or {}
    return pd.DataFrame([{"layer": i, "metric": m,
                          "score": measure(m, A, L[i], **options.get(m, {}))}
                         for m in metrics for i in range(len(L))])


def within_groups(spaces: Mapping[str, ArrayLike], anchor: str, groups: Mapping[str, ArrayLike],
                  metrics: Sequence[str] = ("mutual_knn", "cka", "rsa"), n_perm: int = 1000,
                  seed: int = 0, alpha: float = 0.05,
                  options: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """``anchor`` against every other space computed within each group of rows (e.g. one task's
    instructions): long DataFrame (group, model, metric, n, score, chance, p, calibrated)."""
    import pandas as pd

    rows = []
    for group, idx in groups.items():
        idx = np.asarray(idx)
        sub = {name: np.asarray(X)[idx] for name, X in spaces.items()}
        for r in headline(sub, anchor, metrics, n_perm=n_perm, n_boot=0, seed=seed, alpha=alpha,
                          options=options).to_dict("records"):
            rows.append({"group": group, "model": r["model"], "metric": r["metric"],
                         "n": len(idx), "score": r["score"], "chance": r["chance"],
                         "p": r["p"], "calibrated": r["calibrated"]})
    return pd.DataFrame(rows)
