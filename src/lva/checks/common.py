"""What every answer check uses: the registry of checks (:func:`_exercise` adds one under an
exercise id), the hint a wrong answer raises (:class:`_Wrong`), and the readers and comparisons
that turn a student's answer (a number, a dict, a table) into a value or a hint."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd


class _Wrong(Exception):
    """The answer does not match; the message is the hint shown to the student."""


@dataclasses.dataclass(frozen=True)
class _Check:
    run: Callable[..., str | None]  # raises _Wrong with a hint; may return a short remark for the pass line
    expects: str  # what to bind to ``answer``, for the hint on a missing answer


CHECKS: dict[str, _Check] = {}


def _exercise(exercise_id: str, expects: str) -> Callable[[Callable[..., str | None]], Callable[..., str | None]]:
    """Register a check function under an exercise id."""

    def register(fn: Callable[..., str | None]) -> Callable[..., str | None]:
        CHECKS[exercise_id] = _Check(fn, expects)
        return fn

    return register


# ----------------------------------------------------------------------------- reading answers
def _kind(answer: Any) -> str:
    return type(answer).__name__


def _table(answer: Any) -> Any:
    """A pandas Styler (``df.style.format(...)``) stands for its table."""
    return answer.data if type(answer).__name__ == "Styler" else answer


def _number(answer: Any, what: str) -> float:
    """``answer`` as one finite float, or a hint."""
    numeric = isinstance(answer, (int, float, np.number, np.ndarray)) and not isinstance(answer, (bool, np.bool_))
    if not numeric or np.ndim(answer):
        raise _Wrong(f"`answer` should be {what} (a single number); it is a {_kind(answer)}.")
    value = float(answer)
    if not np.isfinite(value):
        raise _Wrong(f"`answer` is {value}: {what} is a finite number.")
    return value


def _mapping(answer: Any, what: str) -> dict[Any, Any]:
    """``answer`` (a dict or a pandas Series) as a dict, or a hint."""
    answer = _table(answer)
    if isinstance(answer, pd.Series):
        return answer.to_dict()
    if isinstance(answer, Mapping):
        return dict(answer)
    raise _Wrong(f"`answer` should be {what}; it is a {_kind(answer)}.")


def _frame(answer: Any, rows: list[Any], columns: list[str], what: str) -> pd.DataFrame:
    """``answer`` (a DataFrame, its Styler or a dict of dicts, either way round) with the given
    rows and columns, as floats; or a hint."""
    answer = _table(answer)
    if isinstance(answer, Mapping):
        try:
            answer = pd.DataFrame({k: dict(v) if isinstance(v, Mapping) else v for k, v in answer.items()})
        except (TypeError, ValueError):
            raise _Wrong(f"`answer` should be {what}; this dict does not make a table.") from None
    if not isinstance(answer, pd.DataFrame):
        raise _Wrong(f"`answer` should be {what}; it is a {_kind(answer)}.")
    if answer.index.has_duplicates or answer.columns.has_duplicates:
        raise _Wrong(f"`answer` should be {what}; it repeats a row or a column name.")
    if set(columns) <= set(answer.index) and not set(columns) <= set(answer.columns):
        answer = answer.T
    missing = [c for c in columns if c not in answer.columns] + [r for r in rows if r not in answer.index]
    if missing:
        raise _Wrong(
            f"`answer` should be {what}; it has no {missing[0]!r} (rows: {list(answer.index)}, "
            f"columns: {list(answer.columns)})."
        )
    try:
        return answer.loc[rows, columns].astype(float)
    except (TypeError, ValueError) as err:
        raise _Wrong(f"`answer` should hold numbers only ({err}).") from None


def _close(
    mine: float, ref: float, what: str, atol: float = 1e-4, percent_hint: bool = False, tip: str = "Recheck your code."
) -> None:
    """Hint (``tip`` says how the reference is computed) unless ``mine`` equals ``ref`` within
    ``atol`` (plus a relative 1e-4)."""
    if np.isclose(mine, ref, rtol=1e-4, atol=atol):
        return
    if percent_hint and ref and np.isclose(mine, 100 * ref, rtol=1e-4, atol=100 * atol):
        raise _Wrong(f"{what}: give a fraction between 0 and 1, not a percentage.")
    raise _Wrong(f"{what} is {mine:.4g}, which does not match the recomputed value. {tip}")


def _same_keys(mine: Mapping[Any, Any], ref: Mapping[Any, Any], what: str) -> None:
    missing, extra = [k for k in ref if k not in mine], [k for k in mine if k not in ref]
    if missing or extra:
        raise _Wrong(
            f"{what}: "
            + "; ".join(
                part
                for part in (f"missing {missing[:3]}" if missing else "", f"unexpected {extra[:3]}" if extra else "")
                if part
            )
            + f" (expected {len(ref)} entries such as {list(ref)[:2]})."
        )


def _close_frame(
    mine: pd.DataFrame,
    ref: pd.DataFrame,
    what: Callable[[Any, str], str],
    atol: float = 1e-4,
    percent_hint: bool = False,
    tip: str = "Recheck your code.",
) -> None:
    """:func:`_close` on every cell of ``ref`` (column by column), ``what(row, column)`` naming it."""
    for column in ref.columns:
        for row in ref.index:
            _close(mine.loc[row, column], ref.loc[row, column], what(row, column), atol, percent_hint, tip)


def _close_mapping(
    mine: Mapping[Any, Any], ref: Mapping[Any, float], what: str, atol: float = 1e-4, tip: str = "Recheck your code."
) -> None:
    _same_keys(mine, ref, what)
    for key, value in ref.items():
        _close(_number(mine[key], f"the value of {key!r}"), value, f"{what}: {key!r}", atol, tip=tip)


def _changed(cfg: Any, section: str, **fields: Any) -> Any:
    """``cfg`` with some fields of one section changed, every other knob kept."""
    return dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **fields)})
