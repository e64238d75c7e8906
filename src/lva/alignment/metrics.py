"""One record per alignment metric (:mod:`lva.alignment.registry` is built from them).

A :class:`Metric` says how one space is prepared (everything that does not depend on the
pairing: kNN sets, centred Grams, RDM ranks, PCA bases: computed once, a permutation only
relabels it), how a prepared pair is scored, how it is scored under row permutations of B (the
null), its per-item form and chance level where it has them, its default options and number of
permutations, and how the book shows and uses it (label, chapter 6's charts, the specification
curve, the config field that sets its permutations).  Adding a metric means adding one record to
``_RECORDS`` plus its functions (and, for speed, a compiled kernel in
:mod:`lva.alignment.kernels`); :func:`lva.alignment.registry.register` adds one at run time.
Every list and table of metrics (``METRICS``, the tables of chapter 6, the specification
curve's metrics, the labels) is a live view of the registry.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import rankdata

from .common import (
    _blas_single,
    _check_k,
    _cosine,
    _distinct_rows,
    _perms,
    _pool,
    _split_threads,
    _train_pca,
    neighbours,
)
from .kernels import _disparity_kernel, _knn_kernel, _procrustes_kernel, _quad_nulls

Prepared = dict[str, Any]  # one space prepared for a metric

DEFAULT_K = 15  # default neighbourhood size of mutual_knn and procrustes_retrieval (precision@15)


def _unrestricted(a: Prepared, n: int, n_perm: int, seed: int) -> np.ndarray:
    """Uniform permutations of all N rows."""
    return _perms(n, n_perm, seed)


@dataclass(frozen=True, eq=False)  # records compare and hash by identity
class Metric:
    """Everything about one metric (higher scores always mean more aligned).

    ``prepare(X, **prep)`` prepares one space; its keyword parameters are the preparation
    options, every other option of ``options`` goes, as ``**pair``, to ``score(a, b, **pair)``
    (a float), ``null(a, b, P, **pair)`` (one score per row permutation of B in P: value j is
    the score against B[P[j]]) and ``per_item(a, b, **pair)`` (N scores whose mean is the
    score; None: no per-item form).  ``chance(N, k)`` is the expected score of unrelated
    spaces (None: only a permutation null tells).  ``permute(a, N, n_perm, seed)`` draws the
    null's permutations from A's prepared space.  ``from_dots(a, b, dots, P)`` (CKA, RSA) turns
    the products dots[j] = <a["perm"], P_j b["perm"] P_j^T> into scores: compare_all scores all
    such metrics in one pass over the permutations.  ``symmetric``: score(A, B) = score(B, A).
    ``item_null(a, b, P, **pair)``: the per-item scores under each permutation, ``(n_perm, N)``,
    whose row means are ``null``'s values (for nulls of a subset's mean score).

    ``chance_note``: the chance level in words (the package docstring's table).
    How the book uses it: ``label`` heads its columns in chapter 6 ("": the name); ``charted``:
    chapter 6's charts show it; ``in_spec_curve``: one of the specification curve's metrics
    (:func:`lva.robustness.specification_curve`); ``n_perm_field``: the field of
    :class:`lva.config.AlignConfig` that sets its number of permutations in the book (``n_perm``
    is the library's default when a call gives none).
    """

    name: str
    description: str
    prepare: Callable[..., Prepared]
    score: Callable[..., float]
    null: Callable[..., np.ndarray]
    per_item: Callable[..., np.ndarray] | None = None
    chance: Callable[[int, int], float] | None = None
    n_perm: int = 1000
    options: Mapping[str, Any] = field(default_factory=dict)
    symmetric: bool = True
    permute: Callable[[Prepared, int, int, int], np.ndarray] = _unrestricted
    from_dots: Callable[..., np.ndarray] | None = None
    item_null: Callable[..., np.ndarray] | None = None  # (n_perm, N) per-item scores under each permutation
    chance_note: str = "use the null"  # the chance level in words, for the package's table
    label: str = ""
    charted: bool = False
    in_spec_curve: bool = False
    n_perm_field: str = "n_perm"

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def split(self, options: Mapping[str, Any]) -> tuple[dict, dict]:
        """(preparation, pair) keywords: the default options updated with ``options``;
        ValueError naming the valid options for an unknown one."""
        bad = sorted(set(options) - set(self.options))
        if bad:
            raise ValueError(f"unknown option(s) {bad} for metric '{self.name}'; valid options: {sorted(self.options)}")
        prep = inspect.signature(self.prepare).parameters
        merged = {**self.options, **options}
        return ({k: v for k, v in merged.items() if k in prep}, {k: v for k, v in merged.items() if k not in prep})

    def prepared(self, X: np.ndarray, **options: Any) -> Prepared:
        """One space prepared with ``options`` (default options for the rest)."""
        return self.prepare(X, **self.split(options)[0])

    def permutations(self, a: Prepared, n: int, n_perm: int, seed: int) -> np.ndarray:
        """The null's n_perm permutations of B's N rows (rng = default_rng(seed))."""
        if n_perm < 1:
            raise ValueError(f"n_perm must be >= 1; got {n_perm}")
        return self.permute(a, n, n_perm, seed)


# ----------------------------------------------------------------------------- mutual kNN
def _membership(idx: np.ndarray) -> np.ndarray:
    """Boolean N x N matrix: member[i, j] iff j is among row i's neighbours idx[i]."""
    member = np.zeros((len(idx), len(idx)), dtype=bool)
    member[np.arange(len(idx))[:, None], idx] = True
    return member


def _prep_mutual_knn(X: np.ndarray, *, k: int, center: bool) -> Prepared:
    """kNN index sets (N x k) ordered by (-cosine, index) and the boolean membership matrix."""
    idx = neighbours(X, _check_k(k, X.shape[0]), center)
    return {"idx": idx, "member": _membership(idx)}


def _items_mutual_knn(a: Prepared, b: Prepared) -> np.ndarray:
    """Per-item overlap |S_A(i) & S_B(i)| / k, read from B's membership matrix."""
    return b["member"][np.arange(len(a["idx"]))[:, None], a["idx"]].mean(axis=1)


def _score_mutual_knn(a: Prepared, b: Prepared) -> float:
    """Mean neighbourhood overlap (Huh et al. 2024)."""
    return float(_items_mutual_knn(a, b).mean())


def _item_null_mutual_knn(a: Prepared, b: Prepared, P: np.ndarray) -> np.ndarray:
    """Per-item overlaps under each B[p]: j is a neighbour of i there iff member_B[p_i, p_j]."""
    return b["member"][P[:, :, None], P[:, a["idx"]]].mean(axis=-1)


def _null_mutual_knn(a: Prepared, b: Prepared, P: np.ndarray) -> np.ndarray:
    """Overlap under B[p]: j is a neighbour of i in B[p] iff member_B[p_i, p_j]; O(N k) each."""
    out = np.empty(len(P), dtype=np.int64)
    _knn_kernel(a["idx"], b["member"].view(np.uint8), P, out)
    return out / a["idx"].size


# ----------------------------------------------------------------------------- CKA and RSA
def _prep_gram(X: np.ndarray) -> Prepared:
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
    return {"perm": off, "diag": diag, "trace": diag.sum(), "nc": np.linalg.norm(K), "nu": np.linalg.norm(Ku)}


def _prep_rsa(X: np.ndarray, *, center: bool) -> Prepared:
    """Centred average ranks of the upper-triangle RDM (1 - cosine) as a symmetric matrix."""
    iu = np.triu_indices(len(X), 1)
    r = rankdata((1.0 - _cosine(X, center))[iu])
    r -= r.mean()
    R = np.zeros((len(X), len(X)))
    with np.errstate(invalid="ignore", divide="ignore"):  # all ranks tied: NaN, reported by measure
        R[iu] = r / np.linalg.norm(r)
    return {"perm": R + R.T}


def _cka_from_dots(a: Prepared, b: Prepared, dots: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Debiased CKA = HSIC_u(K,L) / sqrt(HSIC_u(K,K) HSIC_u(L,L))."""
    n, dg = P.shape[1], b["diag"][P] @ a["diag"]
    hsic = dots - 2.0 * dg / (n - 2) + a["trace"] * b["trace"] / ((n - 1) * (n - 2))
    return hsic / (a["nu"] * b["nu"])


def _cka_biased_from_dots(a: Prepared, b: Prepared, dots: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Biased CKA = <K_c,L_c> / (|K_c| |L_c|)."""
    return (dots + b["diag"][P] @ a["diag"]) / (a["nc"] * b["nc"])


def _rsa_from_dots(a: Prepared, b: Prepared, dots: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Spearman rho = Pearson r of the centred ranks: each pair appears twice in the product."""
    return dots / 2.0


def _score_from_dots(from_dots: Callable, a: Prepared, b: Prepared) -> float:
    """Observed score, its product computed in float64."""
    eye = np.arange(len(a["perm"]))[None]
    return float(from_dots(a, b, np.array([np.vdot(a["perm"], b["perm"])]), eye)[0])


def _null_from_dots(from_dots: Callable, a: Prepared, b: Prepared, P: np.ndarray) -> np.ndarray:
    """Scores under each permutation, the products accumulated in float32 (``_quad_nulls``)."""
    return from_dots(a, b, _quad_nulls([[a["perm"], b["perm"]]], P)[0][0, 1], P)


def _from_dots(
    name: str, description: str, prepare: Callable[..., Prepared], from_dots: Callable[..., np.ndarray], **record: Any
) -> Metric:
    """The record of a metric scored from the products <a["perm"], P b["perm"] P^T>."""
    return Metric(
        name,
        description,
        prepare,
        partial(_score_from_dots, from_dots),
        partial(_null_from_dots, from_dots),
        from_dots=from_dots,
        **record,
    )


# ----------------------------------------------------------------------------- Procrustes
def _prep_procrustes_retrieval(
    X: np.ndarray, *, n_components: int | None, n_folds: int, fold_seed: int, in_sample: bool
) -> Prepared:
    """Seeded folds and, per fold, all rows on PCs fitted to the training rows only (to
    min(n_components, d, n_train - 1) dims: PCs fitted on held-out rows inflate chance)."""
    if n_components is not None and (not isinstance(n_components, (int, np.integer)) or n_components < 1):
        raise ValueError(f"n_components must be None or an integer >= 1; got {n_components!r}")
    n, every = len(X), np.arange(len(X))
    if in_sample:  # the pitfall: fit and evaluate on the same rows
        folds = [(every, every)]
    else:
        if not isinstance(n_folds, (int, np.integer)) or n_folds < 2 or n < 2 * n_folds:
            raise ValueError(
                f"n_folds must be an integer >= 2 with N >= 2 * n_folds (N = {n}); got n_folds={n_folds!r}"
            )
        fold_of = np.empty(n, dtype=np.intp)
        fold_of[np.random.default_rng(fold_seed).permutation(n)] = every % n_folds
        folds = [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(n_folds)]
    m = min(n_components or X.shape[1], X.shape[1], min(len(tr) for tr, _ in folds) - 1)
    first, uid = _distinct_rows(X)
    size = np.bincount(uid, minlength=len(first))
    X = X - X.mean(axis=0)
    K = X @ X.T if X.shape[1] > len(folds[0][0]) else None
    return {
        "folds": folds,
        "proj": [_train_pca(X, tr, m, K) for tr, _ in folds],
        "first": first,
        "uid": uid,
        "size": size,  # identical rows, for exact ties
        "order": np.argsort(uid, kind="stable"),
        "start": np.r_[0, np.cumsum(size)],
    }


def _fold_perms(folds: list[tuple], n: int, n_perm: int, seed: int) -> np.ndarray:
    """Permutations shuffling rows only within each held-out fold (rng = default_rng(seed))."""
    rng = np.random.default_rng(seed)
    P = np.tile(np.arange(n), (n_perm, 1))
    for i in range(n_perm):
        for _, test in folds:
            P[i, test] = rng.permutation(test)
    return P


def _within_folds(a: Prepared, n: int, n_perm: int, seed: int) -> np.ndarray:
    """Every fold keeps its training set (so its PCA): only the map W is refit."""
    return _fold_perms(a["folds"], n, n_perm, seed)


def _retrieval_hits(a: Prepared, b: Prepared, k: int, P: np.ndarray | None = None) -> np.ndarray:
    """Hit@k of every item, one row per permutation p of B's rows in P (None: the identity).

    Per fold: W = U V^T from the SVD of A_train^T B[p]_train (minimises ||A_train W - B_train||),
    then each held-out A_i W is ranked against all N rows of B[p] by cosine (|A_i W| = |A_i|
    since W is orthogonal); ties go to the lower row position in B[p].  Identical rows of B are
    scored once (``_hits_row``), so their ties are exact. Every fold runs compiled, permutation by
    permutation (``_procrustes_kernel``), the permutations split between the worker threads (each
    is scored by one thread, in a fixed order: the hits do not depend on the number of threads)."""
    n, k = len(a["proj"][0]), _check_k(k, len(a["proj"][0]))
    P = np.arange(n)[None] if P is None else P
    m = min(a["proj"][0].shape[1], b["proj"][0].shape[1])
    hits = np.zeros((len(P), n), dtype=np.bool_)
    invP = np.empty_like(P)
    np.put_along_axis(invP, P, np.arange(n)[None], axis=1)
    shares = _split_threads(len(P))  # permutations split between the worker threads
    with _blas_single(), _pool() as pool:  # LAPACK on two BLAS threads thrashes on a shared machine
        for (train, test), Af, Bf in zip(a["folds"], a["proj"], b["proj"]):
            Af, Bf = np.ascontiguousarray(Af[:, :m]), np.ascontiguousarray(Bf[:, :m])
            Bu = Bf[b["first"]]
            Bu = Bu / np.maximum(np.linalg.norm(Bu, axis=1, keepdims=True), 1e-300)
            At, Atest = np.ascontiguousarray(Af[train].T), Af[test]
            list(
                pool.map(
                    lambda sl: _procrustes_kernel(
                        At,
                        Bf,
                        Atest,
                        Bu,
                        b["uid"],
                        b["size"],
                        b["order"],
                        b["start"],
                        P[sl],
                        invP[sl],
                        train,
                        test,
                        k,
                        hits[sl],
                    ),
                    shares,
                )
            )
    return hits


def _score_procrustes_retrieval(a: Prepared, b: Prepared, *, k: int) -> float:
    """Mean held-out hit@k (Li et al. 2024)."""
    return float(_retrieval_hits(a, b, k).mean())


def _items_procrustes_retrieval(a: Prepared, b: Prepared, *, k: int) -> np.ndarray:
    """Each item's held-out hit@k (0.0 or 1.0)."""
    return _retrieval_hits(a, b, k)[0].astype(float)


def _item_null_procrustes_retrieval(a: Prepared, b: Prepared, P: np.ndarray, *, k: int) -> np.ndarray:
    """Each item's hit under each (within-fold) permutation, W refit every time."""
    return _retrieval_hits(a, b, k, P).astype(float)


def _null_procrustes_retrieval(a: Prepared, b: Prepared, P: np.ndarray, *, k: int) -> np.ndarray:
    """Hit rate under each permutation, W refit for every fold and permutation."""
    return _retrieval_hits(a, b, k, P).mean(axis=1)


def _prep_procrustes_disparity(X: np.ndarray, *, dim: int) -> Prepared:
    """Scores on the top min(dim, d, N-1) principal components (fit on all rows: no labels)."""
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1; got {dim!r}")
    m = min(dim, X.shape[1], len(X) - 1)
    return {"scores": _train_pca(X - X.mean(axis=0), np.arange(len(X)), m)}


def _disparity_similarity(a: Prepared, b: Prepared, P: np.ndarray) -> np.ndarray:
    """(sum of singular values of A^T B[p])^2 for unit-Frobenius A, B = 1 - scipy disparity."""
    m = min(a["scores"].shape[1], b["scores"].shape[1])
    A, B = a["scores"][:, :m], b["scores"][:, :m]
    out = np.empty(len(P))
    _disparity_kernel(A / np.linalg.norm(A), B / np.linalg.norm(B), P, out)
    return out


def _score_procrustes_disparity(a: Prepared, b: Prepared) -> float:
    """1 - disparity, so that higher = more aligned like every other metric."""
    return float(_disparity_similarity(a, b, np.arange(len(a["scores"]))[None])[0])


# ----------------------------------------------------------------------------- the registry
_RECORDS: tuple[Metric, ...] = (
    Metric(
        "mutual_knn",
        "mean_i |kNN_A(i) & kNN_B(i)| / k, cosine, self excluded",
        _prep_mutual_knn,
        _score_mutual_knn,
        _null_mutual_knn,
        per_item=_items_mutual_knn,
        chance=lambda n, k: k / (n - 1),
        options={"k": DEFAULT_K, "center": True},
        item_null=_item_null_mutual_knn,
        chance_note="k / (N-1)",
        label="mutual k-NN@k",
        charted=True,
        in_spec_curve=True,
    ),
    # n_perm: every permutation refits W for every fold, hence 100 by default; the book always
    # passes its config's lva.config.AlignConfig.n_perm_retrieval instead
    Metric(
        "procrustes_retrieval",
        "5-fold CV orthogonal-Procrustes map A -> B, hit@k",
        _prep_procrustes_retrieval,
        _score_procrustes_retrieval,
        _null_procrustes_retrieval,
        per_item=_items_procrustes_retrieval,
        chance=lambda n, k: k / n,
        n_perm=100,
        options={"k": DEFAULT_K, "n_components": 32, "n_folds": 5, "fold_seed": 0, "in_sample": False},
        symmetric=False,
        permute=_within_folds,
        item_null=_item_null_procrustes_retrieval,
        chance_note="~ k / N",
        label="retrieval@k (Procrustes)",
        charted=True,
        in_spec_curve=True,
        n_perm_field="n_perm_retrieval",
    ),
    Metric(
        "procrustes_disparity",
        "1 - scipy.spatial.procrustes disparity after PCA to dim",
        _prep_procrustes_disparity,
        _score_procrustes_disparity,
        _disparity_similarity,
        options={"dim": 8},
        chance_note="> 0: use null",
        label="Procrustes similarity",
    ),
    _from_dots(
        "cka",
        "debiased linear CKA (Song et al. 2012 HSIC estimator)",
        _prep_gram,
        _cka_from_dots,
        chance=lambda n, k: 0.0,
        chance_note="~ 0, may be < 0",
        label="debiased CKA",
        charted=True,
        in_spec_curve=True,
    ),
    _from_dots(
        "cka_biased",
        "biased linear CKA (Kornblith et al. 2019), teaching only",
        _prep_gram,
        _cka_biased_from_dots,
        chance_note="large if d >> N",
        label="biased CKA (teaching only)",
    ),
    _from_dots(
        "rsa",
        "Spearman rho of the upper triangles of 1 - cosine RDMs",
        _prep_rsa,
        _rsa_from_dots,
        chance=lambda n, k: 0.0,
        options={"center": True},
        chance_note="~ 0",
        label="RSA (Spearman)",
        charted=True,
        in_spec_curve=True,
    ),
)
