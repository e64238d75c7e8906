"""Scores, permutation nulls, bootstrap intervals and paired tests for one pair of spaces.

Permutation nulls permute the rows of B (for RSA: rows and columns of B's RDM together) with
i.i.d. uniform permutations from ``np.random.default_rng(seed)``; bootstrap draws come from
``np.random.default_rng(seed)`` too.  All randomness is seeded; results are deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from .common import _as_matrix, _as_pair, _blas_single, _check_count, _pool
from .metrics import Metric, Prepared
from .registry import _record


class Interval(NamedTuple):
    """Point estimate with a two-sided percentile bootstrap interval."""

    estimate: float
    low: float
    high: float


class Paired(NamedTuple):
    """alignment(A,B) - alignment(A,C) on per-item scores: mean, bootstrap CI, sign-flip p."""

    mean_diff: float
    low: float
    high: float
    p_value: float
    n: int


class Spread(NamedTuple):
    """One score over agent training seeds (std with ddof=1)."""

    mean: float
    std: float
    min: float
    max: float
    n: int


def _prepared_pair(
    metric: str, A: ArrayLike, B: ArrayLike, options: dict[str, Any], per_item: bool = False
) -> tuple[Metric, Prepared, Prepared, dict]:
    """The record of ``metric``, A and B checked and prepared, and the pair options."""
    m = _record(metric, per_item)
    A, B = _as_pair(A, B)
    prep, pair = m.split(options)
    return m, m.prepare(A, **prep), m.prepare(B, **prep), pair


def measure(metric: str, A: ArrayLike, B: ArrayLike, **options: Any) -> float:
    """Alignment of A and B under ``metric`` (one of METRICS); higher = more aligned.

    Options: mutual_knn(k=15, center=True); procrustes_retrieval(k=15, n_folds=5,
    n_components=32, fold_seed=0, in_sample=False); procrustes_disparity(dim=8);
    rsa(center=True); cka and cka_biased take none (each record's ``options`` holds them).
    ``center`` centres columns before cosines (decoder-LLM embeddings are anisotropic: raw
    cosines are all ~0.98); center=False gives the uncentred Huh et al. variant.
    procrustes_retrieval maps A onto B (not symmetric); n_components=None reduces both to the
    smaller dimension (Li et al.), capped at n_train - 1; in_sample=True fits and evaluates on
    all rows (the pitfall: ~1.0 on noise when d >= N).
    """
    return _finite(metric, _score(metric, A, B, options))


def _finite(metric: str, score: float) -> float:
    """``score``, or ValueError when it is not finite (degenerate inputs)."""
    if not np.isfinite(score):
        raise ValueError(
            f"{metric}: the score is {score} (not finite): the inputs are degenerate for this metric "
            "(e.g. every distance equal)"
        )
    return score


def _score(metric: str, A: ArrayLike, B: ArrayLike, options: dict[str, Any]) -> float:
    """``measure`` without its finiteness check (a bootstrap resample may be degenerate)."""
    m, a, b, pair = _prepared_pair(metric, A, B, options)
    return m.score(a, b, **pair)


def measure_each(metric: str, A: ArrayLike, Bs: Sequence[ArrayLike], **options: Any) -> np.ndarray:
    """``[measure(metric, A, B, **options) for B in Bs]``, with A prepared once and the Bs
    prepared and scored on the worker threads (e.g. every layer of a model against A)."""
    m = _record(metric)
    pairs = [_as_pair(A, B) for B in Bs]
    if not pairs:
        return np.empty(0)
    prep, pair = m.split(options)
    a = m.prepare(pairs[0][0], **prep)
    with _blas_single(), _pool() as pool:
        return np.array(list(pool.map(lambda ab: m.score(a, m.prepare(ab[1], **prep), **pair), pairs)))


def per_item(metric: str, A: ArrayLike, B: ArrayLike, **options: Any) -> np.ndarray:
    """Per-item scores (length N, mean = ``measure``): kNN overlap or held-out retrieval hit."""
    m, a, b, pair = _prepared_pair(metric, A, B, options, per_item=True)
    return m.per_item(a, b, **pair)


def permutation_null(
    metric: str, A: ArrayLike, B: ArrayLike, n_perm: int | None = None, seed: int = 0, **options: Any
) -> np.ndarray:
    """Scores of A against row-permuted copies of B (n_perm: DEFAULT_N_PERM[metric] if None).

    Value j equals ``measure(metric, A, B[p_j])`` (CKA/RSA accumulate in float32; for
    mutual_knn exact ties at the k-th neighbour keep B's tie order).  procrustes_retrieval
    shuffles rows only within each held-out fold: every fold keeps its training *set*, so its
    PCA is unchanged and only W is refit, and the test stays exact (any permutation subgroup
    is valid under exchangeability).  Reusing the maps W fitted on the true pairing would not
    be valid (they encode that pairing), so W is refit for every fold and permutation.
    """
    m, a, b, pair = _prepared_pair(metric, A, B, options)
    n_perm = m.n_perm if n_perm is None else int(n_perm)
    return m.null(a, b, m.permutations(a, np.shape(A)[0], n_perm, seed), **pair)


def measure_and_null(
    metric: str, A: ArrayLike, B: ArrayLike, n_perm: int | None = None, seed: int = 0, **options: Any
) -> tuple[float, np.ndarray]:
    """``(measure(...), permutation_null(...))`` with the same arguments, A and B prepared once
    for both (the specification curve scores and tests every specification)."""
    m, a, b, pair = _prepared_pair(metric, A, B, options)
    n_perm = m.n_perm if n_perm is None else int(n_perm)
    return _finite(metric, m.score(a, b, **pair)), m.null(a, b, m.permutations(a, np.shape(A)[0], n_perm, seed), **pair)


def permutation_null_items(
    metric: str, A: ArrayLike, B: ArrayLike, n_perm: int | None = None, seed: int = 0, **options: Any
) -> np.ndarray:
    """Per-item scores under the permutations of :func:`permutation_null` (same seed, same
    permutations): ``(n_perm, N)``, row j's mean is its value j. The null of a mean over a
    subset of items (e.g. one half of a cross-validation) is a row mean over those columns."""
    m, a, b, pair = _prepared_pair(metric, A, B, options, per_item=True)
    n_perm = m.n_perm if n_perm is None else int(n_perm)
    return m.item_null(a, b, m.permutations(a, np.shape(A)[0], n_perm, seed), **pair)


def p_value(observed: float, null: ArrayLike) -> float:
    """One-sided permutation p-value (1 + #{null >= observed}) / (K + 1); never 0."""
    null = np.asarray(null, dtype=np.float64).ravel()
    if null.size == 0:
        raise ValueError("null must contain at least one value")
    return float((1 + np.count_nonzero(null >= observed)) / (null.size + 1))


def calibrated(observed: float, null: ArrayLike, alpha: float = 0.05, max_value: float = 1.0) -> float:
    """clamp((obs - tau) / (max - tau), 0, 1), tau = (1 - alpha) null quantile (Groeger 2026)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha}")
    tau = float(np.quantile(np.asarray(null, dtype=np.float64), 1.0 - alpha))
    if max_value <= tau:
        return 0.0
    return float(np.clip((observed - tau) / (max_value - tau), 0.0, 1.0))


def _interval(x: np.ndarray, level: float) -> tuple[float, float]:
    """Two-sided percentile interval."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1); got {level}")
    low, high = np.percentile(x, (50 * (1 - level), 50 * (1 + level)))
    return float(low), float(high)


def bootstrap_ci(
    metric: str, A: ArrayLike, B: ArrayLike, n_boot: int = 1000, seed: int = 0, level: float = 0.95, **options: Any
) -> Interval:
    """Percentile bootstrap interval over items (instructions).

    Per-item metrics resample the per-item scores (neighbour sets and fold maps stay those of
    the full data).  The others resample items with replacement and recompute on the *distinct*
    drawn items (~63% of N): duplicated rows would add zero-distance pairs (RSA, kNN ties) and
    off-diagonal self-similarities (CKA) that inflate alignment; the smaller sample widens the
    interval (conservative) instead of biasing the score upwards.
    """
    _record(metric)
    _check_count("n_boot (bootstrap resamples; headline(n_boot=0) skips the intervals)", n_boot)
    A, B = _as_pair(A, B)
    ((est, boots),) = bootstrap_scores([metric], A, [B], n_boot, seed, {metric: options})[metric]
    return Interval(measure(metric, A, B, **options) if est is None else est, *_interval(boots, level))


def bootstrap_scores(
    metrics: Sequence[str],
    A: ArrayLike,
    Bs: Sequence[ArrayLike],
    n_boot: int = 1000,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, list[tuple[float | None, np.ndarray]]]:
    """The resampled scores behind :func:`bootstrap_ci` for A against each of ``Bs`` under each
    metric: ``{metric: [(estimate, scores) per B]}``, estimate the full-data score of a per-item
    metric (None for the others). Every metric and every B is resampled with the same draws
    (``default_rng(seed)``), as separate ``bootstrap_ci`` calls would be, so the work they share is
    done once: the per-item draws, and for each resample of the other metrics A's preparation
    (once for all Bs) and each B's (once for the metrics that prepare alike: both CKA estimators).
    """
    n_boot = _check_count("n_boot (bootstrap resamples; headline(n_boot=0) skips the intervals)", n_boot)
    options = options or {}
    pairs = [_as_pair(A, B) for B in Bs]
    out: dict[str, list[tuple[float | None, np.ndarray]]] = {metric: [] for metric in metrics}
    families: dict[tuple, list[tuple[str, Metric, dict, dict]]] = {}
    for metric in metrics:
        m = _record(metric)
        prep, pair = m.split(options.get(metric, {}))
        if m.per_item is None:
            families.setdefault((m.prepare, repr(sorted(prep.items()))), []).append((metric, m, prep, pair))
        elif pairs:
            n = len(pairs[0][0])
            items = [per_item(metric, a, b, **options.get(metric, {})) for a, b in pairs]
            draws = np.random.default_rng(seed).integers(0, n, (n_boot, n))
            out[metric] = [(float(x.mean()), x[draws].mean(axis=1)) for x in items]
    if not families or not pairs:
        return out
    n = len(pairs[0][0])
    rng = np.random.default_rng(seed)
    resamples = [np.unique(rng.integers(0, n, n)) for _ in range(n_boot)]

    def resample(idx: np.ndarray) -> dict[tuple[str, int], float]:
        """Every (metric, B) score on the distinct items ``idx``; A prepared once per family."""
        scores = {}
        for fam in families.values():
            prepare, prep = fam[0][1].prepare, fam[0][2]
            a = prepare(_as_matrix(pairs[0][0][idx], "A"), **prep)
            for j, (_, B) in enumerate(pairs):
                b = prepare(_as_matrix(B[idx], "B"), **prep)
                for name, m, _, pair in fam:
                    scores[name, j] = m.score(a, b, **pair)
        return scores

    with _blas_single(), _pool() as pool:  # resamples on threads
        done = list(pool.map(resample, resamples))
    for fam in families.values():
        for name, *_ in fam:
            out[name] = [(None, np.array([d[name, j] for d in done])) for j in range(len(pairs))]
    return out


def paired_comparison(
    metric: str,
    A: ArrayLike,
    B: ArrayLike,
    C: ArrayLike,
    n_boot: int = 1000,
    n_perm: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    **options: Any,
) -> Paired:
    """Is alignment(A,B) > alignment(A,C)?  Mean per-item difference, its bootstrap CI and a
    one-sided paired sign-flip p-value (items treated as independent units: kNN overlaps of
    neighbouring items are correlated, so read p as approximate)."""
    _record(metric, per_item=True)
    n_boot, n_perm = _check_count("n_boot", n_boot), _check_count("n_perm", n_perm)
    d = per_item(metric, A, B, **options) - per_item(metric, A, C, **options)
    rng, n = np.random.default_rng(seed), len(d)
    low, high = _interval(d[rng.integers(0, n, (n_boot, n))].mean(axis=1), level)
    flips = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n)) @ d / n
    return Paired(float(d.mean()), low, high, p_value(d.mean(), flips), n)


def spread_over_seeds(scores: ArrayLike) -> Spread:
    """Mean, sample std (ddof=1; 0 for one seed), min and max of a score over agent seeds."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise ValueError("scores must be a non-empty sequence of finite numbers")
    std = float(s.std(ddof=1)) if s.size > 1 else 0.0
    return Spread(float(s.mean()), std, float(s.min()), float(s.max()), int(s.size))
