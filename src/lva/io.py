"""Atomic artifact writes: a file is either absent or complete, never half-written.

Each writer goes to a temporary file ``.<name>.<random>.tmp`` in the destination folder, is
flushed and fsynced, then renamed over the destination with ``os.replace`` (atomic on POSIX), so
an interrupted run never leaves a file that a later run trusts. The writer holds an exclusive
lock (``flock``) on its temporary file while it writes; a temporary file nobody holds belongs to a
killed writer (``kill -9``, power loss), and the next write into that folder deletes it
(:func:`sweep_stale`; where there is no ``flock``, e.g. on Windows: when untouched for
:data:`STALE_AFTER_S`). Files
get ordinary permissions (0o644). What an artifact holds, and checking it on load, is
:mod:`lva.cache`'s job.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm.std import tqdm

from .errors import CacheError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

#: Without ``flock``: a temporary file untouched this long (seconds) is stale.
STALE_AFTER_S = 600.0
FILE_MODE = 0o644


_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST)


@contextlib.contextmanager
def _writing_in(folder: Path) -> Iterator[None]:
    """Turn "cannot write here" errors of the block into one clear :class:`CacheError`."""
    try:
        yield
    except OSError as err:
        if err.errno in _UNWRITABLE:
            raise CacheError(
                f"cannot write in {folder} ({err.strerror or err}): make it writable, or point "
                "LVA_CACHE at a writable folder"
            ) from None
        _raise_if_disk_full(err, folder)
        raise


def _raise_if_disk_full(err: BaseException, folder: Path) -> None:
    """One clear :class:`CacheError` for a full disk (an ``OSError`` with ENOSPC, or a writer's
    own error that says so, as safetensors' does), naming the folder and the way out."""
    if getattr(err, "errno", None) == errno.ENOSPC or "No space left on device" in str(err):
        raise CacheError(
            f"no space left on the disk of {folder}: free some space, or point LVA_CACHE at a larger disk"
        ) from err


def require_space(folder: str | Path, needed: int, what: str) -> None:
    """:class:`CacheError` naming both sizes unless ``folder``'s disk has ``needed`` bytes free,
    checked before a large write (a conversion), so it fails at once, not half-written minutes later."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise CacheError(
            f"{what} needs about {needed / 1e9:.1f} GB free in {folder}, but its disk has "
            f"{free / 1e9:.1f} GB: free some space, or point LVA_CACHE at a larger disk"
        )


def make_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and its parents) if missing; :class:`CacheError` with one clear line if
    it cannot be (read-only, or a file in the way)."""
    folder = Path(folder)
    with _writing_in(folder):
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def _remove_if_abandoned(path: Path) -> bool:
    """Delete a temporary file or folder whose writer is gone (nobody holds its lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        young = time.time() - os.fstat(fd).st_mtime < STALE_AFTER_S
        if fcntl is None:
            if young:
                return False
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a live writer holds it
            except OSError:
                if young:  # no locks on this file system: judge by age
                    return False
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                return False  # a read-only folder: the write that follows says so
        return True
    finally:
        os.close(fd)


#: The temporary files this module makes: ``.<name>.<8 random characters of tempfile>.tmp``.
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def sweep_stale(folder: str | Path) -> list[Path]:
    """Delete the temporary files (``.<name>.<random>.tmp``) that killed writers left in
    ``folder``; returns them."""
    try:
        entries = sorted(Path(folder).iterdir())
    except OSError:
        return []
    return [p for p in entries if _TEMPORARY.match(p.name) and _remove_if_abandoned(p)]


def _locked_temp(folder: Path, name: str, directory: bool) -> tuple[Path, int]:
    """A new temporary file (or folder) ``.<name>.<random>.tmp`` in ``folder`` and an open
    descriptor holding its lock, after sweeping the stale ones."""
    make_folder(folder)
    sweep_stale(folder)
    with _writing_in(folder):
        for _ in range(10):
            if directory:
                path = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".tmp"))
                fd = os.open(path, os.O_RDONLY)
            else:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
                path = Path(tmp)
            if fcntl is not None:
                with contextlib.suppress(OSError):  # no locks on this file system: sweeps judge by age
                    fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:  # not swept between creation and lock
                    return path, fd
            os.close(fd)
    raise CacheError(f"cannot create a temporary file in {folder}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    dest = Path(path)
    tmp_path, fd = _locked_temp(dest.parent, dest.name, directory=False)
    try:
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        except Exception as err:
            _raise_if_disk_full(err, dest.parent)
            raise
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
        os.close(fd)


@contextlib.contextmanager
def temp_folder(parent: str | Path, name: str) -> Iterator[Path]:
    """A locked temporary folder ``.<name>.<random>.tmp`` in ``parent`` (removed afterwards; swept
    by the next write there if its process is killed): where a folder artifact is built before
    it is renamed into place."""
    path, fd = _locked_temp(Path(parent), name, directory=True)
    try:
        try:
            yield path
        except Exception as err:
            _raise_if_disk_full(err, Path(parent))
            raise
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


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


def save_npz_mappable(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write arrays atomically, uncompressed, so that :func:`load_npz` can map them (``mmap=True``):
    for a large table that several processes read at once."""
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def load_npz(path: str | Path, mmap: bool = False) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file: read into memory or, with ``mmap``, each one stored
    uncompressed (:func:`save_npz_mappable`) mapped read-only from the file, so that processes
    reading the same file share its pages instead of each holding a copy."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if not mmap or not _stored(data.zip, k)}
        if mmap:
            arrays.update(
                {k: _map_member(Path(path), data.zip.getinfo(f"{k}.npy")) for k in data.files if k not in arrays}
            )
    return {k: arrays[k] for k in data.files}


def _stored(archive: Any, key: str) -> bool:
    """Whether member ``key`` of an ``.npz`` is stored without compression."""
    import zipfile

    return archive.getinfo(f"{key}.npy").compress_type == zipfile.ZIP_STORED


def _map_member(path: Path, info: Any) -> np.ndarray:
    """A read-only memory map of one uncompressed ``.npy`` member of a zip file."""
    import struct

    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)  # the member's local file header: its name and extra field come next
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        fh.seek(info.header_offset + 30 + name_len + extra_len)
        fmt = np.lib.format
        header = fmt.read_array_header_1_0 if fmt.read_magic(fh) == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = header(fh)
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: {info.filename} holds Python objects; it cannot be mapped")
    if 0 in shape:  # nothing to map
        return np.empty(shape, dtype=dtype, order="F" if fortran else "C")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


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


