"""Robustness analysis: cross-validated layer choice, per-item nulls, neighbour anatomy,
specification curve and seed spread (lva.robustness)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lva import alignment as al
from lva import robustness as R
from lva.instructions import all_instructions

INS = all_instructions()
N = len(INS)


def _meaningful(seed: int, d: int = 12, noise: float = 0.3) -> np.ndarray:
    """Vectors that encode each instruction's meaning (synonyms close), plus noise."""
    rng = np.random.default_rng(seed)
    codes = {m: rng.standard_normal(d) for m in sorted({i.meaning for i in INS})}
    return np.array([codes[i.meaning] for i in INS]) + noise * rng.standard_normal((N, d))


def test_meaning_halves_keep_synonyms_together_and_cover_everything():
    h0, h1 = R.meaning_halves(seed=3)
    assert len(np.intersect1d(h0, h1)) == 0 and len(h0) + len(h1) == N
    m0, m1 = {INS[i].meaning for i in h0}, {INS[i].meaning for i in h1}
    assert not (m0 & m1) and abs(len(m0) - len(m1)) <= 1
    assert [a.tolist() for a in R.meaning_halves(seed=3)] == [h0.tolist(), h1.tolist()]
    assert R.meaning_halves(seed=4)[0].tolist() != h0.tolist()


def test_normalise_centres_or_standardises_columns():
    X = np.random.default_rng(0).standard_normal((50, 4)) * [1, 10, 100, 0] + 5
    c, z = R.normalise(X, "centred"), R.normalise(X, "z-scored")
    np.testing.assert_allclose(c.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(0)[:3], 1) and np.testing.assert_array_equal(z[:, 3], 0)
    with pytest.raises(ValueError, match="valid: centred, z-scored"):
        R.normalise(X, "whitened")


@pytest.mark.parametrize("metric", ["mutual_knn", "procrustes_retrieval"])
def test_item_null_rows_average_to_the_permutation_null(metric):
    A, B = _meaningful(0), _meaningful(0, noise=1.0)[:, :8]
    items = al.permutation_null_items(metric, A, B, n_perm=20, seed=5, k=15)
    assert items.shape == (20, N)
    np.testing.assert_allclose(items.mean(1), al.permutation_null(metric, A, B, n_perm=20, seed=5, k=15), atol=1e-12)
    with pytest.raises(ValueError, match="per-item"):
        al.permutation_null_items("cka", A, B, 5)


def test_cv_layer_choice_never_reads_its_scoring_half():
    rng = np.random.default_rng(1)
    A = _meaningful(0)
    layers = np.stack([rng.standard_normal((N, 12)), _meaningful(0, noise=0.8), _meaningful(0, noise=0.2)])
    halves = R.meaning_halves(seed=0)
    for metric in ("mutual_knn", "rsa"):
        chosen = R.choose_layer(metric, A, layers, halves[0])
        assert chosen == 2  # the least noisy copy of A's structure
        # wreck every layer on the other half: the choice made on halves[0] cannot change
        wrecked = layers.copy()
        wrecked[:, halves[1]] = rng.standard_normal(wrecked[:, halves[1]].shape) * 50
        wrecked[0, halves[1]] = A[halves[1], :12]  # and make layer 0 perfect there
        assert R.choose_layer(metric, A, wrecked, halves[0]) == chosen
    cv = R.cv_layer("mutual_knn", A, layers, halves)
    assert cv.layers == (2, 2)
    constant = np.concatenate([np.ones((1, N, 12)), layers])  # a layer without variance is skipped, not fatal
    assert R.cv_layer("mutual_knn", A, constant, halves).layers == (3, 3)
    assert np.isnan(R.layer_scores("mutual_knn", A, constant)[0])
    np.testing.assert_allclose(cv.score, al.measure("mutual_knn", A, layers[2]), atol=1e-12)  # same layer: full score


def test_cv_layer_is_not_fooled_by_noise_while_the_post_hoc_maximum_is():
    """On layers of pure noise, the maximum over layers is biased above chance; the
    cross-validated choice is not (averaged over several noise draws)."""
    rng = np.random.default_rng(2)
    A = _meaningful(0)
    post_hoc, cross = [], []
    halves = R.meaning_halves(seed=0)
    for _ in range(10):
        layers = rng.standard_normal((8, N, 10))
        post_hoc.append(max(al.measure("mutual_knn", A, x) for x in layers))
        cross.append(R.cv_layer("mutual_knn", A, layers, halves).score)
    chance = al.chance("mutual_knn", N, 15)
    assert np.mean(post_hoc) > chance + 0.003  # the maximum of 8 noisy scores: biased upwards
    assert abs(np.mean(cross) - chance) < 0.002


