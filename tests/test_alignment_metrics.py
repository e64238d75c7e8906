"""The metric registry of lva.alignment: one record per metric, and everything derived from it."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from lva import alignment as al


def keyword_only(f: object) -> set[str]:
    """Names of f's keyword-only parameters (the options it takes)."""
    return {name for name, p in inspect.signature(f).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def test_registry_lists_are_derived_from_the_records() -> None:
    assert al.METRICS == tuple(al.METRICS_BY_NAME)
    for name, m in al.METRICS_BY_NAME.items():
        assert m.name == name
        assert m.description in al.__doc__  # the package's table describes every metric
        assert al.DEFAULT_N_PERM[name] == m.n_perm
        assert (name in al.PER_ITEM_METRICS) == (m.per_item is not None)
        assert (name in al._QUAD) == (m.from_dots is not None)
    # the default; the book always passes lva.config.AlignConfig.n_perm_retrieval instead
    assert al.DEFAULT_N_PERM["procrustes_retrieval"] == 100


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
        expected = [al.measure(metric, A, B, k=5) if metric in al.PER_ITEM_METRICS else al.measure(metric, A, B) for B in Bs]
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
