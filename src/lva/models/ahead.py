"""Converting GGUF decoders ahead: in one background process, while the caller (chapter 5's
embeddings, or the book runner before chapter 5) does other work. The lock of
:func:`lva.models.convert_gguf` keeps a model from being converted twice at once.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

from .registry import get_spec
from .weights import converted_dir, converted_problem


#: GGUF models whose float32 weights take at most this many bytes are converted ahead
#: (:func:`converting_ahead`): the fast profile's two (1.1 and 2.0 GB; the process converting one
#: peaks at about 2.3 and 3.7 GB). Qwen2.5-Coder-1.5B (6.2 GB, 9.2 GB at its peak) converts in the
#: process that needs it, once that process holds no other model, so that no run passes 12 GB.
AHEAD_BYTES = 2_500_000_000


def _lower_priority(nice: int) -> None:
    """Run with niceness ``nice`` (in a child about to start). Linux schedules each session's
    autogroup as a whole, so a nice process beside a busy notebook kernel (another session) would
    still get half the CPU: the child gets a session of its own and that autogroup gets ``nice``
    too (measured: a nice-19 CPU burner beside two busy ones got 0.3 s of 8 s this way)."""
    os.nice(nice)
    with contextlib.suppress(OSError):  # no autogroups here (not Linux, or the scheduler lacks them)
        with open("/proc/self/autogroup", "w") as handle:
            handle.write(str(nice))


@contextlib.contextmanager
def converting_ahead(names: Sequence[str], nice: int = 0) -> Iterator[list[str]]:
    """While the block runs, convert the GGUF models of ``names`` that are missing (in that order,
    at most :data:`AHEAD_BYTES` of weights each) in one background process (``python -m
    lva.models convert``, one thread, its output discarded); yields their names. A conversion is
    single-threaded, so the next model's conversion overlaps this process's forward passes with
    the previous one. A model the block needs while it is being converted waits for it (the
    conversion lock of :func:`convert_gguf`), then loads that copy; one the background process
    failed to convert is converted again where it is needed, raising its error there. On leaving,
    the process is waited for, or stopped if the block raised. Without ``fcntl`` (no conversion
    lock) nothing is converted ahead. ``nice``: the process's niceness (19: it runs only on CPU time
    nothing else wants, as under the book runner, :func:`lva.book.run`)."""
    try:
        import fcntl  # noqa: F401 (the lock that keeps two processes from converting one model at once)
    except ImportError:
        yield []
        return
    todo = [spec.name for spec in map(get_spec, names) if spec.loader == "gguf" and 4 * (spec.parameters or 0) <= AHEAD_BYTES
            and converted_problem(converted_dir(spec), spec) is not None]
    if not todo:
        yield []
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LVA_NO_PROGRESS": "1"}
    worker = subprocess.Popen([sys.executable, "-m", "lva.models", "convert", *todo], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=functools.partial(_lower_priority, nice) if nice else None,
                              start_new_session=bool(nice))  # its own autogroup: see _lower_priority
    try:
        yield todo
    except BaseException:
        worker.terminate()  # its temporary folder is swept by the next conversion
        worker.wait()
        raise
    worker.wait()