def test_cv_null_is_centred_on_chance_and_the_real_signal_is_significant():
    A = _meaningful(0)
    layers = np.stack([_meaningful(7), _meaningful(0, noise=0.5)])
    halves = R.meaning_halves(seed=0)
    for metric in ("mutual_knn", "cka"):
        choice = R.cv_layer(metric, A, layers, halves)
        null = R.cv_null(metric, A, layers, halves, choice, n_perm=50)
        assert null.shape == (50,) and al.p_value(choice.score, null) == pytest.approx(1 / 51)
        assert abs(null.mean() - (al.chance(metric, N, 15) if metric == "mutual_knn" else 0.0)) < 0.02


def test_neighbour_anatomy_reads_what_a_space_organises_by():
    colour_only = np.array(
        [[1.0 if c == i.color else 0.0 for c in ("red", "green", "blue", "purple", "yellow", "grey")] for i in INS]
    ) + 1e-3 * np.random.default_rng(0).standard_normal((N, 6))
    table = R.neighbour_anatomy({"colour": colour_only, "meaning": _meaningful(0, noise=0.05)}, k=15)
    assert list(table.index) == ["colour", "meaning", "chance"] and list(table.columns) == list(R.ATTRIBUTES)
    assert table.loc["colour", "colour"] == 1.0  # every one of the 15 neighbours has its colour (66 per colour)
    assert table.loc["colour", "meaning"] < 0.2
    assert table.loc["meaning", "meaning"] > 0.3  # 5 synonyms of 15 neighbours at most: 1/3
    chance = table.loc["chance"]
    assert chance["colour"] == pytest.approx((N / 6 - 1) / (N - 1))
    assert chance["meaning"] == pytest.approx(5 / (N - 1))  # 6 verb phrases per meaning
    with pytest.raises(ValueError, match="expected one per instruction"):
        R.neighbour_anatomy({"short": colour_only[:10]})


def test_specification_curve_covers_every_combination_and_orders_models():
    A = _meaningful(0)
    models = {
        "good": {
            "last": np.stack([_meaningful(9), _meaningful(0, noise=0.4)]),
            "mean": np.stack([_meaningful(9), _meaningful(0, noise=2.0)]),
        },
        "noise": {"mean": np.random.default_rng(3).standard_normal((2, N, 12))},
    }
    curve = R.specification_curve(A, models, k=15, n_perm=30, n_perm_retrieval=10)
    assert len(curve) == 3 * len(R.NORMALISATIONS) * len(R.SPEC_METRICS) * len(R.LAYER_CHOICES)
    assert set(curve["layer"]) == {"last", "cv"} and set(curve["metric"]) == set(R.SPEC_METRICS)
    good = curve[(curve["model"] == "good") & (curve["pooling"] == "last")]
    noise = curve[curve["model"] == "noise"]
    assert (good["p"] == 1 / (good["n_perm"] + 1)).all()  # the smallest p-value its permutations allow
    assert good["score"].min() > noise["score"].max()
    assert set(curve.loc[curve["metric"] == "procrustes_retrieval", "n_perm"]) == {10}
    assert (noise["p"] > 0.01).mean() > 0.5
    fam = {"good": "decoder", "noise": "encoder"}
    versus = R.decoder_vs_encoder(curve, fam)
    assert (versus["share above the encoder"] == 1.0).all()
    summary = R.spec_summary(curve, fam)
    assert set(summary["model"]) == {"good", "noise"} and (summary["min"] <= summary["max"]).all()
    reach = R.reaching(curve, low=0.5, high=0.6)
    good_knn = reach[(reach["model"] == "good") & (reach["metric"] == "mutual_knn")].iloc[0]
    subset = curve[(curve["model"] == "good") & (curve["metric"] == "mutual_knn")]
    assert good_knn["specifications"] == len(subset) == 8 and good_knn[">= 0.50"] == (subset["score"] >= 0.5).sum()
    assert (
        good_knn["best"] == subset["score"].max()
        and good_knn["in 0.50-0.60"] == subset["score"].between(0.5, 0.6).sum()
    )
    with pytest.raises(ValueError, match="unknown metric 'cka_biased'"):
        R.specification_curve(A, models, metrics=["cka_biased"])


def test_seed_spread_scores_each_space_against_every_other_seed():
    spaces = {"agent-seed0": _meaningful(0), "agent-seed1": _meaningful(0, noise=0.5), "lm": _meaningful(0, noise=1.0)}
    table = R.seed_spread(spaces, ["agent-seed0", "agent-seed1"])
    assert table.loc["lm", "seeds"] == 2 and table.loc["agent-seed0", "seeds"] == 1
    assert table.loc["lm", "min"] <= table.loc["lm", "mean"] <= table.loc["lm", "max"]
    assert table.loc["lm", "agent-seed1"] == pytest.approx(
        al.measure("mutual_knn", spaces["agent-seed1"], spaces["lm"])
    )
    assert pd.isna(table.loc["agent-seed0", "agent-seed0"])
    with pytest.raises(ValueError, match="at least one agent"):
        R.seed_spread(spaces, [])
