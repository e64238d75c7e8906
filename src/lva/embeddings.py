"""Cached sentence embeddings of the instructions (chapter 5).

``embed(name, texts)`` returns ``(n, d)`` float32 vectors (``layers="last"`` or a layer index) or
``(n_layers, n, d)`` (``layers="all"``, layer 0 = token embeddings). One forward pass yields every
layer, so each (model, pooling, texts) is computed once and stored with all its layers in
``<cache>/embeddings/<model>/<pooling>-<texts sha12>.npz`` (atomic write); any layer request is a
slice of that file, so the cache key is effectively (model, pooling, layer, instruction-list
hash). Each file has a manifest (:mod:`lva.cache`: the model, its source, the pooling, the full
hash of the texts, the array's shape): a file that fails its checks (corrupt, truncated, another
shape than the texts need, NaN) is recomputed after a one-line notice. A warm call only reads
the file. Models are loaded lazily, once per process.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lva import cache as lva_cache
from lva import models as M
from lva.config import default_cache_dir
from lva.errors import CacheError
from lva.io import load_npz, save_npz


#: The language models this process holds, oldest first, their weights together at most
#: :data:`HELD_BYTES`: the fast profile's three (about 3.2 GB in float32) stay loaded between
#: chapter 5's two passes; Qwen2.5-Coder-1.5B of the full profile (about 6 GB) is held alone (all
#: its decoders held together took 11.8 GB). A model asked for again is reloaded in seconds.
_LOADED: dict[str, M.Loaded] = {}
HELD_BYTES = 4_000_000_000


def texts_hash(texts: Sequence[str], digits: int = 12) -> str:
    """sha256 of the ordered list of strings (its first ``digits`` hex digits)."""
    return hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()[:digits]


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


def _built_from(name: str, texts: Sequence[str], pooling: str | None) -> dict[str, Any]:
    """What the cache file of (model, pooling, texts) is built from (its manifest records it)."""
    spec = M.get_spec(name)
    return {"model": spec.name, "source": spec.source, "sha256": spec.sha256, "schema": M.MODELS_SCHEMA,
            "pooling": pooling or spec.pooling, "n": len(texts),
            "texts_sha256": texts_hash(texts, 64)}


def _counts(data: dict[str, np.ndarray]) -> dict[str, Any]:
    x = data["embeddings"]
    return {"shape": list(x.shape), "texts": int(x.shape[1]) if x.ndim == 3 else None,
            "dtype": str(x.dtype), "finite": bool(np.isfinite(x).all())}


def _read(name: str, texts: Sequence[str], pooling: str | None, cache_dir: str | Path | None) -> dict[str, np.ndarray] | None:
    """The verified cache file of (model, pooling, texts) as arrays, or ``None`` when it is
    missing or fails its checks (then after a one-line notice: it is recomputed)."""
    file = cache_path(name, texts, pooling, cache_dir)
    if not file.exists():
        return None
    try:
        return lva_cache.read(file, load_npz, _built_from(name, texts, pooling), _counts,
                          {"texts": len(texts), "finite": True, "dtype": "float32"})
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


def _loaded(name: str, path: str | Path | None, device: str | None) -> tuple[M.Loaded, float]:
    """(the model, seconds spent loading it now: 0.0 when this process had it already)."""
    key = f"{name}|{path}|{device}"
    if key in _LOADED:
        return _LOADED[key], 0.0
    expected = 0 if path is not None else 4 * (M.get_spec(name).parameters or 0)  # float32, as on a CPU; a folder: unknown
    while _LOADED and sum(m.weight_bytes for m in _LOADED.values()) + expected > HELD_BYTES:
        del _LOADED[next(iter(_LOADED))]  # the oldest goes before the next one loads, not after
        gc.collect()
    t0 = time.perf_counter()
    _LOADED[key] = M.load(name, path=path, device=device)
    return _LOADED[key], time.perf_counter() - t0


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
    loaded, load_s = _loaded(name, path, device)
    pooling = pooling or spec.pooling
    # poolings of the same forward pass (mean / last / first) not cached (or not valid) yet come for free
    group = [pooling]
    if use_cache:
        group += [q for q in spec.all_poolings if q != pooling and M.prompt_template(q) == M.prompt_template(pooling)
                  and lva_cache.problem(cache_path(name, texts, q, cache_dir), _built_from(name, texts, q)) is not None]
    t0 = time.perf_counter()
    pooled = M.encode_poolings(loaded, texts, group, batch_size=batch_size)
    embed_s = time.perf_counter() - t0
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
            "threads": _threads(),
            "linear": M.linear_engine(loaded),  # what multiplied its linear layers (lva.models.onednn_linear)
        }
        for q, vectors in pooled.items():
            meta = {**run, "pooling": q}
            lva_cache.write(cache_path(name, texts, q, cache_dir),
                            {"embeddings": vectors, "meta": np.array(json.dumps(meta, sort_keys=True))},
                            lambda arrays, p: save_npz(p, **arrays), _built_from(name, texts, q), _counts)
    all_layers = pooled[pooling]
    return _select(all_layers, layers, spec)


def embed_all(
    models: str | Sequence[str] = "offline", texts: Sequence[str] | None = None, **kwargs: Any
) -> dict[str, np.ndarray]:
    """Embeddings by every model of a set (``"offline"``, ``"paper"`` or a list of names);
    fails at once, naming them, if any model is missing."""
    return {name: embed(name, texts, **kwargs) for name in M.select(models)}


def clear_loaded() -> None:
    """Forget the models loaded in this process (frees their memory unless the caller holds them)."""
    _LOADED.clear()
    gc.collect()


def _threads() -> int:
    import torch

    return int(torch.get_num_threads())


def cache_info(name: str, texts: Sequence[str] | None = None, pooling: str | None = None) -> dict[str, Any]:
    """What the cache file of (model, pooling, texts) records: shape, file size, and the measured
    ``load_s`` / ``embed_s`` of the run that wrote it (``None`` for files written before timing
    was recorded). ``FileNotFoundError`` if it is not cached."""
    texts = _default_texts() if texts is None else list(texts)
    file = cache_path(name, texts, pooling)
    if not file.exists():
        raise FileNotFoundError(f"{name}: no cached embeddings at {file}; call embed({name!r}) first")
    data = lva_cache.read(file, load_npz, _built_from(name, texts, pooling), _counts)
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
        "threads": meta.get("threads"),
        "file_mb": file.stat().st_size / 1e6,
    }


# ------------------------------------------------------------------------------------------------
# Every representation of the instructions, for chapters 5-6
# ------------------------------------------------------------------------------------------------

#: Names of representations that are not registry models.
_AGENT_NAME = re.compile(r"^agent-seed(\d+)$")
UNTRAINED_AGENT = "untrained-agent"
_VISION_NAME = re.compile(r"^vision-seed(\d+)$")
UNTRAINED_VISION = "untrained-vision"


def _default_texts() -> list[str]:
    from lva.instructions import all_instructions

    return [i.text for i in all_instructions()]


def family_of(name: str) -> str:
    """The family of a representation: ``decoder`` / ``encoder`` / ``vision-language`` /
    ``static`` / ``agent`` / ``vision-grounded`` / ``control``.

    ``agent-seed<N>`` (a trained agent's E_L) is ``agent``; ``vision-seed<N>`` (the text tower of
    the vision-grounded encoder trained here, :mod:`lva.grounding`) is ``vision-grounded``;
    ``untrained-agent`` and ``untrained-vision`` (the same networks at their random
    initialisation) and ``semantic-features`` are ``control``; registry models have their
    registered family. Unknown names raise ``ValueError`` listing the valid ones.
    """
    if _AGENT_NAME.match(name):
        return "agent"
    if _VISION_NAME.match(name):
        return "vision-grounded"
    if name in (UNTRAINED_AGENT, UNTRAINED_VISION):
        return "control"
    if name in M.REGISTRY:
        return M.REGISTRY[name].family
    valid = ["agent-seed<N>", UNTRAINED_AGENT, "vision-seed<N>", UNTRAINED_VISION, *M.REGISTRY]
    raise ValueError(f"unknown representation {name!r}; valid: {', '.join(valid)}")


def agent_embeddings(agents: dict[int, Any], untrained: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """E_L of ``texts`` for each trained agent (``agent-seed<N>``) and the untrained one."""
    out = {f"agent-seed{seed}": np.asarray(agent.embed(texts), dtype=np.float32) for seed, agent in agents.items()}
    out[UNTRAINED_AGENT] = np.asarray(untrained.embed(texts), dtype=np.float32)
    return out


def model_names(cfg: Any, models: str | Sequence[str] = "offline") -> list[str]:
    """The language models and controls a build embeds: ``lva.models.select(models)``, where
    ``"offline"`` also includes the profile's ``cfg.extra_models`` (e.g. the optional
    Qwen2.5-Coder-1.5B of the ``full`` profile). A missing one fails at once, naming it."""
    if isinstance(models, str) and models == "offline":
        models = [*M.select("offline"), *[n for n in cfg.extra_models if n not in M.select("offline")]]
    return M.select(models)


def representations(
    cfg: Any, agents: dict[int, Any], models: str | Sequence[str] = "offline", show_progress: bool = True,
    vision: dict[int, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Every representation of every instruction: an ordered dict name -> ``(396, d)`` float32,
    rows in :func:`lva.instructions.all_instructions` order.

    Order: ``agent-seed<N>`` for each trained agent of ``agents`` (seed -> agent, as
    :func:`lva.pipeline.agents` returns them); ``untrained-agent`` (the same
    architecture built by ``build_agent(cfg, agent_seeds[0])``, i.e. the first agent before
    training); with ``vision`` (seed -> encoder, as :func:`lva.pipeline.vision_encoders` returns
    them), ``vision-seed<N>`` for each vision-grounded encoder's text tower and
    ``untrained-vision`` (``lva.grounding.build_encoder(cfg, agent_seeds[0])``, untrained); the
    language models of ``lva.models.select(models)`` at their registered pooling
    and layer (``models``: ``"offline"``, ``"paper"`` or a list of names; a missing one fails at
    once, naming it; ``"offline"`` also includes the profile's ``cfg.extra_models``, e.g. the
    optional Qwen2.5-Coder-1.5B of the ``full`` profile); then every default control of the registry (``random``, ``bag-of-words``,
    ``semantic-features``). Language-model and control vectors come from :func:`embed`'s cache;
    E_L is recomputed from the cached checkpoints (milliseconds), so a warm call takes seconds.
    """
    from lva.agent import build_agent

    texts = _default_texts()
    names = model_names(cfg, models)
    lms = [n for n in names if M.REGISTRY[n].family != "control"]
    controls = [s.name for s in M.REGISTRY.values() if s.family == "control" and s.default]
    controls += [n for n in names if M.REGISTRY[n].family == "control" and n not in controls]
    untrained = build_agent(cfg, cfg.agent_seeds[0])
    out = agent_embeddings(agents, untrained, texts)
    if vision is not None:
        from lva.grounding import build_encoder

        out.update({f"vision-seed{seed}": np.asarray(enc.embed(texts), dtype=np.float32) for seed, enc in vision.items()})
        out[UNTRAINED_VISION] = np.asarray(build_encoder(cfg, cfg.agent_seeds[0]).embed(texts), dtype=np.float32)
    for name in lms + controls:
        out[name] = np.asarray(embed(name, texts), dtype=np.float32)
    for name, x in out.items():
        if x.shape[0] != len(texts) or not np.isfinite(x).all():
            raise RuntimeError(f"{name}: expected ({len(texts)}, d) finite vectors, got {x.shape}")
    return out


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