#: In a worker process of :mod:`lva.workers`: shared counters (steps done, steps in total) that
#: its progress bars add to, so that one bar in the parent shows every worker's progress.
_SHARED_PROGRESS: tuple[Any, Any] | None = None


def report_progress_to(done: Any, total: Any) -> None:
    """Make this process's progress bars silent, adding their counts to shared ``multiprocessing.Value`` s."""
    global _SHARED_PROGRESS
    _SHARED_PROGRESS = (done, total)


class _SharedBar(tqdm):
    """A silent bar whose totals and updates go to the shared counters of :func:`report_progress_to`."""

    def __init__(self, total: int, desc: str) -> None:
        super().__init__(total=total, desc=desc, disable=True)
        self._add(1, total)

    @staticmethod
    def _add(which: int, n: float) -> None:
        assert _SHARED_PROGRESS is not None
        counter = _SHARED_PROGRESS[which]
        with counter.get_lock():
            counter.value += int(n)

    def update(self, n: float | None = 1) -> bool | None:
        self._add(0, 1 if n is None else n)
        return None


def progress(total: int, desc: str, unit: str = "it", enabled: bool = True) -> tqdm:
    """A plain-text progress bar on stderr; off when ``LVA_NO_PROGRESS=1`` (the book runner sets it).
    In a worker process (:mod:`lva.workers`) it is silent and counts towards the parent's bar."""
    if _SHARED_PROGRESS is not None:
        return _SharedBar(total, desc)
    off = not enabled or os.environ.get("LVA_NO_PROGRESS") == "1"
    return tqdm(total=total, desc=desc, unit=unit, disable=off, mininterval=1.0, dynamic_ncols=True)
