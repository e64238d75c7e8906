"""Chapter 6's slow tables as pipeline stages: the headline table (:func:`alignment`), the
specification curve (:func:`robustness`) and the tables read beside them (:func:`triangle`,
:func:`triangle_pairs`, :func:`layer_choice`), each cached under a hash of ``cfg.align`` and
every vector it reads (:func:`_hashed_table`), so any change to an agent, an embedding or a size
recomputes it. :mod:`lva.pipeline` re-exports them with the stages that build their inputs; each
is a :class:`lva.cache.Stage`: called, it gives the table, ``.built(...)`` the :class:`lva.cache.Built`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import cache, catalogue
from . import names as N
from .cache import Artifact, Built
from .config import Config
from .io import load_json, save_json

if TYPE_CHECKING:
    import pandas as pd


def save_table(table: pd.DataFrame, path: Path) -> None:
    """A DataFrame as JSON (its columns in order, then its rows), written atomically."""
    save_json(path, {"columns": list(table.columns), "rows": table.to_dict(orient="records")})


def load_table(path: Path) -> pd.DataFrame:
    """The DataFrame :func:`save_table` wrote, columns in their original order."""
    import pandas as pd

    stored = load_json(path)
    return pd.DataFrame(stored["rows"], columns=stored["columns"])


def anchor(cfg: Config) -> str:
    """The name of the action space chapter 6 compares everything with: the first agent's E_L."""
    return N.agent_name(cfg.agent_seeds[0])


def _hashed_table(
    cfg: Config,
    folder: str,
    prefix: str,
    key: Mapping[str, Any],
    arrays: Iterable[tuple[str, np.ndarray]],
    build: Callable[[], pd.DataFrame],
) -> Built[pd.DataFrame]:
    """A chapter-6 table, cached as ``<cache>/<folder>/<prefix>-<key>.json`` (with its manifest,
    :mod:`lva.cache`), built from a sha256 of ``cfg.align``, ``key`` and every ``(label, array)``
    read, labels and bytes in order, so any change to a vector or a size recomputes it;
    ``build()`` runs on ``cfg.threads`` alignment threads. Chapter 6's slow tables share it."""
    import hashlib
    import json

    from .alignment import threads

    h = hashlib.sha256(json.dumps({"align": cfg.to_dict()["align"], **key}, sort_keys=True).encode())
    for label, x in arrays:
        h.update(label.encode())
        h.update(np.ascontiguousarray(x))  # the buffer itself: no copy of a large array

    def built() -> pd.DataFrame:
        with threads(cfg.threads):
            return build()

    return cache.load_or_build(
        Artifact(Path(cfg.cache_dir), folder, f"{prefix}.json", {"stage": folder, "inputs_sha256": h.hexdigest()}),
        load_table,
        built,
        save_table,
        counts=lambda table: {"rows": len(table), "columns": list(table.columns)},
    )


@cache.stage
def alignment(cfg: Config, reps: dict[str, np.ndarray]) -> Built[pd.DataFrame]:
    """Stage 6: the headline table, :func:`anchor` against every other representation under every
    metric, with the sizes of ``cfg.align`` (permutations, resamples, k) (:func:`lva.alignment.headline_for`),
    cached as ``<cache>/alignment/headline-<key>.json`` (:func:`_hashed_table`: ``cfg.align``,
    the metrics, and the name and bytes of every representation, in order)."""
    from .alignment import METRICS, headline_for

    name = anchor(cfg)
    return _hashed_table(
        cfg,
        "alignment",
        "headline",
        {"anchor": name, "metrics": list(METRICS)},
        reps.items(),
        lambda: headline_for(reps, name, cfg.align),
    )


def _triangle_table(
    cfg: Config,
    prefix: str,
    spaces: dict[str, np.ndarray],
    family: Mapping[str, str],
    build: Callable[[], pd.DataFrame],
) -> Built[pd.DataFrame]:
    """A table of chapter 6's triangle, cached as ``<cache>/triangle/<prefix>-<key>.json``
    (:func:`_hashed_table`: ``cfg.align``, the metrics, the families, and the name and bytes of
    every space)."""
    from .alignment import METRICS

    return _hashed_table(
        cfg,
        "triangle",
        prefix,
        {"family": {name: family.get(name) for name in spaces}, "metrics": list(METRICS)},
        spaces.items(),
        build,
    )