# ------------------------------------------------------------------------------------------------
# Geometry helpers for the book
# ------------------------------------------------------------------------------------------------


def unit_rows(x: np.ndarray, center: bool = False) -> np.ndarray:
    """Rows scaled to unit length (float64), after subtracting the mean row if ``center``."""
    x = np.asarray(x, dtype=np.float64)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def anisotropy(x: np.ndarray, center: bool = False) -> float:
    """Mean cosine similarity over all pairs of distinct rows (``center``: after subtracting the
    mean row). About 0 for isotropic random vectors; 1 when all rows point the same way; exactly
    ``-1/(n-1)`` for centred rows of equal norm (the mean of a centred cloud is zero)."""
    u = unit_rows(x, center)
    n = len(u)
    if n < 2:
        raise ValueError("anisotropy needs at least two rows")
    total = u.sum(axis=0)
    return float((total @ total - (u * u).sum()) / (n * (n - 1)))


def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of the centred rows: (``(n, k)`` scores, ``(k,)`` explained-variance
    ratios). Signs are fixed so that each component's largest-magnitude loading is positive, so
    the map does not flip between runs or machines."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(x, full_matrices=False)
    vt = vt[:k]
    sign = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    vt = vt * sign[:, None]
    total = (s**2).sum()
    ratio = (s[:k] ** 2) / total if total > 0 else np.zeros(len(vt))
    return x @ vt.T, ratio
