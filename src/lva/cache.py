"""The cache: every artifact lives at a path made from what it is built from, says what it holds,
and every load checks it, so the cache never serves a corrupt, truncated or mislabelled file.

One scheme for every artifact (:class:`Artifact`): ``<cache>/<kind>/<stem>-<key><suffix>``, the key
the first 12 hex digits of the sha256 of ``built_from`` (the config sections of a pipeline stage,
the model and texts of an embedding, the hash of every vector a table reads). Beside each artifact
``<file>`` lies ``<file>.manifest.json``: the artifact's size and sha256, that same ``built_from``
and its counts (episodes per task, the array's shape, ...). :func:`write` removes the old
manifest, writes the artifact, then the manifest (both atomically, :mod:`lva.io`), so a run
killed in between leaves an artifact without a manifest, which is stale. :func:`read` checks the
manifest against the file (size, then sha256), against what the caller
expects it to be built from, then loads the file and compares its counts with the manifest and
with what the caller expects. Any mismatch raises :class:`~lva.errors.CacheError` with one line
naming the file and what is wrong; :func:`load_or_build` then rebuilds the artifact (the
pipeline's agents, too slow to retrain unasked, name the command that does instead).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, ParamSpec, TypeVar

from .errors import CacheError
from .io import make_folder, save_json

T = TypeVar("T")
P = ParamSpec("P")

#: Bumped when the manifest's layout changes.
MANIFEST_SCHEMA = 1
SUFFIX = ".manifest.json"


def key_of(built_from: Mapping[str, Any]) -> str:
    """The cache key of what an artifact is built from: 12 hex digits of the sha256 of its JSON."""
    return hashlib.sha256(json.dumps(_plain(built_from), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Artifact:
    """One cached file: its ``kind`` (a folder under ``root``, e.g. ``agent`` or
    ``embeddings/minilm``), its ``name`` and what it is ``built_from``, from which its path is made
    (:func:`key_of`) and against which its manifest is checked."""

    root: Path
    kind: str
    name: str
    built_from: Mapping[str, Any]

    @property
    def path(self) -> Path:
        """``<root>/<kind>/<stem>-<key><suffix>`` (nothing is created); a name without a file
        type (letters after its last dot, as in ``.npz``) takes the key at its end."""
        name = Path(self.name)
        suffix = name.suffix if name.suffix[1:].isalpha() else ""
        stem = self.name[: len(self.name) - len(suffix)]
        return Path(self.root) / self.kind / f"{stem}-{key_of(self.built_from)}{suffix}"


@dataclass(frozen=True)
class Built(Generic[T]):
    """An artifact's value and how it was obtained: read from the cache (``cached``) or built now,
    and the ``seconds`` either took (saving excluded)."""

    value: T
    cached: bool
    seconds: float


class Stage(Generic[P, T]):
    """A pipeline stage: calling it gives its artifact; ``.built(...)``, with the same arguments,
    gives the :class:`Built` record (cached or built now, and in how many seconds)."""

    def __init__(self, built: Callable[P, Built[T]]) -> None:
        self.built = built
        functools.update_wrapper(self, built)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.built(*args, **kwargs).value


def stage(built: Callable[P, Built[T]]) -> Stage[P, T]:
    """Decorate a function returning :class:`Built` into a :class:`Stage`."""
    return Stage(built)


def manifest_path(path: str | Path) -> Path:
    """Where the manifest of ``path`` lives: ``<file>.manifest.json`` beside it."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (hex)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists, paths strings), for comparisons."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _first_difference(got: Any, want: Any, where: str = "") -> str | None:
    """The first place where two JSON values differ, as ``"a.b = 6, expected 6000"``."""
    if isinstance(got, dict) and isinstance(want, dict):
        for key in sorted(set(got) | set(want)):
            sub = f"{where}.{key}" if where else str(key)
            if key not in got or key not in want:
                return f"{sub} {'missing' if key not in got else 'unexpected'}"
            if (diff := _first_difference(got[key], want[key], sub)) is not None:
                return diff
        return None
    return None if got == want else f"{where or 'value'} = {got!r}, expected {want!r}"


