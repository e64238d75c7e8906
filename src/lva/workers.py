"""Independent jobs in worker processes, each on one torch thread, with one progress bar here.

Why: the agents of chapter 3 are small convolutional networks, which a second thread speeds up
little, while several single-threaded processes sharing the same cores train more agents per
second in total (figures in benchmarks/README.md). Workers are spawned, never forked (torch's
thread pools do not survive a fork); their output goes to a log file, never to this process's
stderr (the book fails on any stderr output), and their progress bars (:func:`lva.io.progress`)
add to one bar shown here. A job's exception is raised here, with the tail of its worker's log.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import ctypes
import ctypes.util
import functools
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import io, patches

#: At most this many worker processes at once (each holds its own copy of the data it trains on).
MAX_WORKERS = 8


def _start(done: Any, total: Any, log_dir: str) -> None:
    """Worker initialiser: one torch thread, output to a log file, progress to the shared counters."""
    log = open(Path(log_dir) / f"worker-{os.getpid()}.log", "w")  # noqa: SIM115 (lives as long as the worker)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    os.environ["OMP_NUM_THREADS"] = "1"  # read when a job first imports torch
    io.report_progress_to(done, total)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where the C library has none (macOS, musl)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def trim_heap() -> None:
    """Give the memory this process has freed back to the system (glibc keeps freed heap pages
    for reuse). The full profile's evaluation rollouts left much memory freed but held in each
    worker, which the next job then added to, raising chapter 3's peak memory."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Torch on one thread inside the block, the thread count restored after it: a network trained
    so is the same bit for bit here, in a worker, beside others or alone (agents, encoders)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _job(function: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """One job in a worker; what it freed goes back before the worker takes the next one."""
    try:
        return function(*args)
    finally:
        trim_heap()


def _log_tail(log_dir: Path, lines: int = 20) -> str:
    """The last lines of every worker log (what a failed job printed)."""
    tails = []
    for log in sorted(log_dir.glob("worker-*.log")):
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
        if text:
            tails.append(f"--- {log.name} ---\n" + "\n".join(text))
    return "\n".join(tails)


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """While workers start: a spawned process re-runs the parent's main *script* (not a ``-m``
    module) unless it is guarded by ``if __name__ == "__main__"``; the jobs are :mod:`lva`
    functions and need nothing from it, so hide its path from multiprocessing."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(getattr(main, "__spec__", None), "name", None):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def run(
    jobs: Sequence[tuple[Callable[..., Any], tuple[Any, ...]]],
    desc: str,
    unit: str = "it",
    show_progress: bool = True,
    processes: int | None = None,
    total: int | None = None,
) -> list[Any]:
    """Run every ``(function, args)`` in single-threaded worker processes, ``processes`` at a
    time (default: all at once, at most :data:`MAX_WORKERS`); ``function`` must be importable (a
    module-level function of :mod:`lva`). Returns their results in order. One progress bar sums
    the workers' :func:`lva.io.progress` bars (out of ``total``, else the sum of their totals). If
    a job fails, the others are stopped and its exception is raised here, noted with what the
    workers printed."""
    if not jobs:
        return []
    ctx = multiprocessing.get_context("spawn")
    done, summed = ctx.Value("q", 0), ctx.Value("q", 0)
    with tempfile.TemporaryDirectory(prefix="lva-workers-") as log_dir:
        pool = futures.ProcessPoolExecutor(
            min(len(jobs), processes or MAX_WORKERS, MAX_WORKERS),
            mp_context=ctx,
            initializer=_start,
            initargs=(done, summed, log_dir),
        )
        submitted: list[futures.Future[Any]] = []
        try:
            with _main_not_rerun():  # the workers start at submit
                submitted = [pool.submit(_job, fn, args) for fn, args in jobs]
            with io.progress(total or 0, desc, unit=unit, enabled=show_progress) as bar:
                pending = set(submitted)
                while pending:
                    finished, pending = futures.wait(pending, timeout=0.5, return_when=futures.FIRST_EXCEPTION)
                    if (bar.total, bar.n) != (total or summed.value, done.value):
                        bar.total, bar.n = total or summed.value, done.value
                        bar.refresh()
                    if any(f.exception() is not None for f in finished):
                        break
            failed = [f for f in submitted if f.done() and f.exception() is not None]
            if failed:
                err = failed[0].exception()
                assert err is not None
                tail = _log_tail(Path(log_dir))
                if tail:
                    err.add_note(f"output of the worker processes:\n{tail}")
                raise err
            return [f.result() for f in submitted]
        finally:
            for process in patches.pool_processes(pool):  # stop the others at once on failure
                if process.is_alive() and any(not f.done() for f in submitted):
                    process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)


def side_by_side(
    function: Callable[..., None],
    jobs: Sequence[tuple[Any, ...]],
    what: str,
    noun: str,
    at_once: int,
    show_progress: bool = True,
) -> None:
    """``function(*job, show_progress=...)`` for every job, each in its own single-threaded worker
    process, ``at_once`` at a time (agents and encoders: small networks that a second thread speeds
    up little); a single job runs in this process (training is on one thread either way, and a
    worker adds its start-up). What building the jobs' shared inputs freed here (the ImageNet
    network's activations) goes back first, which lowers the peak memory of a cold chapter 3."""
    if not jobs:
        return
    trim_heap()
    if len(jobs) == 1:
        function(*jobs[0], show_progress=show_progress)
        return
    at_once = min(len(jobs), at_once)
    run(
        [(function, tuple(job)) for job in jobs],
        f"{what} ({len(jobs)} {noun}, {at_once} at once)",
        unit="batch",
        show_progress=show_progress,
        processes=at_once,
    )
