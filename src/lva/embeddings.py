"""Cached sentence embeddings of the instructions (chapter 5).

``embed(name, texts)`` returns ``(n, d)`` float32 vectors (``layers="last"`` or a layer index) or
``(n_layers, n, d)`` (``layers="all"``, layer 0 = token embeddings). One forward pass yields every
layer, so each (model, pooling, texts) is computed once and stored with all its layers in
``<cache>/embeddings/<model>/<pooling>-<key>.npz`` (atomic write, :class:`lva.cache.Artifact`:
the key covers the model, its source, the pooling and the full hash of the texts); any layer
request is a slice of that file. Each file has a manifest (:mod:`lva.cache`: what it is built
from and the array's shape): a file that fails its checks (corrupt, truncated, another
shape than the texts need, NaN) is recomputed after a one-line notice. A warm call only reads
the file. Models are loaded lazily and held (:mod:`lva.loaded`).

The vector cache only: the names and families of representations are :mod:`lva.names` and
:mod:`lva.catalogue`, building every representation is :mod:`lva.representations`, and
:func:`family_of`, :func:`unit_rows`, :func:`anisotropy` and :func:`pca` (from
:mod:`lva.geometry`) are re-exported here for chapters 5-6.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lva import cache as lva_cache
from lva import loaded as held
from lva import models as M
from lva.catalogue import family_of
from lva.config import default_cache_dir
from lva.errors import CacheError
from lva.geometry import anisotropy, pca, unit_rows
from lva.io import load_npz, save_npz

__all__ = [
    "all_poolings",
    "anisotropy",
    "anisotropy_by_layer",
    "anisotropy_table",
    "cache_info",
    "cache_path",
    "embed",
    "embed_all",
    "family_of",
    "layerwise",
    "pca",
    "poolings_on_disk",
    "texts_hash",
    "unit_rows",
]


def texts_hash(texts: Sequence[str], digits: int = 12) -> str:
    """sha256 of the ordered list of strings (its first ``digits`` hex digits)."""
    return hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()[:digits]


def _artifact(
    name: str, texts: Sequence[str], pooling: str | None = None, cache_dir: str | Path | None = None
) -> lva_cache.Artifact:
    """The cache file of the all-layer embeddings of (model, pooling, texts). The source and its
    pinned hash are part of what it is built from: a different checkpoint is a different file."""
    spec = M.get_spec(name)
    pooling = pooling or spec.pooling
    built_from = {
        "model": spec.name,
        "source": spec.source,
        "sha256": spec.sha256,
        "schema": M.MODELS_SCHEMA,
        "pooling": pooling,
        "n": len(texts),
        "texts_sha256": texts_hash(texts, 64),
    }
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return lva_cache.Artifact(root, f"embeddings/{spec.name}", f"{pooling}.npz", built_from)


def cache_path(
    name: str, texts: Sequence[str], pooling: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """Where the all-layer embeddings of (model, pooling, texts) are cached."""
    return _artifact(name, texts, pooling, cache_dir).path


def _counts(data: dict[str, np.ndarray]) -> dict[str, Any]:
    x = data["embeddings"]
    return {
        "shape": list(x.shape),
        "texts": int(x.shape[1]) if x.ndim == 3 else None,
        "dtype": str(x.dtype),
        "finite": bool(np.isfinite(x).all()),
    }


def _read(
    name: str, texts: Sequence[str], pooling: str | None, cache_dir: str | Path | None
) -> dict[str, np.ndarray] | None:
    """The verified cache file of (model, pooling, texts) as arrays, or ``None`` when it is
    missing or fails its checks (then after a one-line notice: it is recomputed)."""
    artifact = _artifact(name, texts, pooling, cache_dir)
    if not artifact.path.exists():
        return None
    try:
        return lva_cache.read(artifact, load_npz, _counts, {"texts": len(texts), "finite": True, "dtype": "float32"})
    except CacheError as err:
        lva_cache.notice(f"{err}; recomputing it")
        return None


def _select(all_layers: np.ndarray, layers: str | int, spec: M.ModelSpec) -> np.ndarray:
    if layers == "all":
        return all_layers
    if layers == "last":
        return all_layers[-1 if spec.layer is None else spec.layer]
    if isinstance(layers, (int, np.integer)):
        n = all_layers.shape[0]
        if not -n <= int(layers) < n:
            raise ValueError(f"{spec.name} has {n} layers (0 = embeddings); layer {layers} is out of range")
        return all_layers[int(layers)]
    raise ValueError(f"layers must be 'last', 'all' or an int, not {layers!r}")


def embed(
    name: str,
    texts: Sequence[str] | None = None,
    pooling: str | None = None,
    layers: str | int = "last",
    *,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    path: str | Path | None = None,
    device: str | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Sentence embeddings of ``texts`` (default: every instruction) by model ``name``.

    ``pooling``: one of :data:`lva.models.POOLINGS` (default: the model's registered pooling);
    ``layers``: ``"last"`` (the registered layer, normally the last) -> ``(n, d)``, an int ->
    ``(n, d)`` from that hidden state, ``"all"`` -> ``(n_layers, n, d)``. ``path`` loads the
    model from a local folder instead of its registered source (such results are not cached).
    """
    spec = M.get_spec(name)
    if texts is None:
        from lva.instructions import all_instructions

        texts = [i.text for i in all_instructions()]
    texts = M.check_texts(texts)
    if pooling is not None and pooling not in M.POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(M.POOLINGS)}")
    use_cache = cache and path is None
    if use_cache and (data := _read(name, texts, pooling, cache_dir)) is not None:
        return _select(data["embeddings"], layers, spec)
    loaded, load_s = held.load(name, path, device)
    pooling = pooling or spec.pooling
    # poolings of the same forward pass (mean / last / first) not cached (or not valid) yet come for free
    group = [pooling]
    if use_cache:
        group += [
            q
            for q in spec.all_poolings
            if q != pooling
            and M.prompt_template(q) == M.prompt_template(pooling)
            and lva_cache.problem(_artifact(name, texts, q, cache_dir)) is not None
        ]
    gpu = str(loaded.device).startswith("cuda")
    if gpu:  # the peak of this pass (its weights included) goes into the cache file's meta, then the ledger
        import torch

        torch.cuda.reset_peak_memory_stats(loaded.device)
    t0 = time.perf_counter()
    pooled = M.encode_poolings(loaded, texts, group, batch_size=batch_size)
    embed_s = time.perf_counter() - t0
    peak_gpu_gb = round(torch.cuda.max_memory_allocated(loaded.device) / 1e9, 3) if gpu else None
    if use_cache:
        run = {  # the forward pass the poolings of this group share
            "model": name,
            "source": spec.source,
            "n": len(texts),
            "texts_sha": texts_hash(texts),
            # how long its cache files took to make (wall seconds, on the machine that made them)
            "load_s": round(load_s, 3),
            "embed_s": round(embed_s, 3),
            "device": loaded.device,
            "peak_gpu_gb": peak_gpu_gb,  # None on a CPU
            "threads": _threads(),
            "linear": M.linear_engine(loaded),  # what multiplied its linear layers (lva.models.onednn_linear)
        }
        for q, vectors in pooled.items():
            meta = {**run, "pooling": q}
            lva_cache.write(
                _artifact(name, texts, q, cache_dir),
                {"embeddings": vectors, "meta": np.array(json.dumps(meta, sort_keys=True))},
                lambda arrays, p: save_npz(p, **arrays),
                _counts,
            )
    all_layers = pooled[pooling]
    return _select(all_layers, layers, spec)


