"""Work lva.alignment shares between statistics gives exactly what computing them one by one
gives: bootstraps drawn for many spaces at once, the compiled retrieval null, one-thread BLAS."""

from __future__ import annotations

import numpy as np
import pytest

from lva import alignment as al
from lva.alignment import common
from lva.alignment.inference import _interval
from lva.alignment.metrics import _fold_perms
from lva.alignment.registry import METRICS_BY_NAME


def spaces(seed: int = 0, n: int = 40) -> dict[str, np.ndarray]:
    """An anchor and three spaces sharing some of its structure (dims 5 to 60)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 4))
    return {
        name: z @ rng.standard_normal((4, d)) + noise * rng.standard_normal((n, d))
        for name, d, noise in (("a", 8, 0.3), ("b", 5, 0.5), ("c", 60, 1.0), ("d", 12, 3.0))
    }


def test_bootstrap_scores_equal_separate_bootstrap_intervals() -> None:
    """Every metric, every B: the same draws, the same scores, the same interval as bootstrap_ci."""
    reps = spaces()
    options = {"mutual_knn": {"k": 5}, "procrustes_retrieval": {"k": 5}, "procrustes_disparity": {"dim": 3}}
    Bs = [reps[n] for n in ("b", "c", "d")]
    shared = al.bootstrap_scores(al.METRICS, reps["a"], Bs, n_boot=12, seed=3, options=options)
    for metric in al.METRICS:
        for B, (estimate, scores) in zip(Bs, shared[metric]):
            alone = al.bootstrap_ci(metric, reps["a"], B, n_boot=12, seed=3, **options.get(metric, {}))
            assert (alone.low, alone.high) == _interval(scores, 0.95)
            assert estimate is None if metric not in al.PER_ITEM_METRICS else estimate == alone.estimate
    assert al.bootstrap_scores(["cka"], reps["a"], [], n_boot=3) == {"cka": []}
    with pytest.raises(ValueError, match="n_boot"):
        al.bootstrap_scores(["cka"], reps["a"], Bs, n_boot=0)


def test_headline_intervals_equal_bootstrap_ci() -> None:
    """The headline draws every model's resamples together; each row's interval is still its own
    bootstrap_ci."""
    reps = spaces(1)
    options = {"mutual_knn": {"k": 4}, "procrustes_retrieval": {"k": 4}}
    table = al.headline(reps, "a", n_perm=5, n_perm_retrieval=2, n_boot=9, seed=2, options=options)
    assert len(table) == 3 * len(al.METRICS)
    for row in table.itertuples():
        alone = al.bootstrap_ci(row.metric, reps["a"], reps[row.model], n_boot=9, seed=2, **options.get(row.metric, {}))
        assert (row.low, row.high) == (alone.low, alone.high)
    bare = al.headline(reps, "a", n_perm=5, n_perm_retrieval=2, n_boot=0, seed=2, options=options)
    assert bare["low"].isna().all() and bare["score"].equals(table["score"]) and bare["p"].equals(table["p"])


def reference_hits(a: dict, b: dict, k: int, P: np.ndarray) -> np.ndarray:
    """The retrieval null as it was computed before the compiled kernel, in numpy: per fold and
    permutation, W = U V^T from np.linalg.svd of A_train^T B[p]_train, then each held-out item's
    rank among all N rows of B[p] (cosines against B's distinct unit rows, so copies tie exactly;
    ties go to the lower position)."""
    n = len(a["proj"][0])
    m = min(a["proj"][0].shape[1], b["proj"][0].shape[1])
    hits = np.zeros((len(P), n), dtype=bool)
    for (train, test), Af, Bf in zip(a["folds"], a["proj"], b["proj"]):
        Af, Bf = Af[:, :m], Bf[:, :m]
        Bu = Bf[b["first"]] / np.linalg.norm(Bf[b["first"]], axis=1, keepdims=True)
        for j, p in enumerate(P):
            U, _, Vt = np.linalg.svd(Af[train].T @ Bf[p[train]])
            S = (Af[test] @ (U @ Vt)) @ Bu.T  # test item x distinct row of B
            for t, i in enumerate(test):
                s = S[t, b["uid"][p]]  # the score of each position of B[p]
                ahead = (s > s[i]) | ((s == s[i]) & (np.arange(n) < i))
                hits[j, i] = ahead.sum() < k
    return hits


@pytest.mark.parametrize("dims,copies", [((8, 12), False), ((40, 30), False), ((6, 9), True)])
def test_compiled_retrieval_null_equals_the_numpy_reference(dims: tuple[int, int], copies: bool) -> None:
    """Random spaces (and, with ``copies``, duplicated rows of B, whose ties are exact): the
    compiled kernel's hits equal the per-permutation numpy SVD's, so its null does too."""
    rng = np.random.default_rng(sum(dims))
    A = rng.standard_normal((60, dims[0]))
    B = A[:, :1] @ rng.standard_normal((1, dims[1])) + rng.standard_normal((60, dims[1]))
    if copies:
        B[[3, 17, 40]] = B[5]
    rec = METRICS_BY_NAME["procrustes_retrieval"]
    a, b = rec.prepared(A, n_components=8), rec.prepared(B, n_components=8)
    P = np.vstack([np.arange(60), _fold_perms(a["folds"], 60, 25, 7)])
    expected = reference_hits(a, b, 6, P)
    got = rec.item_null(a, b, P, k=6)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)
    null = al.permutation_null("procrustes_retrieval", A, B, n_perm=25, seed=7, k=6, n_components=8)
    np.testing.assert_allclose(null, expected[1:].mean(axis=1), rtol=0, atol=1e-10)
    assert al.measure("procrustes_retrieval", A, B, k=6, n_components=8) == pytest.approx(expected[0].mean(), abs=1e-10)


def test_one_thread_blas_blocks_nest_and_restore() -> None:
    """Inside a block BLAS has one thread; nested blocks change nothing; after the outer block
    the limits are what they were."""
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas()
    with common._blas_single():
        assert set(blas()) == {1}
        with common._blas_single():
            assert set(blas()) == {1}
        assert set(blas()) == {1} and common._BLAS["depth"] == 1
    assert blas() == before and common._BLAS["depth"] == 0


@pytest.mark.parametrize("metric", al.METRICS)
def test_measure_and_null_equal_measure_and_permutation_null(metric: str) -> None:
    """One preparation for both: the same score and the same null as the two calls."""
    reps = spaces(2)
    options = al.k_options(metric, 5)
    score, null = al.measure_and_null(metric, reps["a"], reps["c"], n_perm=15, seed=4, **options)
    assert score == al.measure(metric, reps["a"], reps["c"], **options)
    assert np.array_equal(null, al.permutation_null(metric, reps["a"], reps["c"], n_perm=15, seed=4, **options))


def test_distinct_rows_partition_rows_as_np_unique_does():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 4))
    X[[4, 9, 17]] = X[2]
    X[11] = X[25]
    X[6], X[7] = 0.0, -0.0  # -0.0 is the same row as 0.0, as for np.unique
    first, uid = common._distinct_rows(X)
    _, ref_first, ref_uid = np.unique(X, axis=0, return_index=True, return_inverse=True)
    assert np.array_equal(X[first][uid], X)
    assert sorted(first) == sorted(ref_first) and list(first) == sorted(first)  # first occurrences, in order
    assert np.array_equal(first[uid], ref_first[ref_uid.ravel()])  # the same partition of the rows
    assert uid[6] == uid[7] and uid[4] == uid[9] == uid[17] == uid[2] and uid[11] == uid[25]
