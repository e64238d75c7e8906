"""The metric registry of lva.alignment: one record per metric, and everything derived from it."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator

import numpy as np
import pytest

from lva import alignment as al
from lva.config import AlignConfig, get_config


def keyword_only(f: object) -> set[str]:
    """Names of f's keyword-only parameters (the options it takes)."""
    return {name for name, p in inspect.signature(f).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_registry_lists_are_derived_from_the_records() -> None:
    assert al.METRICS == tuple(al.METRICS_BY_NAME)
    assert al.metric_table() in al.__doc__  # the package's table is generated from the records
    config_fields = {f.name for f in dataclasses.fields(AlignConfig)}
    for name, m in al.METRICS_BY_NAME.items():
        assert m.name == name
        assert m.description in al.__doc__ and m.chance_note in al.__doc__
        assert al.DEFAULT_N_PERM[name] == m.n_perm
        assert (name in al.PER_ITEM_METRICS) == (m.per_item is not None)
        assert (name in al.QUAD_METRICS) == (m.from_dots is not None)
        assert (name in al.SPEC_METRICS) == m.in_spec_curve
        assert al.LABELS.get(name) == (m.label or name if m.charted else None)
        assert m.n_perm_field in config_fields  # the config field that sets its permutations in the book
    # the default; the book always passes lva.config.AlignConfig.n_perm_retrieval instead
    assert al.DEFAULT_N_PERM["procrustes_retrieval"] == 100


def test_the_book_reads_labels_curve_metrics_and_permutations_from_the_records() -> None:
    from lva import robustness as rb
    from lva import viz

    book = ("mutual_knn", "procrustes_retrieval", "cka", "rsa")
    assert rb.SPEC_METRICS == book and tuple(viz.METRIC_LABELS) == book
    assert dict(viz.METRIC_LABELS) == {
        "mutual_knn": "mutual k-NN@k",
        "cka": "debiased CKA",
        "rsa": "RSA (Spearman)",
        "procrustes_retrieval": "retrieval@k (Procrustes)",
    }
    counts = {"n_perm": 11, "n_perm_retrieval": 4}
    assert {m: al.n_perm_of(m, counts) for m in al.METRICS} == {
        m: 4 if m == "procrustes_retrieval" else 11 for m in al.METRICS
    }
    assert al.n_perm_of("procrustes_retrieval", {"n_perm": 11, "n_perm_retrieval": None}) == 100  # the record's


# ----------------------------------------------------------------------------- a toy metric
def _prep_toy(X: np.ndarray) -> dict:
    """Each row's distance from the centroid, standardised."""
    d = np.linalg.norm(X - X.mean(axis=0), axis=1)
    return {"z": (d - d.mean()) / d.std()}


def _score_toy(a: dict, b: dict) -> float:
    """Pearson r of the two spaces' distances from their centroids."""
    return float(np.mean(a["z"] * b["z"]))


def _null_toy(a: dict, b: dict, P: np.ndarray) -> np.ndarray:
    return (b["z"][P] * a["z"]).mean(axis=1)


@pytest.fixture
def toy_metric() -> Iterator[al.Metric]:
    """A metric added with one record, removed again afterwards (the registry as it was)."""
    before = tuple(al.METRICS)
    record = al.register(
        al.Metric(
            "toy_r",
            "Pearson r of the rows' distances from the centroid",
            _prep_toy,
            _score_toy,
            _null_toy,
            chance=lambda n, k: 0.0,
            n_perm=7,
            label="toy r",
            charted=True,
            in_spec_curve=True,
        )
    )
    try:
        yield record
    finally:
        al.unregister(record.name)
        assert tuple(al.METRICS) == before


def test_a_registered_metric_reaches_chapter_6s_tables_charts_and_the_specification_curve(toy_metric) -> None:
    from lva import robustness as rb
    from lva import viz

    align = get_config("fast", align__n_perm=9, align__n_perm_retrieval=3, align__n_boot=4, align__k=5).align
    rng = np.random.default_rng(11)
    A = rng.standard_normal((40, 5))
    spaces = {
        "agent": A,
        "scaled": 2.0 * A + 0.01 * rng.standard_normal((40, 5)),
        "noise": rng.standard_normal((40, 7)),
    }
    # chapter 6's headline table (lva.pipeline.alignment builds it with headline_for), shown as chapter 6 shows it
    headline = al.headline_for(spaces, "agent", align)
    toy = headline[headline["metric"] == "toy_r"].set_index("model")
    assert list(toy.index) == ["scaled", "noise"]
    assert (
        toy.loc["scaled", "score"] == pytest.approx(al.measure("toy_r", A, spaces["scaled"]))
        and toy.loc["scaled", "score"] > 0.9
    )
    assert (toy["n_perm"] == align.n_perm).all()  # its record's n_perm_field: the config's n_perm
    assert (toy["chance"] == 0.0).all() and toy["low"].notna().all()
    wide = headline.pivot(index="model", columns="metric", values="score")[list(al.METRICS)]
    assert [viz.METRIC_LABELS.get(m, m) for m in wide.columns][-1] == "toy r"
    assert list(viz.METRIC_LABELS)[-1] == "toy_r"  # chapter 6's charts
    # the specification curve, computed on small synthetic data
    models = {"scaled": {"last": np.stack([rng.standard_normal((40, 5)), spaces["scaled"]])}}
    halves = (np.arange(0, 40, 2), np.arange(1, 40, 2))
    curve = rb.specification_curve(A, models, k=5, n_perm=9, n_perm_retrieval=3, halves=halves)
    assert list(curve["metric"].unique()) == ["mutual_knn", "procrustes_retrieval", "cka", "rsa", "toy_r"]
    rows = curve[curve["metric"] == "toy_r"]
    assert len(rows) == len(rb.NORMALISATIONS) * len(rb.LAYER_CHOICES) and (rows["n_perm"] == 9).all()
    assert rows["score"].min() > 0.9


def test_register_refuses_a_taken_name_and_unregister_keeps_the_built_in_records() -> None:
    with pytest.raises(ValueError, match="registered already"):
        al.register(al.METRICS_BY_NAME["cka"])
    with pytest.raises(ValueError, match="no registered metric 'cka'"):
        al.unregister("cka")
    assert "cka" in al.METRICS


@pytest.mark.parametrize("name", al.METRICS)
def test_every_default_option_reaches_exactly_one_function(name: str) -> None:
    """Preparation options are prepare's keywords; the rest are those of score, null, per_item."""
    m = al.METRICS_BY_NAME[name]
    prep, pair = m.split({})
    assert set(prep) | set(pair) == set(m.options) and not set(prep) & set(pair)
    assert keyword_only(m.prepare) == set(prep)
    for f in (m.score, m.null, m.per_item):
        if f is not None:
            assert keyword_only(f) == set(pair)
    with pytest.raises(ValueError, match="unknown option"):
        m.split({"no_such_option": 1})


@pytest.mark.parametrize("name", al.METRICS)
def test_defaults_are_the_records_options(name: str) -> None:
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((40, 6)), rng.standard_normal((40, 9))
    options = dict(al.METRICS_BY_NAME[name].options)
    assert al.measure(name, A, B) == al.measure(name, A, B, **options)


def test_chance_levels_come_from_the_records() -> None:
    assert al.chance("mutual_knn", 101) == al.DEFAULT_K / 100
    assert al.chance("procrustes_retrieval", 100, k=5) == 0.05
    assert al.chance("cka", 50) == al.chance("rsa", 50) == 0.0
    assert np.isnan(al.chance("cka_biased", 50)) and np.isnan(al.chance("procrustes_disparity", 50))


def test_measure_each_equals_measure_one_by_one():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((60, 5))
    Bs = [rng.standard_normal((60, d)) for d in (3, 8, 70)]
    for metric in ("mutual_knn", "procrustes_retrieval", "cka", "rsa"):
        expected = [
            al.measure(metric, A, B, k=5) if metric in al.PER_ITEM_METRICS else al.measure(metric, A, B) for B in Bs
        ]
        opts = {"k": 5} if metric in al.PER_ITEM_METRICS else {}
        np.testing.assert_array_equal(al.measure_each(metric, A, Bs, **opts), expected)
    assert al.measure_each("cka", A, []).shape == (0,)


def test_threads_context_sets_the_workers_and_restores_them(monkeypatch):
    seen = []
    real = al.common.ThreadPoolExecutor
    monkeypatch.setattr(al.common, "ThreadPoolExecutor", lambda n: seen.append(n) or real(n))
    before = al.common._THREADS
    rng = np.random.default_rng(0)
    A, Bs = rng.standard_normal((40, 4)), [rng.standard_normal((40, 3))]
    with al.threads(1):
        one = al.measure_each("cka", A, Bs)
    assert seen == [1] and al.common._THREADS == before
    with al.threads(3):
        np.testing.assert_array_equal(al.measure_each("cka", A, Bs), one)
    assert seen == [1, 3]
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        with al.threads(0):
            pass
