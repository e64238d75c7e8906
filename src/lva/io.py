"""Atomic artifact writes: a file is either absent or complete, never half-written.

Each writer goes to a temporary file in the destination folder, is flushed and fsynced, then
renamed over the destination with ``os.replace`` (atomic on POSIX), so an interrupted run never
leaves a file that a later run trusts.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm.std import tqdm


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` atomically on success."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh


def save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write compressed arrays atomically."""
    with atomic_open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file into memory."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save_json(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically (sorted keys, so identical content gives identical bytes)."""
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")
    return Path(path)


def load_json(path: str | Path) -> Any:
    """Read a JSON file."""
    with open(path) as fh:
        return json.load(fh)


def progress(total: int, desc: str, unit: str = "it", enabled: bool = True) -> tqdm:
    """A plain-text progress bar on stderr; off when ``LVA_NO_PROGRESS=1`` (the book runner sets it)."""
    off = not enabled or os.environ.get("LVA_NO_PROGRESS") == "1"
    return tqdm(total=total, desc=desc, unit=unit, disable=off, mininterval=1.0, dynamic_ncols=True)
