"""Answer checks for the chapters' exercises: ``check("6.2", answer, reps=reps)`` in a notebook.

Each check recomputes its reference from the library at run time (results depend on the profile
and the processor, so nothing is stored), prints one line, a pass or a hint, and returns whether
the answer matched; a wrong, missing or malformed answer never raises. An exercise id is
``"C.N"``: chapter C (the ``NN_`` prefix of its notebook), N-th ``{exercise}`` block in it
(:func:`lva.markup.exercise_numbers`).

The package: :mod:`lva.checks.common` (the registry and the readers and comparisons of answers
that every check uses), :mod:`lva.checks.chapters` (one check per exercise, registered on import).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from . import chapters as chapters  # registers every exercise's check
from .common import CHECKS, _Wrong

#: The first characters of the line a check prints: what :func:`notebook_results` reads back.
PASSED, FAILED = "✓ Exercise", "✗ Exercise"
_RESULT = re.compile(rf"^(?P<mark>{PASSED}|{FAILED}) (?P<id>\d+\.\d+):", re.MULTILINE)

__all__ = ["CHECKS", "FAILED", "PASSED", "check", "notebook_results"]


def check(exercise_id: str, answer: Any, **context: Any) -> bool:
    """Compare ``answer`` with the reference of exercise ``exercise_id`` (``"C.N"``), recomputed
    from ``context`` (the chapter's objects the exercise uses: ``cfg``, ``reps``, ...) and the
    library. Prints a pass line or a hint; returns True on a pass. An unknown id is a ValueError,
    missing or unknown context a TypeError: mistakes of the check cell, not of the answer."""
    if exercise_id not in CHECKS:
        raise ValueError(f"unknown exercise {exercise_id!r}; valid exercises: {', '.join(CHECKS)}")
    entry = CHECKS[exercise_id]
    inspect.signature(entry.run).bind(answer, **context)  # TypeError naming a missing or unknown argument
    if answer is None:
        print(f"{FAILED} {exercise_id}: no answer yet. Bind `answer` to {entry.expects}, then run this cell again.")
        return False
    try:
        remark = entry.run(answer, **context)
    except _Wrong as wrong:
        hint = str(wrong)
        print(f"{FAILED} {exercise_id}: not yet. {hint[:1].upper()}{hint[1:]}")
        return False
    except Exception as err:  # an answer of a shape no check foresaw: still a hint, never a traceback
        print(
            f"{FAILED} {exercise_id}: could not compare this answer ({type(err).__name__}: {err}). "
            f"Bind `answer` to {entry.expects}."
        )
        return False
    print(f"{PASSED} {exercise_id}: correct." + (f" {remark}" if remark else ""))
    return True


def notebook_results(path: str | Path) -> dict[str, bool]:
    """``{exercise id: passed}`` for every check line printed in an executed notebook, in order."""
    import nbformat

    found: dict[str, bool] = {}
    for cell in nbformat.read(str(path), as_version=4).cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.get("output_type") == "stream":
                for m in _RESULT.finditer(output.get("text", "")):
                    found[m["id"]] = m["mark"] == PASSED
    return found