def embed_all(
    models: str | Sequence[str] = "offline", texts: Sequence[str] | None = None, **kwargs: Any
) -> dict[str, np.ndarray]:
    """Embeddings by every model of a set (``"offline"``, ``"paper"`` or a list of names);
    fails at once, naming them, if any model is missing."""
    return {name: embed(name, texts, **kwargs) for name in M.select(models)}


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def cache_info(name: str, texts: Sequence[str] | None = None, pooling: str | None = None) -> dict[str, Any]:
    """What the cache file of (model, pooling, texts) records: shape, file size, and the measured
    ``load_s`` / ``embed_s`` of the run that wrote it (``None`` for files written before timing
    was recorded) and, on a GPU, its peak memory ``peak_gpu_gb``. ``FileNotFoundError`` if it is not cached."""
    texts = _default_texts() if texts is None else list(texts)
    artifact = _artifact(name, texts, pooling)
    file = artifact.path
    if not file.exists():
        raise FileNotFoundError(f"{name}: no cached embeddings at {file}; call embed({name!r}) first")
    data = lva_cache.read(artifact, load_npz, _counts)
    meta = json.loads(str(data["meta"]))
    n_layers, n, d = data["embeddings"].shape
    return {
        "name": name,
        "layers": n_layers,
        "n": n,
        "dim": d,
        "load_s": meta.get("load_s"),
        "embed_s": meta.get("embed_s"),
        "device": meta.get("device"),
        "peak_gpu_gb": meta.get("peak_gpu_gb"),
        "threads": meta.get("threads"),
        "file_mb": file.stat().st_size / 1e6,
    }


