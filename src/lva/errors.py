"""The library's error types and the command lines' one-line error handler.

``ValueError`` / ``TypeError`` (and :class:`BadInput`) mean the caller asked for something that
cannot be done: the command lines print one line and exit with 2. :class:`CacheError` and any other
failure mean a build failed: one line, exit code 1. ``LVA_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence

#: Exit codes of ``python -m lva`` and ``python -m lva.models``.
EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


class BadInput(Exception):
    """Mixed into errors that mean "bad input" rather than "a build failed" (exit code 2)."""


class CacheError(RuntimeError):
    """A cached artifact, or the cache folder, cannot be used. The message names the file, what is
    wrong with it and, where it is not rebuilt automatically, the command that rebuilds it."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line (the lines of a multi-line message joined by "; ")."""
    text = "; ".join(part.strip() for part in str(err).splitlines() if part.strip())
    return text or type(err).__name__


def exit_code(err: BaseException) -> int:
    """2 for bad input (``ValueError``, ``TypeError``, :class:`BadInput`), else 1."""
    return EXIT_BAD_INPUT if isinstance(err, (ValueError, TypeError, BadInput)) else EXIT_FAILED


def guarded(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
    """Wrap a command line's ``main``: an error becomes one line on stderr and an exit code
    (:func:`exit_code`), never a traceback, unless ``LVA_DEBUG=1``."""

    @functools.wraps(main)
    def wrapper(argv: Sequence[str] | None = None) -> int:
        try:
            return int(main(argv))
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - every error ends as one line and an exit code
            if os.environ.get("LVA_DEBUG") == "1":
                raise
            known = isinstance(err, (ValueError, TypeError, BadInput, CacheError, OSError))
            kind = "" if known else f"{type(err).__name__}: "
            hint = "" if known else " (LVA_DEBUG=1 shows the traceback)"
            print(f"error: {kind}{one_line(err)}{hint}", file=sys.stderr)
            return exit_code(err)

    return wrapper
