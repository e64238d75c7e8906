"""The registry of alignment metrics: the built-in records of :mod:`lva.alignment.metrics`, then
those added at run time (:func:`register`), and the live views every list and table of metrics
reads (``METRICS``, ``LABELS``, ...), so a metric registered later shows up everywhere; the
look-ups by name (:func:`_record`, :func:`chance`, :func:`n_perm_of`, :func:`k_options`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .metrics import _RECORDS, DEFAULT_K, Metric

_REGISTRY: dict[str, Metric] = {m.name: m for m in _RECORDS}  # the records above, then those registered


class MetricNames(Sequence[str]):
    """The names of the registered metrics whose record passes ``keep``, in registration order: a
    live view, so a metric registered later is in it too (read it as a tuple: ``tuple(view)``)."""

    def __init__(self, keep: Callable[[Metric], bool] = lambda m: True) -> None:
        self._keep = keep

    def _names(self) -> tuple[str, ...]:
        return tuple(name for name, m in _REGISTRY.items() if self._keep(m))

    def __getitem__(self, i: Any) -> Any:
        return self._names()[i]

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __eq__(self, other: object) -> bool:
        return self._names() == (tuple(other) if isinstance(other, (MetricNames, tuple)) else other)

    __hash__ = None  # type: ignore[assignment]  # live, so unhashable

    def __repr__(self) -> str:
        return repr(self._names())


class MetricValues(Mapping[str, Any]):
    """``{name: value(record)}`` of the registered metrics whose record passes ``keep``, in
    registration order: a live view, like :class:`MetricNames`."""

    def __init__(self, value: Callable[[Metric], Any], keep: Callable[[Metric], bool] = lambda m: True) -> None:
        self._value, self._names = value, MetricNames(keep)

    def __getitem__(self, name: str) -> Any:
        if name not in self._names:
            raise KeyError(name)
        return self._value(_REGISTRY[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return repr(dict(self))


METRICS_BY_NAME: Mapping[str, Metric] = MappingProxyType(_REGISTRY)
METRICS: Sequence[str] = MetricNames()
PER_ITEM_METRICS: Sequence[str] = MetricNames(lambda m: m.per_item is not None)
DEFAULT_N_PERM: Mapping[str, int] = MetricValues(lambda m: m.n_perm)
QUAD_METRICS: Sequence[str] = MetricNames(lambda m: m.from_dots is not None)  # scored from products
SPEC_METRICS: Sequence[str] = MetricNames(lambda m: m.in_spec_curve)
LABELS: Mapping[str, str] = MetricValues(lambda m: m.label or m.name, lambda m: m.charted)  # chapter 6's charts


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry, after the others: every table, chart and curve that lists
    the metrics then includes it. ValueError if its name is taken."""
    if metric.name in _REGISTRY:
        raise ValueError(f"a metric named {metric.name!r} is registered already; registered: {', '.join(_REGISTRY)}")
    _REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> Metric:
    """Remove the metric ``name`` added with :func:`register` (the built-in records stay)."""
    if name not in _REGISTRY or any(m.name == name for m in _RECORDS):
        added = [n for n in _REGISTRY if n not in {m.name for m in _RECORDS}]
        raise ValueError(f"no registered metric {name!r} to remove; added ones: {', '.join(added) or 'none'}")
    return _REGISTRY.pop(name)


def n_perm_of(metric: str, counts: Mapping[str, int | None]) -> int:
    """The number of permutations of ``metric``'s null: ``counts[record.n_perm_field]`` (e.g. a
    config's ``{"n_perm": ..., "n_perm_retrieval": ...}``), the record's ``n_perm`` where that is
    absent or None."""
    m = _record(metric)
    given = counts.get(m.n_perm_field)
    return m.n_perm if given is None else int(given)


def metric_table() -> str:
    """The built-in metrics as a plain-text table (name, definition, chance level), for the
    package's docstring."""
    rows = [("metric", "definition", "chance")] + [(m.name, m.description, m.chance_note) for m in _RECORDS]
    w0, w1 = (max(len(r[i]) for r in rows) + 2 for i in (0, 1))
    return "\n".join(f"  {a:<{w0}}{b:<{w1}}{c}".rstrip() for a, b, c in rows)


def k_options(metric: str, k: int) -> dict[str, int]:
    """``{"k": k}`` for a metric whose record takes a neighbourhood size (mutual k-NN, retrieval),
    else ``{}``: the options that set k for any metric."""
    return {"k": k} if "k" in _record(metric).options else {}


def _record(metric: str, per_item: bool = False) -> Metric:
    """The record of ``metric``; ValueError naming the valid choices for an unknown one."""
    valid = PER_ITEM_METRICS if per_item else METRICS
    if metric not in valid:
        why = " has no per-item form" if metric in METRICS else ""
        raise ValueError(f"unknown {'per-item ' * per_item}metric '{metric}'{why}; valid choices: {', '.join(valid)}")
    return METRICS_BY_NAME[metric]


def chance(metric: str, n: int, k: int = DEFAULT_K) -> float:
    """Expected score of unrelated spaces: k/(N-1) for mutual_knn, k/N for held-out retrieval,
    0 for debiased CKA and RSA; NaN where only a permutation null tells (disparity, biased CKA)."""
    m = _record(metric)
    return float("nan") if m.chance is None else m.chance(n, k)