def _default_texts() -> list[str]:
    from lva.instructions import all_instructions

    return [i.text for i in all_instructions()]


def all_poolings(name: str, texts: Sequence[str] | None = None, **kwargs: Any) -> dict[str, np.ndarray]:
    """Every pooling of a registry model (``spec.all_poolings``: the registered one first), each
    with all its layers: pooling -> ``(n_layers, n, d)``. Cached like :func:`embed`; chapter 5
    writes these caches, chapter 6's specification curve reads them."""
    return {p: embed(name, texts, p, layers="all", **kwargs) for p in M.get_spec(name).all_poolings}


def poolings_on_disk(name: str, texts: Sequence[str] | None = None) -> bool:
    """Whether every pooling of a registry model has its cache file for ``texts`` (the files'
    existence only: :func:`embed` checks each one when it reads it, and recomputes a bad one)."""
    texts = _default_texts() if texts is None else list(texts)
    return all(cache_path(name, texts, p).exists() for p in M.get_spec(name).all_poolings)


def layerwise(name: str, texts: Sequence[str] | None = None, **kwargs: Any) -> np.ndarray:
    """Pooled vectors of every layer of a registry model: ``(n_layers + 1, n, d)``, layer 0 = the
    embedding output (static vectors and controls have a single layer: ``(1, n, d)``). A thin
    wrapper of ``embed(name, texts, layers="all")``; ``kwargs`` go to :func:`embed`."""
    if name not in M.REGISTRY:
        family_of(name)  # unknown names: ValueError listing the valid ones
        raise ValueError(f"{name}: layerwise() covers registry models; the agent's E_L has a single layer")
    return embed(name, texts, layers="all", **kwargs)


def anisotropy_table(reps: dict[str, np.ndarray]) -> Any:
    """Chapter 5's anisotropy of every representation: a DataFrame indexed by name with its
    ``family`` and its mean pairwise cosine before (``raw``) and after (``centred``) centring."""
    import pandas as pd

    return pd.DataFrame(
        {
            "family": [family_of(n) for n in reps],
            "raw": [anisotropy(x) for x in reps.values()],
            "centred": [anisotropy(x, center=True) for x in reps.values()],
        },
        index=list(reps),
    )


def anisotropy_by_layer(names: Sequence[str]) -> Any:
    """Raw anisotropy of every layer of each registry model in ``names`` (its cached
    :func:`layerwise` vectors; layer 0 = the token embeddings): columns ``model, layer, raw``."""
    import pandas as pd

    rows = [{"model": n, "layer": k, "raw": anisotropy(x)} for n in names for k, x in enumerate(layerwise(n))]
    return pd.DataFrame(rows, columns=["model", "layer", "raw"])