@cache.stage
def triangle_pairs(cfg: Config, spaces: dict[str, np.ndarray], family: Mapping[str, str]) -> Built[pd.DataFrame]:
    """Every pair of chapter 6's triangle under every metric (:func:`lva.triangle.seed_pairs` with
    ``cfg.align.k``) over ``spaces`` (as :func:`triangle`), cached (:func:`_triangle_table`)."""
    from .triangle import seed_pairs

    return _triangle_table(cfg, "pairs", spaces, family, lambda: seed_pairs(spaces, family, k=cfg.align.k))


@cache.stage
def triangle(cfg: Config, spaces: dict[str, np.ndarray], family: Mapping[str, str]) -> Built[pd.DataFrame]:
    """Chapter 6's triangle headline (:func:`lva.triangle.headline` with the sizes of
    ``cfg.align``) over ``spaces``: the representations plus the referent-only control, roles from
    ``family``; cached (:func:`_triangle_table`). Its action side is read from :func:`alignment`
    over the same spaces less the referent control (the headline table, normally cached by then)
    rather than computed twice."""
    from .triangle import REFERENT, headline

    def build() -> pd.DataFrame:
        base = {name: x for name, x in spaces.items() if name != REFERENT}
        known = {anchor(cfg): alignment(cfg, base)} if anchor(cfg) in base else None
        return headline(spaces, family, cfg.align, known=known)

    return _triangle_table(cfg, "headline", spaces, family, build)


def language_model_poolings(reps: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Every pooling (all layers) of each decoder, encoder and vision-language text tower among
    ``reps``, from chapter 5's cache (:func:`lva.embeddings.all_poolings`)."""
    from .embeddings import all_poolings

    return {n: all_poolings(n) for n in reps if catalogue.family_of(n) in N.LANGUAGE_FAMILIES}


def _curve_inputs(
    cfg: Config, reps: dict[str, np.ndarray], pooled: dict[str, dict[str, np.ndarray]]
) -> list[tuple[str, np.ndarray]]:
    """What the specification curve reads, labelled for :func:`_hashed_table`: the anchor, then
    every pooling of every model."""
    return [("", reps[anchor(cfg)])] + [
        (f"{model}/{pooling}", pooled[model][pooling]) for model in sorted(pooled) for pooling in sorted(pooled[model])
    ]


@cache.stage
def robustness(
    cfg: Config, reps: dict[str, np.ndarray], pooled: dict[str, dict[str, np.ndarray]] | None = None
) -> Built[pd.DataFrame]:
    """Stage 7: the specification curve of every language model against :func:`anchor`
    (:func:`lva.robustness.specification_curve` with the sizes of ``cfg.align``), cached under
    ``<cache>/robustness/curve-<key>.json`` (:func:`_hashed_table`), the key covering
    ``cfg.align`` and the bytes of every vector it reads, so any change to an agent or an
    embedding recomputes it."""
    from .robustness import meaning_halves, specification_curve

    pooled = language_model_poolings(reps) if pooled is None else pooled
    name, align = anchor(cfg), cfg.align
    return _hashed_table(
        cfg,
        "robustness",
        "curve",
        {"anchor": name},
        _curve_inputs(cfg, reps, pooled),
        lambda: specification_curve(
            reps[name],
            pooled,
            k=align.k,
            n_perm=align.n_perm,
            n_perm_retrieval=align.n_perm_retrieval,
            seed=align.seed,
            halves=meaning_halves(seed=align.seed),
        ),
    )


@cache.stage
def layer_choice(
    cfg: Config, reps: dict[str, np.ndarray], pooled: dict[str, dict[str, np.ndarray]] | None = None
) -> Built[pd.DataFrame]:
    """Chapter 6's layer table: :func:`lva.robustness.layer_summary` under mutual k-NN with
    ``cfg.align``'s k and meaning halves, cached as ``<cache>/robustness/layers-<key>.json``
    (:func:`_hashed_table`, the inputs of :func:`robustness`); its cross-validated columns are
    read from :func:`robustness` (the same :func:`lva.robustness.cv_layer`), not recomputed."""
    from .robustness import layer_summary, meaning_halves

    pooled = language_model_poolings(reps) if pooled is None else pooled
    name, align = anchor(cfg), cfg.align
    return _hashed_table(
        cfg,
        "robustness",
        "layers",
        {"anchor": name, "metric": "mutual_knn"},
        _curve_inputs(cfg, reps, pooled),
        lambda: layer_summary(
            reps[name],
            pooled,
            "mutual_knn",
            align.k,
            meaning_halves(seed=align.seed),
            curve=robustness(cfg, reps, pooled),
        ),
    )
