"""How the book's tables name things: tasks as GO-TO, PICK-UP and ESCAPE-FROM, alignment metrics
by their records' labels, headers in words rather than snake_case, shares as percentages with one
decimal and yes/no rather than True/False, so that every chapter writes them the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from .instructions import TASK_NAMES

#: The format of every share shown as a percentage in the book's tables.
PERCENT = "{:.1%}"


def task_name(task: str) -> str:
    """The display name of a task key (``"goto"`` -> ``"GO-TO"``); display names pass through."""
    if task in TASK_NAMES:
        return TASK_NAMES[task]
    if task in TASK_NAMES.values():
        return task
    raise ValueError(f"unknown task {task!r}; choose from {sorted(TASK_NAMES)}")


#: Headers that are abbreviations rather than words joined by ``_``.
_HEADERS = {"mean_diff": "mean difference", "p_value": "p-value", "p": "p-value"}


def header(name: Any) -> Any:
    """A column or index name in words: ``"mean_steps"`` -> ``"mean steps"``, ``"p_value"`` ->
    ``"p-value"`` (non-strings pass)."""
    if not isinstance(name, str):
        return name
    return _HEADERS.get(name, name.replace("_", " "))


def metric_label(metric: str) -> str:
    """The display name of an alignment metric: its record's ``label``
    (:mod:`lva.alignment.metrics`), else its name in words; display names pass through."""
    from .alignment.registry import METRICS_BY_NAME

    if metric in METRICS_BY_NAME:
        return METRICS_BY_NAME[metric].label or header(metric)
    if metric in {m.label or header(m.name) for m in METRICS_BY_NAME.values()}:
        return metric
    raise ValueError(f"unknown metric {metric!r}; choose from {sorted(METRICS_BY_NAME)}")


#: Columns and index levels whose values are keys with a display name.
_VALUES = {"task": task_name, "metric": metric_label}


def _relabel(index: pd.Index, words: bool) -> pd.Index:
    """``index`` with its ``task`` and ``metric`` levels in display names, its level names in
    words, and (``words``: a header row) its other values in words too."""
    names = list(index.names)

    def level(values: pd.Index, name: Any) -> pd.Index:
        if name in _VALUES:
            return values.map(_VALUES[name])
        return values.map(header) if words else values

    if isinstance(index, pd.MultiIndex):
        index = index.set_levels([level(v, n) for v, n in zip(index.levels, names)])
    else:
        index = level(index, names[0])
    return index.set_names([header(n) for n in names])


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with headers in words, task and metric keys (in a ``task`` or ``metric``
    column, or an index or header level of that name) replaced by their display names, and
    booleans written as yes/no."""
    out = df.copy()
    for col, name in _VALUES.items():
        if col in out.columns:
            out[col] = out[col].map(name)
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "yes", False: "no"})
    out.index = _relabel(out.index, words=False)
    out.columns = _relabel(out.columns, words=True)
    return out


def styled(
    df: pd.DataFrame, percent: Sequence[Any] = (), decimals: Mapping[Any, int] | None = None, hide_index: bool = False
) -> Any:
    """:func:`readable` ``df`` as a pandas Styler: the ``percent`` columns as :data:`PERCENT`, the
    ``decimals`` columns (name -> digits) as fixed-point numbers. Names are the original headers."""
    table = readable(df)
    shown = dict(zip(df.columns, table.columns))
    wanted = [*percent, *(decimals or {})]
    missing = [c for c in wanted if c not in shown]
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(df.columns)}")
    formats: dict[Any, Any] = {shown[c]: PERCENT for c in percent}
    formats.update({shown[c]: f"{{:.{d}f}}" for c, d in (decimals or {}).items()})
    style = table.style.format(formats, na_rep="")
    return style.hide(axis="index") if hide_index else style


def config_table(cfg: Any, section: str) -> pd.DataFrame:
    """One config section as a table: each setting (its name as ``get_config`` takes it) and its
    value, with yes/no for flags and comma-separated tuples."""
    values = cfg.to_dict()
    if section not in values or not isinstance(values[section], dict):
        sections = sorted(k for k, v in values.items() if isinstance(v, dict))
        raise ValueError(f"unknown config section {section!r}; choose from {sections}")

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, (list, tuple)):
            return ", ".join(text(v) for v in value) or "(none)"
        return str(value)

    table = pd.DataFrame({"value": {key: text(v) for key, v in values[section].items()}})
    table.index.name = f"{section} setting"
    return table
