"""Does the answer survive the analysis choices? Layer choice, neighbour anatomy, specification
curve and seed spread (chapter 6).

A single alignment number rests on choices the paper leaves open: how a language model's tokens
are pooled into one vector, which layer is read, how columns are normalised, which metric is
used, and which trained agent is the anchor. This module scores every combination, so the book
can say which conclusions hold under most choices and which flip (Simonsohn, Simmons & Nelson
2020, "Specification curve analysis").

* :func:`meaning_halves` splits the instructions into two halves of *meanings* (synonyms stay
  together), for choosing a layer on one half and scoring it on the other.
* :func:`cv_layer` chooses a layer by that two-fold cross-validation; the choice never reads the
  half it is scored on (tested), so "best layer" is not chosen on the data it is scored on.
* :func:`neighbour_anatomy` says what a space organises by: the share of each instruction's k
  nearest neighbours with the same task, verb phrase, colour, object type or meaning.
* :func:`specification_curve` scores every pooling x layer choice x normalisation x metric of
  each model against the action space, with permutation p-values.
* :func:`seed_spread` scores each representation against every trained agent seed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lva import alignment as al
from lva import names as N
from lva.instructions import Instruction, all_instructions

#: Metrics of the specification curve, those whose record says ``in_spec_curve`` (a live view of
#: :data:`lva.alignment.SPEC_METRICS`): two neighbourhood metrics (the paper's precision@15 read
#: both ways) and two global ones.
SPEC_METRICS: Sequence[str] = al.SPEC_METRICS
#: Column normalisations of a model's vectors before comparison (the action space is left as is).
NORMALISATIONS: tuple[str, ...] = ("centred", "z-scored")
#: Layer choices: the model's last layer, or a layer chosen by two-fold cross-validation.
LAYER_CHOICES: tuple[str, ...] = ("last", "cv")
#: What an instruction's neighbours can share with it (see :func:`neighbour_anatomy`).
ATTRIBUTES: tuple[str, ...] = ("task", "verb phrase", "colour", "object type", "meaning")


def normalise(X: np.ndarray, how: str) -> np.ndarray:
    """Columns centred (``"centred"``) or centred and scaled to unit variance (``"z-scored"``;
    constant columns stay 0), in float64. z-scoring removes "rogue dimensions" (a few columns of
    huge variance that dominate cosines in language models)."""
    if how not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {how!r}; valid: {', '.join(NORMALISATIONS)}")
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    if how == "z-scored":
        std = X.std(axis=0)
        X = np.divide(X, std, out=np.zeros_like(X), where=std > 1e-12 * max(float(std.max()), 1e-300))
    return X


def _attributes(ins: Instruction) -> dict[str, Any]:
    return {
        "task": ins.task,
        "verb phrase": ins.verb,
        "colour": ins.color,
        "object type": ins.obj_type,
        "meaning": ins.meaning,
    }


def meaning_halves(instructions: Sequence[Instruction] | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint sorted index arrays covering every instruction: the distinct meanings
    (task, colour, type) are shuffled with ``seed`` and split in two, and each instruction goes
    with its meaning, so no synonym pair straddles the halves."""
    instructions = list(instructions or all_instructions())
    meanings = sorted({i.meaning for i in instructions})
    order = np.random.default_rng(seed).permutation(len(meanings))
    first = {meanings[j] for j in order[: len(meanings) // 2]}
    in_first = np.array([i.meaning in first for i in instructions])
    return np.flatnonzero(in_first), np.flatnonzero(~in_first)


# ----------------------------------------------------------------------------- layer choice
@dataclass(frozen=True)
class LayerChoice:
    """A cross-validated layer choice: the score (mean over the two folds, each scored at the
    layer chosen on the other half), the layer chosen for each fold, and the fold scores."""

    score: float
    layers: tuple[int, int]
    fold_scores: tuple[float, float]


def _score_half(metric: str, A: np.ndarray, B: np.ndarray, rows: np.ndarray, k: int) -> float:
    """A score of the items in ``rows``: their mean per-item score in the full spaces (per-item
    metrics: neighbours and Procrustes folds of all N items, so the scale matches the full-data
    score), else the metric on those rows alone."""
    if metric in al.PER_ITEM_METRICS:
        return float(al.per_item(metric, A, B, k=k)[rows].mean())
    return al.measure(metric, A[rows], B[rows])


def choose_layer(
    metric: str, A: np.ndarray, layers: np.ndarray, rows: np.ndarray, norm: str = "centred", k: int = al.DEFAULT_K
) -> int:
    """The layer whose vectors align best with A on ``rows`` only (normalised on those rows):
    nothing outside ``rows`` is read. Ties go to the shallower layer."""
    return int(np.nanargmax(layer_scores(metric, np.asarray(A)[rows], np.asarray(layers)[:, rows], norm, k)))


def layer_scores(
    metric: str, A: np.ndarray, layers: np.ndarray, norm: str = "centred", k: int = al.DEFAULT_K
) -> np.ndarray:
    """The score of every layer against A; NaN for a layer whose rows are all identical (e.g.
    the token embedding under ``prompt`` pooling: every prompt ends with the same token)."""
    out = np.full(len(layers), np.nan)
    varied = [i for i, layer in enumerate(layers) if np.ptp(layer, axis=0).max() > 0]
    out[varied] = al.measure_each(metric, A, [normalise(layers[i], norm) for i in varied], **al.k_options(metric, k))
    return out


def cv_layer(
    metric: str,
    A: np.ndarray,
    layers: np.ndarray,
    halves: tuple[np.ndarray, np.ndarray],
    norm: str = "centred",
    k: int = al.DEFAULT_K,
) -> LayerChoice:
    """Choose a layer on one half of the meanings, score it on the other, swap, and average
    (weighted by the halves' sizes). ``layers``: ``(n_layers, N, d)``."""
    layers = np.asarray(layers)
    chosen, scores = [], []
    for select, score in (halves, halves[::-1]):
        layer = choose_layer(metric, A, layers, select, norm, k)
        chosen.append(layer)
        scores.append(_score_half(metric, np.asarray(A), normalise(layers[layer], norm), score, k))
    sizes = np.array([len(halves[1]), len(halves[0])], dtype=float)
    return LayerChoice(float(np.dot(scores, sizes) / sizes.sum()), (chosen[0], chosen[1]), (scores[0], scores[1]))


def cv_null(
    metric: str,
    A: np.ndarray,
    layers: np.ndarray,
    halves: tuple[np.ndarray, np.ndarray],
    choice: LayerChoice,
    norm: str = "centred",
    k: int = al.DEFAULT_K,
    n_perm: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """Null distribution of :func:`cv_layer`'s score with the chosen layers held fixed: B's rows
    are permuted (the same permutations for both folds) and each fold's half is rescored."""
    layers = np.asarray(layers)
    sizes = np.array([len(halves[1]), len(halves[0])], dtype=float)
    folds, items = [], {}  # items: per-item nulls of each chosen layer, computed once (folds often agree)
    for (_, score), layer in zip((halves, halves[::-1]), choice.layers):
        B = normalise(layers[layer], norm)
        if metric in al.PER_ITEM_METRICS:
            if layer not in items:
                items[layer] = al.permutation_null_items(metric, A, B, n_perm, seed, k=k)
            folds.append(items[layer][:, score].mean(axis=1))
        else:
            folds.append(al.permutation_null(metric, np.asarray(A)[score], B[score], n_perm=n_perm, seed=seed))
    return (folds[0] * sizes[0] + folds[1] * sizes[1]) / sizes.sum()


# ----------------------------------------------------------------------------- neighbour anatomy
def neighbour_anatomy(
    spaces: Mapping[str, np.ndarray], k: int = al.DEFAULT_K, instructions: Sequence[Instruction] | None = None
) -> pd.DataFrame:
    """For each space, the share of each instruction's k nearest neighbours (centred cosine,
    self excluded, ties by row index as in :mod:`lva.alignment`) that share its task, verb
    phrase, colour, object type and meaning (a synonym: same task, colour and type). A last row
    ``chance`` is the share among *all* other instructions: a space blind to that attribute."""
    instructions = list(instructions or all_instructions())
    n = len(instructions)
    same = {}
    for a in ATTRIBUTES:
        values = [_attributes(i)[a] for i in instructions]
        codes = np.array([sorted(set(values)).index(v) for v in values])
        same[a] = codes[:, None] == codes[None, :]
    rows = {}
    for name, X in spaces.items():
        if len(X) != n:
            raise ValueError(f"{name}: {len(X)} rows, expected one per instruction ({n})")
        idx = al.neighbours(np.asarray(X, dtype=np.float64), k)
        rows[name] = {a: float(same[a][np.arange(n)[:, None], idx].mean()) for a in ATTRIBUTES}
    off = ~np.eye(n, dtype=bool)
    rows["chance"] = {a: float(same[a][off].mean()) for a in ATTRIBUTES}
    return pd.DataFrame(rows).T[list(ATTRIBUTES)]


# ----------------------------------------------------------------------------- specification curve
def specification_curve(
    anchor: np.ndarray,
    models: Mapping[str, Mapping[str, np.ndarray]],
    metrics: Sequence[str] = SPEC_METRICS,
    k: int = al.DEFAULT_K,
    n_perm: int = 1000,
    n_perm_retrieval: int | None = None,
    seed: int = 0,
    halves: tuple[np.ndarray, np.ndarray] | None = None,
    progress: Any = None,
) -> pd.DataFrame:
    """Every specification of every model scored against ``anchor`` (the action space).

    ``models`` maps a model name to ``{pooling: (n_layers, N, d)}``. A specification is
    (pooling, layer choice, normalisation, metric); its row holds the score, the layer(s) read,
    the permutation p-value (``n_perm`` permutations; ``n_perm_retrieval``, if given, for a metric
    whose record's ``n_perm_field`` names it: retrieval) and
    the chance level. Layer choice ``last`` reads the last layer on all N items; ``cv`` is
    :func:`cv_layer` (one seeded split of the meanings, ``halves``).
    """
    unknown = [m for m in metrics if m not in SPEC_METRICS]
    if unknown:
        raise ValueError(f"unknown metric {unknown[0]!r}; valid: {', '.join(SPEC_METRICS)}")
    halves = halves if halves is not None else meaning_halves(seed=seed)
    anchor = np.asarray(anchor, dtype=np.float64)
    n = len(anchor)
    rows = []
    todo = [(m, p) for m, poolings in models.items() for p in poolings]
    for name, pooling in todo:
        layers = np.asarray(models[name][pooling])
        for norm, metric in itertools.product(NORMALISATIONS, metrics):
            perms = al.n_perm_of(metric, {"n_perm": n_perm, "n_perm_retrieval": n_perm_retrieval or n_perm})
            opts = al.k_options(metric, k)
            for choice in LAYER_CHOICES:
                if choice == "last":
                    score, null = al.measure_and_null(
                        metric, anchor, normalise(layers[-1], norm), n_perm=perms, seed=seed, **opts
                    )
                    read = f"{len(layers) - 1}"
                else:
                    picked = cv_layer(metric, anchor, layers, halves, norm, k)
                    score = picked.score
                    null = cv_null(metric, anchor, layers, halves, picked, norm, k, perms, seed)
                    read = "/".join(str(x) for x in sorted(set(picked.layers)))
                rows.append(
                    {
                        "model": name,
                        "pooling": pooling,
                        "layer": choice,
                        "normalisation": norm,
                        "metric": metric,
                        "score": score,
                        "layers read": read,
                        "depth": float(np.mean([int(x) for x in read.split("/")]) / max(len(layers) - 1, 1)),
                        "p": al.p_value(score, null),
                        "null_mean": float(np.mean(null)),
                        "chance": al.chance(metric, n, k),
                        "n_perm": perms,
                    }
                )
        if progress is not None:
            progress.update(1)
    return pd.DataFrame(rows)


def spec_summary(curve: pd.DataFrame, family: Mapping[str, str]) -> pd.DataFrame:
    """Per model (and per family): the number of specifications, the range and median of the
    score per metric, and the share of specifications with p < 0.05."""
    df = curve.assign(family=curve["model"].map(family))
    out = []
    for (fam, model, metric), g in df.groupby(["family", "model", "metric"], sort=False):
        out.append(
            {
                "family": fam,
                "model": model,
                "metric": metric,
                "specifications": len(g),
                "min": g["score"].min(),
                "median": g["score"].median(),
                "max": g["score"].max(),
                "share p<0.05": float((g["p"] < 0.05).mean()),
            }
        )
    return pd.DataFrame(out)


def decoder_vs_encoder(curve: pd.DataFrame, family: Mapping[str, str]) -> pd.DataFrame:
    """The paper's ordering, specification by specification: for each decoder specification, is
    its score above every encoder's score under the same layer choice, normalisation and metric
    (encoders at each of their poolings)? One row per decoder and metric: the share of wins."""
    df = curve.assign(family=curve["model"].map(family))
    enc = df[df["family"] == N.ENCODER].groupby(["layer", "normalisation", "metric"])["score"].max()
    dec = df[df["family"] == N.DECODER]
    if enc.empty or dec.empty:
        return pd.DataFrame(columns=["model", "metric", "specifications", "share above the encoder"])
    beats = dec["score"].to_numpy() > enc.loc[list(zip(dec["layer"], dec["normalisation"], dec["metric"]))].to_numpy()
    dec = dec.assign(beats=beats)
    return (
        dec.groupby(["model", "metric"], sort=False)["beats"]
        .agg(["size", "mean"])
        .reset_index()
        .rename(columns={"size": "specifications", "mean": "share above the encoder"})
    )


def reaching(
    curve: pd.DataFrame,
    low: float = 0.70,
    high: float = 0.73,
    metrics: Sequence[str] = ("mutual_knn", "procrustes_retrieval"),
) -> pd.DataFrame:
    """Where, if anywhere, the paper's 0.70-0.73 is reached: per model and precision@k metric,
    the number of specifications, how many score at least ``low``, how many fall inside
    [low, high], the best score and the specification that reaches it."""
    rows = []
    for (model, metric), g in curve[curve["metric"].isin(metrics)].groupby(["model", "metric"], sort=False):
        best = g.loc[g["score"].idxmax()]
        rows.append(
            {
                "model": model,
                "metric": metric,
                "specifications": len(g),
                f">= {low:.2f}": int((g["score"] >= low).sum()),
                f"in {low:.2f}-{high:.2f}": int(g["score"].between(low, high).sum()),
                "best": float(best["score"]),
                "best specification": f"{best['pooling']}, {best['layer']} (layer {best['layers read']}), "
                f"{best['normalisation']}",
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- seeds
def seed_spread(
    spaces: Mapping[str, np.ndarray], agents: Sequence[str], metric: str = "mutual_knn", k: int = al.DEFAULT_K
) -> pd.DataFrame:
    """Each representation scored against every trained agent seed (never against itself): one
    row per representation with the score per seed, their mean, min, max and std (ddof=1)."""
    if not agents:
        raise ValueError("seed_spread needs at least one agent")
    opts = al.k_options(metric, k)
    rows = {}
    for name, X in spaces.items():
        scores = {a: al.measure(metric, spaces[a], X, **opts) for a in agents if a != name}
        s = al.spread_over_seeds(list(scores.values()))
        rows[name] = {**scores, "mean": s.mean, "min": s.min, "max": s.max, "std": s.std, "seeds": s.n}
    return pd.DataFrame(rows).T[[*agents, "mean", "min", "max", "std", "seeds"]]


def scale_table(curve: pd.DataFrame, params: Mapping[str, float], pooling_of: Mapping[str, str]) -> pd.DataFrame:
    """Score against parameter count: each model at its registered pooling, centred, for each
    metric and layer choice (for a figure of score vs model size); ``series`` groups the sizes
    of one model family (the name without its size suffix)."""
    sub = curve[(curve["normalisation"] == "centred") & curve["model"].isin(list(params))]
    sub = sub[sub["pooling"] == sub["model"].map(pooling_of)]
    sub = sub.assign(params=sub["model"].map(params), series=[m.rsplit("-", 1)[0] for m in sub["model"]])
    return sub[["model", "series", "params", "metric", "layer", "score", "p"]].reset_index(drop=True)


def layer_summary(
    anchor: np.ndarray,
    models: Mapping[str, Mapping[str, np.ndarray]],
    metric: str = "mutual_knn",
    k: int = al.DEFAULT_K,
    halves: tuple[np.ndarray, np.ndarray] | None = None,
    curve: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per model and pooling (centred): the last layer's score, the cross-validated layer's
    score, and the best layer chosen after the fact on all items (an upper bound, not a result:
    a maximum over noisy scores is biased upwards). ``curve``: a :func:`specification_curve` of
    the same anchor, models, k and halves, whose cross-validated centred rows (the same
    :func:`cv_layer`) are read rather than recomputed."""
    halves = halves if halves is not None else meaning_halves()
    done = (
        {}
        if curve is None
        else {
            (r["model"], r["pooling"]): r
            for r in curve[
                (curve["layer"] == "cv") & (curve["normalisation"] == "centred") & (curve["metric"] == metric)
            ].to_dict("records")
        }
    )
    rows = []
    for name, poolings in models.items():
        for pooling, layers in poolings.items():
            layers = np.asarray(layers)
            scores = layer_scores(metric, anchor, layers, "centred", k)
            if (name, pooling) in done:
                cv_score, chosen = done[name, pooling]["score"], done[name, pooling]["layers read"]
            else:
                cv = cv_layer(metric, anchor, layers, halves, "centred", k)
                cv_score, chosen = cv.score, "/".join(map(str, sorted(set(cv.layers))))
            rows.append(
                {
                    "model": name,
                    "pooling": pooling,
                    "layers": len(layers) - 1,
                    "last layer": scores[-1],
                    "cross-validated layer": cv_score,
                    "layers chosen": chosen,
                    "best layer, after the fact (upper bound)": np.nanmax(scores),
                    "best layer": int(np.nanargmax(scores)),
                }
            )
    return pd.DataFrame(rows)
