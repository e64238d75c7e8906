"""Representational alignment metrics with permutation nulls, bootstrap CIs and paired tests.

Every metric compares embeddings ``A`` (N x d_a) and ``B`` (N x d_b) of the same N items (row i
of both embeds instruction i); higher always means more aligned.

{metric_table}

Ties in neighbour rankings are broken deterministically: candidates are ordered by (-cosine,
row index), so among equal similarities the lower row index wins.  Duplicate rows (synonyms
with identical embeddings) get their similarities copied from the first copy, so they tie bit
for bit and floating-point noise never decides the order.

Permutation nulls permute the rows of B (for RSA: rows and columns of B's RDM together) with
i.i.d. uniform permutations from ``np.random.default_rng(seed)``.  Everything that does not
depend on the pairing (kNN sets, centred Gram matrices, RDM ranks, PCA bases) is computed once;
a permutation only relabels it.  All randomness is seeded; results are deterministic.

The permutation loops run in small compiled kernels (numba, cached on first use): each
permutation is scored by one thread in a fixed order, so results do not depend on the number
of threads.  The slowest null is procrustes_retrieval, which must refit its map for every fold
and permutation (5 SVDs per permutation): hence its smaller default number of permutations
(100; the book always passes its config's ``AlignConfig.n_perm_retrieval``, the field its record
names).

The package, from the bottom up (each module imports only those above it):

  common     input checks, the worker threads (``common._THREADS``), cosines, PCA, permutations
  kernels    the compiled loops of the nulls (numba)
  metrics    one ``Metric`` record per metric (preparation, score, null, per-item form, chance
             level, default options and permutations, label, whether chapter 6 charts it and the
             specification curve uses it)
  registry   the registry ``METRICS_BY_NAME`` (those records, then any ``register`` adds), its
             live views (``METRICS``, ``LABELS``, ...) and the look-ups by metric name
  inference  measure, per_item, permutation_null, p-values, bootstrap intervals, paired tests
  tables     compare_all and the tables of chapter 6 (headline, curves, pair matrices, groups)
"""

from __future__ import annotations

from .common import neighbours, threads
from .inference import (
    Interval,
    Paired,
    Spread,
    bootstrap_ci,
    bootstrap_scores,
    calibrated,
    measure,
    measure_and_null,
    measure_each,
    p_value,
    paired_comparison,
    per_item,
    permutation_null,
    permutation_null_items,
    spread_over_seeds,
)
from .metrics import DEFAULT_K, Metric
from .registry import (
    DEFAULT_N_PERM,
    LABELS,
    METRICS,
    METRICS_BY_NAME,
    PER_ITEM_METRICS,
    QUAD_METRICS,
    SPEC_METRICS,
    MetricNames,
    MetricValues,
    chance,
    k_options,
    metric_table,
    n_perm_of,
    register,
    unregister,
)
from .tables import compare_all, headline, headline_for, knn_curve, layer_curve, pair_matrix, within_groups

__doc__ = (__doc__ or "").replace("{metric_table}", metric_table())  # the table, from the records

__all__ = [
    "DEFAULT_K",
    "DEFAULT_N_PERM",
    "LABELS",
    "METRICS",
    "METRICS_BY_NAME",
    "PER_ITEM_METRICS",
    "QUAD_METRICS",
    "SPEC_METRICS",
    "Interval",
    "Metric",
    "MetricNames",
    "MetricValues",
    "Paired",
    "Spread",
    "bootstrap_ci",
    "bootstrap_scores",
    "calibrated",
    "chance",
    "compare_all",
    "headline",
    "headline_for",
    "k_options",
    "knn_curve",
    "layer_curve",
    "measure",
    "measure_and_null",
    "measure_each",
    "metric_table",
    "n_perm_of",
    "neighbours",
    "p_value",
    "pair_matrix",
    "paired_comparison",
    "per_item",
    "permutation_null",
    "permutation_null_items",
    "register",
    "spread_over_seeds",
    "threads",
    "unregister",
    "within_groups",
]