def notice(message: str) -> None:
    """One line on stderr (``lva: ...``): what the cache found and what it does about it. While
    the book is built (``LVA_NO_PROGRESS=1``) it goes to the terminal, not onto the page."""
    book = os.environ.get("LVA_NO_PROGRESS") == "1" and sys.__stderr__ is not None
    print(f"lva: {message}", file=sys.__stderr__ if book else sys.stderr, flush=True)


def write(
    artifact: Artifact,
    value: T,
    save: Callable[[T, Path], Any],
    counts: Callable[[T], Mapping[str, Any]],
) -> Path:
    """Save ``value`` to the artifact's path with ``save(value, path)`` (an atomic writer of
    :mod:`lva.io`), then its manifest: size, sha256, ``built_from`` and ``counts(value)``."""
    path, built_from = artifact.path, artifact.built_from
    make_folder(path.parent)  # a CacheError naming the folder if it cannot be created
    manifest_path(path).unlink(missing_ok=True)  # never an old manifest beside a new file
    save(value, path)
    save_json(
        manifest_path(path),
        {
            "schema": MANIFEST_SCHEMA,
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": file_sha256(path),
            "built_from": _plain(built_from),
            "counts": _plain(counts(value)),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return path


def problem(artifact: Artifact) -> str | None:
    """What is wrong with the artifact judged by its manifest (missing, unreadable, another size or
    sha256, built from something else), or ``None`` when it checks out. The content itself is
    checked by :func:`read`."""
    path, built_from = artifact.path, artifact.built_from
    if not path.is_file():
        return "missing"
    mpath = manifest_path(path)
    if not mpath.is_file():
        return f"no manifest ({mpath.name}: written by an older lva, or by a run killed while writing); stale"
    try:
        meta = json.loads(mpath.read_text())
        size, digest, inputs = meta["bytes"], meta["sha256"], meta["built_from"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"its manifest {mpath.name} is unreadable ({type(err).__name__}: {err})"
    if path.stat().st_size != size:
        return f"{path.stat().st_size} bytes where its manifest says {size} (truncated or replaced)"
    if file_sha256(path) != digest:
        return "its content does not match its manifest's sha256 (corrupted or replaced)"
    diff = _first_difference(inputs, _plain(built_from))
    if diff is not None:
        return f"built from other inputs than this cache key's: {diff}"
    return None


def read(
    artifact: Artifact,
    load: Callable[[Path], T],
    counts: Callable[[T], Mapping[str, Any]],
    expect: Mapping[str, Any] | None = None,
) -> T:
    """``load(path)``, after checking the file against its manifest (:func:`problem`), and its
    ``counts`` against the manifest's and against ``expect`` (a subset of the counts). Raises
    :class:`CacheError` (``"<path>: <what is wrong>"``) otherwise."""
    path = artifact.path
    if (what := problem(artifact)) is not None:
        raise CacheError(f"{path}: {what}")
    try:
        value = load(path)
        found = _plain(counts(value))
    except Exception as err:  # noqa: BLE001 - whatever the reader raises, the file is unusable
        raise CacheError(f"{path}: cannot be read ({type(err).__name__}: {err})") from None
    recorded = json.loads(manifest_path(path).read_text()).get("counts", {})
    diff = _first_difference(found, recorded) or _first_difference(
        {k: found.get(k) for k in expect or {}}, _plain(dict(expect or {}))
    )
    if diff is not None:
        raise CacheError(f"{path}: holds {diff}")
    return value


def load_or_build(
    artifact: Artifact,
    load: Callable[[Path], T],
    build: Callable[[], T],
    save: Callable[[T, Path], Any],
    *,
    counts: Callable[[T], Mapping[str, Any]],
    expect: Mapping[str, Any] | None = None,
) -> Built[T]:
    """The verified artifact (:func:`read`) if there is one, else ``build()``, saved with its
    manifest (:func:`write`); an artifact that fails its checks is rebuilt after a one-line
    :func:`notice`. Returns the value with whether it was cached and the seconds it took."""
    start = time.perf_counter()
    if artifact.path.exists():
        try:
            value = read(artifact, load, counts, expect)
            return Built(value, True, time.perf_counter() - start)
        except CacheError as err:
            notice(f"{err}; rebuilding it")
    value = build()
    seconds = time.perf_counter() - start
    write(artifact, value, save, counts)
    return Built(value, False, seconds)
