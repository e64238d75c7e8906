"""How the book's tables name things: tasks as GO-TO, PICK-UP and ESCAPE-FROM, headers in words
rather than snake_case, shares as percentages with one decimal and yes/no rather than True/False,
so that every chapter writes them the same way."""

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


def header(name: Any) -> Any:
    """A column or index name in words: ``"mean_steps"`` -> ``"mean steps"`` (non-strings pass)."""
    return name.replace("_", " ") if isinstance(name, str) else name


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with headers in words, task keys (in a ``task`` column or index level)
    replaced by their display names, and booleans written as yes/no."""
    out = df.copy()
    if "task" in out.columns:
        out["task"] = out["task"].map(task_name)
    names = list(out.index.names)
    if "task" in names:
        if isinstance(out.index, pd.MultiIndex):
            level = names.index("task")
            out.index = out.index.set_levels(out.index.levels[level].map(task_name), level=level)
        else:
            out.index = out.index.map(task_name)
    for col in out.columns:
        if out[col].dtype == bool:
            out[col] = out[col].map({True: "yes", False: "no"})
    out.columns = [header(c) for c in out.columns]
    out.index.names = [header(n) for n in out.index.names]
    return out


def styled(df: pd.DataFrame, percent: Sequence[str] = (), decimals: Mapping[str, int] | None = None,
           hide_index: bool = False) -> Any:
    """:func:`readable` ``df`` as a pandas Styler: the ``percent`` columns as :data:`PERCENT`, the
    ``decimals`` columns (name -> digits) as fixed-point numbers. Names are the original headers."""
    table = readable(df)
    formats: dict[str, Any] = {header(c): PERCENT for c in percent}
    formats.update({header(c): f"{{:.{d}f}}" for c, d in (decimals or {}).items()})
    missing = sorted(set(formats) - set(table.columns))
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(table.columns)}")
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
