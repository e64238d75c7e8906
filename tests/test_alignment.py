"""Behavioural tests for lva.alignment: invariances, chance levels, pitfalls, statistics, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import procrustes as scipy_procrustes
from scipy.stats import spearmanr

from lva import alignment as al
from lva.alignment.common import _perms
from lva.alignment.kernels import _nuclear_norm, _quad_nulls, _row_tiles
from lva.alignment.metrics import _fold_perms, _prep_gram

INVARIANT = ("mutual_knn", "procrustes_retrieval", "procrustes_disparity", "cka", "cka_biased", "rsa")


def gaussian(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Independent standard-normal embedding."""
    return rng.standard_normal((n, d))


def rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    """Random orthogonal d x d matrix."""
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def related(rng: np.random.Generator, n: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy linear views (dims 30 and 50) of a shared 6-d latent."""
    z = rng.standard_normal((n, 6))
    a = z @ rng.standard_normal((6, 30)) + 0.3 * rng.standard_normal((n, 30))
    b = z @ rng.standard_normal((6, 50)) + 0.3 * rng.standard_normal((n, 50))
    return a, b


# ----------------------------------------------------------------------------- invariances
@pytest.mark.parametrize("metric", al.METRICS)
def test_identical_spaces_score_one(metric: str) -> None:
    A = gaussian(np.random.default_rng(0), 60, 20)
    assert al.measure(metric, A, A) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("metric", INVARIANT)
def test_invariant_to_rotation_scaling_and_shift(metric: str) -> None:
    rng = np.random.default_rng(0)
    A, B = related(rng)
    B2 = 3.7 * B @ rotation(rng, B.shape[1]) + 5.0  # rotation, isotropic scaling, translation
    assert al.measure(metric, A, B2) == pytest.approx(al.measure(metric, A, B), abs=1e-9)
    assert al.measure(metric, A, 0.5 * A @ rotation(rng, A.shape[1])) == pytest.approx(1.0)


@pytest.mark.parametrize("metric", INVARIANT)
def test_extreme_scales_give_the_unscaled_score(metric: str) -> None:
    """Sums of squares overflowed or underflowed at extreme scales (CKA of A * 1e-100 was inf, RSA
    at 1e160 NaN): each space is rescaled by a power of two first, and ordinary scales are untouched."""
    A, B = related(np.random.default_rng(0), 40)
    base = al.measure(metric, A, B)
    for scale in (1e-300, 1e-100, 1e-20, 1e20, 1e160, 1e300):
        assert al.measure(metric, A * scale, B) == pytest.approx(base, abs=1e-9), scale
        assert al.measure(metric, A, B * scale) == pytest.approx(base, abs=1e-9), scale
    np.testing.assert_allclose(
        al.permutation_null(metric, A * 1e-100, B, 5), al.permutation_null(metric, A, B, 5), atol=1e-6
    )  # nulls accumulate in float32


def test_a_non_finite_score_is_an_error_not_a_number() -> None:
    simplex = np.eye(6)  # every cosine distance equal: the RDM is constant, Spearman's rho undefined
    with pytest.raises(ValueError, match="rsa: the score is nan"):
        al.measure("rsa", simplex, np.random.default_rng(0).standard_normal((6, 3)))


def test_related_spaces_score_well_above_chance() -> None:
    rng = np.random.default_rng(0)
    A, B = related(rng)
    scores = {m: al.measure(m, A, B) for m in al.METRICS}
    assert scores["mutual_knn"] > 3 * 15 / 79
    assert scores["procrustes_retrieval"] > 3 * 15 / 80
    assert scores["cka"] > 0.5 and scores["rsa"] > 0.5


# ----------------------------------------------------------------------------- reference values
def test_mutual_knn_matches_a_per_row_loop() -> None:
    rng = np.random.default_rng(0)
    A, B, k = gaussian(rng, 50, 8), gaussian(rng, 50, 12), 5

    def knn(X: np.ndarray, i: int) -> set[int]:
        X = X - X.mean(axis=0)
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
        return set(sorted((j for j in range(len(X)) if j != i), key=lambda j: -X[i] @ X[j])[:k])

    expected = [len(knn(A, i) & knn(B, i)) / k for i in range(50)]
    np.testing.assert_allclose(al.per_item("mutual_knn", A, B, k=k), expected)


def test_debiased_cka_matches_song_et_al_formula() -> None:
    rng = np.random.default_rng(0)
    A, B = related(rng, 40)

    def hsic_u(K: np.ndarray, L: np.ndarray) -> float:
        n = len(K)
        K, L = K - np.diag(np.diag(K)), L - np.diag(np.diag(L))
        one = np.ones(n)
        return (
            np.trace(K @ L) + (one @ K @ one) * (one @ L @ one) / ((n - 1) * (n - 2)) - 2 / (n - 2) * one @ K @ L @ one
        ) / (n * (n - 3))

    K, L = A @ A.T, B @ B.T
    expected = hsic_u(K, L) / np.sqrt(hsic_u(K, K) * hsic_u(L, L))
    assert al.measure("cka", A, B) == pytest.approx(expected, rel=1e-10)


def test_biased_cka_rsa_and_disparity_match_textbook_definitions() -> None:
    rng = np.random.default_rng(0)
    A, B = related(rng, 40)
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    cka = np.linalg.norm(Bc.T @ Ac) ** 2 / (np.linalg.norm(Ac.T @ Ac) * np.linalg.norm(Bc.T @ Bc))
    assert al.measure("cka_biased", A, B) == pytest.approx(cka, rel=1e-10)

    def rdm(X: np.ndarray) -> np.ndarray:
        X = X - X.mean(0)
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
        return (1 - X @ X.T)[np.triu_indices(len(X), 1)]

    assert al.measure("rsa", A, B) == pytest.approx(spearmanr(rdm(A), rdm(B))[0], abs=1e-10)

    def pca(X: np.ndarray, m: int) -> np.ndarray:
        U, s, _ = np.linalg.svd(X - X.mean(0), full_matrices=False)
        return U[:, :m] * s[:m]

    disparity = scipy_procrustes(pca(A, 8), pca(B, 8))[2]
    assert al.measure("procrustes_disparity", A, B) == pytest.approx(1 - disparity, abs=1e-9)


# ----------------------------------------------------------------------------- chance levels
def test_independent_spaces_score_at_chance() -> None:
    rng = np.random.default_rng(0)
    n, k = 200, 15
    pairs = [(gaussian(rng, n, 40), gaussian(rng, n, 60)) for _ in range(6)]
    mean = {m: np.mean([al.measure(m, A, B) for A, B in pairs]) for m in ("mutual_knn", "cka", "rsa")}
    retrieval = np.mean([al.measure("procrustes_retrieval", A, B, fold_seed=i) for i, (A, B) in enumerate(pairs)])
    assert mean["mutual_knn"] == pytest.approx(k / (n - 1), abs=0.01)
    assert retrieval == pytest.approx(k / n, abs=0.025)
    assert abs(mean["cka"]) < 0.02
    assert abs(mean["rsa"]) < 0.02


def test_in_sample_procrustes_is_perfect_on_noise_but_cross_validated_is_chance() -> None:
    rng = np.random.default_rng(0)
    n, k = 60, 5
    A, B = gaussian(rng, n, 200), gaussian(rng, n, 300)  # d > N, independent
    in_sample = al.measure("procrustes_retrieval", A, B, k=k, n_components=None, in_sample=True)
    cv = al.measure("procrustes_retrieval", A, B, k=k, n_components=None)
    assert in_sample > 0.95
    assert cv == pytest.approx(k / n, abs=0.08)


def test_biased_cka_is_large_by_chance_when_d_exceeds_n() -> None:
    rng = np.random.default_rng(0)
    A, B = gaussian(rng, 50, 1000), gaussian(rng, 50, 1000)
    assert al.measure("cka_biased", A, B) > 0.8
    assert abs(al.measure("cka", A, B)) < 0.05


# ----------------------------------------------------------------------------- ties
def test_ties_are_broken_towards_the_lower_row_index() -> None:
    A = np.array([[1, 0], [1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], dtype=float)  # many ties
    theta = np.array([0.0, 0.1, 0.25, 0.45, 1.5, 1.62])
    B = np.column_stack([np.cos(theta), np.sin(theta)])  # unambiguous neighbours
    # kNN_A with k=2: 0->{1,2} 1->{0,2} 2->{0,1} 3->{0,1} 4->{5,0} 5->{4,0}
    # kNN_B with k=2: 0->{1,2} 1->{0,2} 2->{1,3} 3->{2,1} 4->{5,3} 5->{4,3}
    items = al.per_item("mutual_knn", A, B, k=2, center=False)
    np.testing.assert_array_equal(items, [1, 1, 0.5, 0.5, 0.5, 0.5])


@pytest.mark.parametrize("metric", al.PER_ITEM_METRICS)
def test_duplicated_rows_give_reproducible_results(metric: str) -> None:
    rng = np.random.default_rng(0)
    A = np.repeat(gaussian(rng, 20, 6), 3, axis=0)  # every instruction three times (synonyms)
    B = np.repeat(gaussian(rng, 30, 6), 2, axis=0)
    first, second = al.per_item(metric, A, B, k=3), al.per_item(metric, A, B, k=3)
    np.testing.assert_array_equal(first, second)
    assert al.measure(metric, A, B, k=3) == pytest.approx(first.mean())


# ----------------------------------------------------------------------------- per item
@pytest.mark.parametrize("metric", al.PER_ITEM_METRICS)
def test_per_item_mean_equals_measure(metric: str) -> None:
    A, B = related(np.random.default_rng(0))
    items = al.per_item(metric, A, B, k=7)
    assert items.shape == (len(A),)
    assert items.mean() == pytest.approx(al.measure(metric, A, B, k=7))


# ----------------------------------------------------------------------------- permutation null
@pytest.mark.parametrize("metric", al.METRICS)
def test_permutation_null_equals_recomputation_on_permuted_rows(metric: str) -> None:
    rng = np.random.default_rng(0)
    A, B = gaussian(rng, 40, 10), gaussian(rng, 40, 15)
    null = al.permutation_null(metric, A, B, n_perm=12, seed=3)
    if metric == "procrustes_retrieval":  # rows are shuffled within held-out folds only
        folds = al.METRICS_BY_NAME[metric].prepared(A)["folds"]
        perms = _fold_perms(folds, 40, 12, 3)
    else:
        gen = np.random.default_rng(3)
        perms = [gen.permutation(40) for _ in range(12)]
    expected = [al.measure(metric, A, B[p]) for p in perms]
    np.testing.assert_allclose(null, expected, atol=1e-5)  # CKA/RSA nulls accumulate in float32


@pytest.mark.parametrize("metric", al.METRICS)
def test_permutation_null_is_deterministic_per_seed(metric: str) -> None:
    A, B = related(np.random.default_rng(0), 40)
    first = al.permutation_null(metric, A, B, n_perm=20, seed=1)
    np.testing.assert_array_equal(first, al.permutation_null(metric, A, B, n_perm=20, seed=1))
    assert not np.array_equal(first, al.permutation_null(metric, A, B, n_perm=20, seed=2))
    assert al.p_value(al.measure(metric, A, B), first) == pytest.approx(1 / 21)


@pytest.mark.parametrize(("metric", "level"), [("cka", 0.1), ("mutual_knn", 0.1), ("procrustes_retrieval", 0.2)])
def test_p_values_are_roughly_uniform_under_the_null(metric: str, level: float) -> None:
    rng = np.random.default_rng(0)
    options = {"k": 5} if metric in al.PER_ITEM_METRICS else {}
    ps = []
    for _ in range(100):
        A, B = gaussian(rng, 30, 8), gaussian(rng, 30, 8)
        seed = int(rng.integers(1 << 30))
        null = al.permutation_null(metric, A, B, n_perm=19, seed=seed, **options)
        ps.append(al.p_value(al.measure(metric, A, B, **options), null))
    # with 19 permutations P(p <= level) = level exactly, up to ties (discrete hit counts)
    assert np.mean(np.array(ps) <= level) == pytest.approx(level, abs=0.09)


def test_p_value_and_calibrated_formulas() -> None:
    null = np.array([0.1, 0.2, 0.3, 0.4])
    assert al.p_value(0.3, null) == pytest.approx((1 + 2) / 5)
    assert al.p_value(0.9, null) == pytest.approx(1 / 5)
    assert al.p_value(0.0, null) == pytest.approx(1.0)
    null = np.linspace(0.0, 0.5, 101)  # 95% quantile tau = 0.475
    assert al.calibrated(0.7, null) == pytest.approx((0.7 - 0.475) / (1 - 0.475))
    assert al.calibrated(0.3, null) == 0.0
    assert al.calibrated(1.0, null) == pytest.approx(1.0)
    assert al.calibrated(0.6, null, alpha=0.5, max_value=0.75) == pytest.approx(0.7)


# ----------------------------------------------------------------------------- other statistics
def test_bootstrap_ci_brackets_the_estimate_and_is_seeded() -> None:
    A, B = related(np.random.default_rng(0), 50)
    for metric in ("mutual_knn", "cka"):
        ci = al.bootstrap_ci(metric, A, B, n_boot=40, seed=0)
        assert ci.estimate == pytest.approx(al.measure(metric, A, B))
        assert ci.low <= ci.estimate <= ci.high and ci.high - ci.low > 0
        assert ci == al.bootstrap_ci(metric, A, B, n_boot=40, seed=0)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="n_boot .*must be an integer >= 1"):
            al.bootstrap_ci("cka", A, B, n_boot=bad)
        with pytest.raises(ValueError, match="n_boot must be an integer >= 1"):
            al.paired_comparison("mutual_knn", A, B, B, n_boot=bad)


def test_paired_comparison_detects_the_better_partner() -> None:
    rng = np.random.default_rng(0)
    A, B = related(rng, 80)
    C = gaussian(rng, 80, 40)
    better = al.paired_comparison("mutual_knn", A, B, C, n_boot=200, n_perm=200, seed=0)
    assert better.mean_diff > 0.2 and better.low > 0 and better.p_value < 0.01
    worse = al.paired_comparison("mutual_knn", A, C, B, n_boot=200, n_perm=200, seed=0)
    assert worse.mean_diff == pytest.approx(-better.mean_diff) and worse.p_value > 0.9


def test_spread_over_seeds() -> None:
    s = al.spread_over_seeds([0.70, 0.72, 0.74, 0.76])
    assert (s.mean, s.min, s.max, s.n) == pytest.approx((0.73, 0.70, 0.76, 4))
    assert s.std == pytest.approx(np.std([0.70, 0.72, 0.74, 0.76], ddof=1))
    assert al.spread_over_seeds([0.5]).std == 0.0


def test_compare_all_matches_the_single_pair_functions() -> None:
    rng = np.random.default_rng(0)
    A, B = related(rng, 40)
    spaces = {"action": A, "llm": B, "random": gaussian(rng, 40, 12)}
    records = al.compare_all(spaces, n_perm=30, n_perm_retrieval=10, seed=5)
    assert len(records) == 3 * len(al.METRICS)
    assert {(r["a"], r["b"]) for r in records} == {("action", "llm"), ("action", "random"), ("llm", "random")}
    for r in records:
        n_perm = 10 if r["metric"] == "procrustes_retrieval" else 30
        null = al.permutation_null(r["metric"], spaces[r["a"]], spaces[r["b"]], n_perm, seed=5)
        assert r["score"] == pytest.approx(al.measure(r["metric"], spaces[r["a"]], spaces[r["b"]]))
        assert r["p"] == pytest.approx(al.p_value(r["score"], null))
        assert r["calibrated"] == pytest.approx(al.calibrated(r["score"], null))
    for r in records:  # the related pair beats every permutation under every metric
        if r["b"] == "llm":
            assert r["p"] == pytest.approx(1 / (r["n_perm"] + 1)) and r["calibrated"] > 0


# ----------------------------------------------------------------------------- input errors
def test_unknown_metric_lists_the_valid_names() -> None:
    A = np.zeros((10, 3)) + np.arange(10)[:, None]
    with pytest.raises(
        ValueError,
        match="unknown metric 'knn'.*valid choices: mutual_knn, procrustes_retrieval, procrustes_disparity, cka",
    ):
        al.measure("knn", A, A)
    with pytest.raises(ValueError, match="'cka' has no per-item form.*mutual_knn"):
        al.per_item("cka", A, A)


GOOD = np.random.default_rng(0).standard_normal((10, 3))
WITH_NAN = GOOD.copy()
WITH_NAN[2, 1] = np.nan


@pytest.mark.parametrize(
    ("A", "B", "options", "message"),
    [
        (GOOD, GOOD[:9], {}, r"same number of rows \(items\); got 10 and 9"),
        (GOOD[:, 0], GOOD, {}, r"A must be a 2-D array \(n_items, dim\); got shape \(10,\)"),
        (GOOD, GOOD[:, :, None], {}, "B must be a 2-D array"),
        (GOOD, WITH_NAN, {}, "B contains NaN or infinite values"),
        (np.ones((10, 3)), GOOD, {}, "A has no variance"),
        (GOOD, GOOD, {"k": 10}, r"k must be an integer with 1 <= k < N \(N = 10\); got 10"),
        (GOOD, GOOD, {"k": 0}, r"1 <= k < N"),
        (GOOD, GOOD, {"kk": 3}, r"unknown option\(s\) \['kk'\] for metric 'mutual_knn'"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(A, B, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        al.measure("mutual_knn", A, B, **options)


def test_fold_count_and_other_options_are_validated() -> None:
    rng = np.random.default_rng(0)
    A, B = gaussian(rng, 8, 3), gaussian(rng, 8, 3)
    with pytest.raises(ValueError, match="N >= 2 \\* n_folds"):
        al.measure("procrustes_retrieval", A, B, k=2)
    with pytest.raises(ValueError, match="k must be an integer with 1 <= k < N"):
        al.permutation_null("procrustes_retrieval", A, B, k=8, n_folds=2)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        al.measure("procrustes_disparity", A, B, dim=0)
    with pytest.raises(ValueError, match="same number of rows"):
        al.compare_all({"a": A, "b": gaussian(rng, 9, 3)})


# ----------------------------------------------------------------------------- fast nulls, tables
def test_fast_quad_null_equals_a_slow_reference_loop() -> None:
    """The tiled, threaded CKA / RSA null equals <M_s, P M_t P^T> computed one matrix at a time."""
    rng = np.random.default_rng(0)
    X = [gaussian(rng, 37, d) for d in (5, 12, 30)]
    fam = [_prep_gram(x)["perm"] for x in X]
    P = _perms(37, 40, seed=7)
    fast = _quad_nulls([fam], P)[0]
    for t in range(3):
        for s in range(t):
            slow = [np.sum(fam[s] * fam[t][np.ix_(p, p)]) for p in P]
            scale = np.linalg.norm(fam[s]) * np.linalg.norm(fam[t])  # float32 tiles
            np.testing.assert_allclose(fast[s, t], slow, rtol=0, atol=1e-6 * scale)


def test_fast_retrieval_null_equals_recomputation_with_ties() -> None:
    """Duplicated rows make exact ties; the fast hit count checks them only where they matter."""
    rng = np.random.default_rng(1)
    A, B = gaussian(rng, 40, 6), gaussian(rng, 40, 6)
    B[1], B[7], B[20] = B[0], B[0], B[3]
    null = al.permutation_null("procrustes_retrieval", A, B, n_perm=15, seed=2, k=4)
    folds = al.METRICS_BY_NAME["procrustes_retrieval"].prepared(A)["folds"]
    expected = [al.measure("procrustes_retrieval", A, B[p], k=4) for p in _fold_perms(folds, 40, 15, 2)]
    np.testing.assert_array_equal(null, expected)


def test_compare_all_with_many_spaces_matches_permutation_null() -> None:
    rng = np.random.default_rng(2)
    spaces = {f"s{i}": gaussian(rng, 30, d) for i, d in enumerate((4, 9, 17, 33))}
    recs = al.compare_all(spaces, metrics=("cka", "rsa", "mutual_knn"), n_perm=25, seed=4)
    for r in recs:
        opts = {"k": 15} if r["metric"] == "mutual_knn" else {}
        null = al.permutation_null(r["metric"], spaces[r["a"]], spaces[r["b"]], 25, seed=4, **opts)
        assert r["null_mean"] == pytest.approx(float(null.mean()), abs=1e-6)


def test_chance_levels_and_independent_spaces() -> None:
    assert al.chance("mutual_knn", 101, 10) == pytest.approx(0.1)
    assert al.chance("procrustes_retrieval", 100, 10) == pytest.approx(0.1)
    assert al.chance("cka", 50) == 0.0 and np.isnan(al.chance("procrustes_disparity", 50))
    rng = np.random.default_rng(3)
    spaces = {"a": gaussian(rng, 200, 20), "b": gaussian(rng, 200, 30)}
    curve = al.knn_curve(spaces, "a", (5, 15, 40))
    assert list(curve["k"]) == [5, 15, 40]
    np.testing.assert_allclose(curve["precision"], curve["chance"], atol=0.03)
    assert curve.loc[1, "precision"] == pytest.approx(al.measure("mutual_knn", *spaces.values()))


def test_pair_matrix_headline_layer_curve_and_groups() -> None:
    rng = np.random.default_rng(4)
    A, B = related(rng, 60)
    spaces = {"action": A, "lm": B, "noise": gaussian(rng, 60, 10)}
    m = al.pair_matrix(spaces, "cka")
    assert m.shape == (3, 3) and np.allclose(np.diag(m), 1.0) and np.allclose(m, m.T)
    assert m.loc["action", "lm"] == pytest.approx(al.measure("cka", A, B))
    with pytest.raises(ValueError, match="symmetric metric"):
        al.pair_matrix(spaces, "procrustes_retrieval")
    table = al.headline(
        spaces, "action", metrics=("mutual_knn", "cka"), n_perm=30, n_boot=20, options={"mutual_knn": {"k": 5}}
    )
    assert len(table) == 4 and set(table["model"]) == {"lm", "noise"}
    lm = table[table["model"] == "lm"].set_index("metric")
    assert lm.loc["mutual_knn", "score"] == pytest.approx(al.measure("mutual_knn", A, B, k=5))
    assert np.allclose(lm["p"], 1 / 31) and (lm["low"] <= lm["high"]).all()
    with pytest.raises(ValueError, match="anchor 'x' is not one of the spaces"):
        al.headline(spaces, "x")
    layers = np.stack([gaussian(rng, 60, 8), B[:, :8], A[:, :8]])
    curve = al.layer_curve(A, layers, metrics=("cka",))
    assert list(curve["layer"]) == [0, 1, 2] and curve["score"].iloc[2] > curve["score"].iloc[0]
    with pytest.raises(ValueError, match=r"shape \(n_layers, N, d\)"):
        al.layer_curve(A, A)
    groups = al.within_groups(
        spaces, "action", {"first": np.arange(30), "second": np.arange(30, 60)}, metrics=("cka",), n_perm=10
    )
    assert len(groups) == 4 and set(groups["n"]) == {30}


def test_align_config_profiles() -> None:
    from lva.config import get_config

    fast, full = get_config("fast").align, get_config("full").align
    assert full.n_perm >= 1000 and full.n_boot >= 1000 and fast.n_perm <= full.n_perm
    assert fast.k == full.k == 15 and 15 in fast.ks
    assert get_config("fast", align__n_perm=7).align.n_perm == 7


# ----------------------------------------------------------------------------- compiled kernels
@pytest.mark.parametrize("n", [2, 3, 37, 120])
@pytest.mark.parametrize("size", [1, 50, 8192])
def test_row_tiles_partition_the_upper_triangle(n: int, size: int) -> None:
    tiles = _row_tiles(n, size)
    assert tiles[0, 0] == 0 and tiles[0, 2] == 0
    assert tiles[-1, 1] == n - 1 and tiles[-1, 3] == n * (n - 1) // 2
    np.testing.assert_array_equal(tiles[1:, 0], tiles[:-1, 1])  # rows follow on
    np.testing.assert_array_equal(tiles[1:, 2], tiles[:-1, 3])  # entries follow on
    for i0, i1, e0, e1 in tiles:
        assert e1 - e0 == sum(n - 1 - i for i in range(i0, i1))
        assert e1 - e0 <= size or i1 - i0 == 1  # a single long row may exceed the tile


def test_nuclear_norm_matches_lapack_including_rank_deficient_matrices() -> None:
    rng = np.random.default_rng(0)
    cases = [
        rng.standard_normal((8, 8)),
        rng.standard_normal((17, 17)),
        np.zeros((4, 4)),
        np.array([[-3.0]]),
        np.outer(rng.standard_normal(6), rng.standard_normal(6)),
        rng.standard_normal((8, 8)) * np.logspace(0, -9, 8),
    ]  # condition number 1e9
    for G in cases:
        expected = np.linalg.svd(G, compute_uv=False).sum()
        assert _nuclear_norm(G.copy()) == pytest.approx(expected, rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(
    "metrics", [("cka", "cka_biased", "rsa"), ("mutual_knn",), ("procrustes_retrieval",), ("procrustes_disparity",)]
)
def test_nulls_do_not_depend_on_the_number_of_threads(
    metrics: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each permutation is scored by one thread in a fixed order: 1 and 2 threads agree
    exactly (and so do runs on machines with more cores)."""
    rng = np.random.default_rng(4)
    spaces = {f"s{i}": gaussian(rng, 45, d) for i, d in enumerate((3, 12, 50))}
    monkeypatch.setattr(al.common, "_THREADS", 2)  # two workers even on a one-core machine
    two = al.compare_all(spaces, metrics=metrics, n_perm=40, n_perm_retrieval=8, seed=1)
    monkeypatch.setattr(al.common, "_THREADS", 1)  # the one place the package reads it
    one = al.compare_all(spaces, metrics=metrics, n_perm=40, n_perm_retrieval=8, seed=1)
    assert one == two


def test_retrieval_ties_between_copies_of_the_correct_row_follow_row_order() -> None:
    """Rows 0-2 of B are one vector: whichever copy is correct, the copies at lower positions
    rank ahead of it, so only the first copy is a hit at k = 1."""
    rng = np.random.default_rng(5)
    A = gaussian(rng, 30, 4)
    B = A @ rotation(rng, 4)
    B[1] = B[2] = B[0]
    hits = al.per_item("procrustes_retrieval", A, B, k=1, n_folds=2)
    assert hits[0] == 1.0  # the first copy: nothing ranks ahead of it
    assert hits[1] == 0.0 and hits[2] == 0.0  # row 0 (same cosine, lower position) is ahead


def test_headline_for_takes_its_sizes_from_the_config() -> None:
    from lva.config import get_config

    align = get_config("fast", align__n_perm=9, align__n_perm_retrieval=3, align__n_boot=4, align__k=5).align
    rng = np.random.default_rng(6)
    spaces = {"a": gaussian(rng, 30, 4), "b": gaussian(rng, 30, 6)}
    table = al.headline_for(spaces, "a", align)
    expected = al.headline(
        spaces,
        "a",
        n_perm=9,
        n_perm_retrieval=3,
        n_boot=4,
        seed=align.seed,
        options={"mutual_knn": {"k": 5}, "procrustes_retrieval": {"k": 5}},
    )
    assert table.equals(expected)
    assert dict(zip(table["metric"], table["n_perm"]))["procrustes_retrieval"] == 3
