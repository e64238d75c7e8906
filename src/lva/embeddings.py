"""Cached sentence embeddings of the instructions (chapter 4).

``embed(name, texts)`` returns ``(n, d)`` float32 vectors (``layers="last"`` or a layer index) or
``(n_layers, n, d)`` (``layers="all"``, layer 0 = token embeddings). One forward pass yields every
layer, so each (model, pooling, texts) is computed once and stored with all its layers in
``<cache>/embeddings/<model>/<pooling>-<texts sha12>.npz`` (atomic write); any layer request is a
slice of that file, so the cache key is effectively (model, pooling, layer, instruction-list
hash). A warm call only reads the file. Models are loaded lazily, once per process.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lva import models as M
from lva.config import default_cache_dir
from lva.io import load_npz, save_npz

available = M.available
load = M.load

_LOADED: dict[str, M.Loaded] = {}


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 of the ordered list of strings (12 hex digits)."""
    return hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()[:12]


def cache_path(
    name: str, texts: Sequence[str], pooling: str | None = None, cache_dir: str | Path | None = None
) -> Path:
    """Where the all-layer embeddings of (model, pooling, texts) are cached."""
    spec = M.get_spec(name)
    pooling = pooling or spec.pooling
    # the source (and its pinned hash) is part of the key: a different checkpoint is a different file
    src = hashlib.sha256(f"{spec.source}|{spec.sha256}|{M.MODELS_SCHEMA}".encode()).hexdigest()[:6]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / "embeddings" / spec.name / f"{pooling}-{texts_hash(texts)}-{src}.npz"


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


def _loaded(name: str, path: str | Path | None, device: str | None) -> M.Loaded:
    key = f"{name}|{path}|{device}"
    if key not in _LOADED:
        _LOADED[key] = M.load(name, path=path, device=device)
    return _LOADED[key]


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

    ``pooling``: ``mean`` / ``last`` / ``first`` (default: the model's registered pooling);
    ``layers``: ``"last"`` (the registered layer, normally the last) -> ``(n, d)``, an int ->
    ``(n, d)`` from that hidden state, ``"all"`` -> ``(n_layers, n, d)``. ``path`` loads the
    model from a local folder instead of its registered source (such results are not cached).
    """
    spec = M.get_spec(name)
    if texts is None:
        from lva.instructions import all_instructions

        texts = [i.text for i in all_instructions()]
    texts = list(texts)
    if pooling is not None and pooling not in M.POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; valid: {', '.join(M.POOLINGS)}")
    use_cache = cache and path is None
    file = cache_path(name, texts, pooling, cache_dir)
    if use_cache and file.exists():
        data = load_npz(file)
        return _select(data["embeddings"], layers, spec)
    loaded = _loaded(name, path, device)
    all_layers = M.encode(loaded, texts, pooling=pooling, batch_size=batch_size)
    if use_cache:
        meta = {
            "model": name,
            "source": spec.source,
            "pooling": pooling or spec.pooling,
            "n": len(texts),
            "texts_sha": texts_hash(texts),
        }
        save_npz(file, embeddings=all_layers, meta=np.array(json.dumps(meta, sort_keys=True)))
    return _select(all_layers, layers, spec)


def embed_all(
    models: str | Sequence[str] = "offline", texts: Sequence[str] | None = None, **kwargs: Any
) -> dict[str, np.ndarray]:
    """Embeddings by every model of a set (``"offline"``, ``"paper"`` or a list of names);
    fails at once, naming them, if any model is missing."""
    return {name: embed(name, texts, **kwargs) for name in M.select(models)}


def clear_loaded() -> None:
    """Forget the models loaded in this process (frees memory)."""
    _LOADED.clear()
