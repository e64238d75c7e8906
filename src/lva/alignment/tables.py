"""The tables chapter 6 reports: all pairs under all metrics (scores, p-values, calibrated
scores), the anchor's headline table, precision@k curves, layer curves and within-group scores.

Per-space work is done once per table and spread over the package's worker threads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .common import _as_matrix, _as_pair, _blas_single, _check_k, _pool, neighbours
from .inference import _interval, bootstrap_scores, calibrated, measure, p_value
from .kernels import _quad_nulls
from .metrics import DEFAULT_K, Metric, Prepared, _membership
from .registry import METRICS, QUAD_METRICS, _record, chance, k_options, n_perm_of


def _prepare(m: Metric, X: Sequence[np.ndarray], prep: Mapping[str, Any]) -> list[Prepared]:
    """Per-space preparation of every space, on ``_THREADS`` threads (eigh, BLAS and the
    compiled kernels release the GIL)."""
    with _blas_single(), _pool() as pool:
        return list(pool.map(lambda x: m.prepare(x, **prep), X))


def _matrices(spaces: Mapping[str, ArrayLike]) -> tuple[list[str], list[np.ndarray]]:
    """Names and checked matrices of ``spaces``."""
    names = list(spaces)
    return names, [_as_matrix(spaces[name], repr(name)) for name in names]


def _check_anchor(spaces: Mapping[str, ArrayLike], anchor: str) -> None:
    """ValueError naming the spaces when ``anchor`` is not one of them."""
    if anchor not in spaces:
        raise ValueError(f"anchor {anchor!r} is not one of the spaces: {', '.join(spaces)}")


def compare_all(
    spaces: Mapping[str, ArrayLike],
    metrics: Sequence[str] = METRICS,
    n_perm: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    n_perm_retrieval: int | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Records {a, b, metric, score, p, calibrated, null_mean, n_perm} for every unordered pair
    (a before b in dict order) and metric; ``options`` maps a metric to its keyword options.

    b's rows are permuted exactly as in ``permutation_null(metric, a, b, n_perm, seed)``, so each
    record matches the single-pair functions.  Per-space work is done once; for CKA and RSA each
    permuted matrix is gathered once and scored against all partners (and both CKA estimators)
    in one matrix product.  A metric whose record's ``n_perm_field`` is ``"n_perm_retrieval"``
    (procrustes_retrieval) uses ``n_perm_retrieval`` permutations (None: its record's ``n_perm``).
    """
    if len(spaces) < 2:
        raise ValueError("compare_all needs at least two spaces")
    names, X = _matrices(spaces)
    if len({len(x) for x in X}) != 1:
        raise ValueError(f"all spaces must have the same number of rows; got {dict(zip(names, map(len, X)))}")
    rec = {name: _record(name) for name in metrics}
    split = {name: rec[name].split((options or {}).get(name, {})) for name in metrics}
    counts = {"n_perm": n_perm, "n_perm_retrieval": n_perm_retrieval}
    obs: dict[tuple, float] = {}
    nulls: dict[tuple, np.ndarray] = {}
    pairs = [(s, t) for t in range(1, len(X)) for s in range(t)]
    # CKA and RSA: one pass over the permutations; metrics with the same preparation (both CKA
    # estimators: the centred Grams) share their prepared spaces
    quad = [name for name in QUAD_METRICS if name in metrics]
    fams: dict[tuple, list[str]] = {}
    for name in quad:
        prep = split[name][0]
        fams.setdefault((rec[name].prepare, repr(sorted(prep.items()))), []).append(name)
    if fams:
        prepared = [_prepare(rec[ms[0]], X, split[ms[0]][0]) for ms in fams.values()]
        P = rec[quad[0]].permutations(prepared[0][0], len(X[0]), n_perm, seed)
        dots = _quad_nulls([[a["perm"] for a in S] for S in prepared], P)
        for ms, S, d in zip(fams.values(), prepared, dots):
            for name in ms:
                for s, t in pairs:
                    obs[name, s, t] = rec[name].score(S[s], S[t], **split[name][1])
                    nulls[name, s, t] = rec[name].from_dots(S[s], S[t], d[s, t], P)
    for name in [name for name in metrics if name not in quad]:  # pairs split over threads
        m, (prep, pair) = rec[name], split[name]
        S = _prepare(m, X, prep)
        P = m.permutations(S[0], len(X[0]), n_perm_of(name, counts), seed)
        with _blas_single(), _pool() as pool:
            done = pool.map(
                lambda st: (m.score(S[st[0]], S[st[1]], **pair), m.null(S[st[0]], S[st[1]], P, **pair)), pairs
            )
            for (s, t), (score, null) in zip(pairs, done):
                obs[name, s, t], nulls[name, s, t] = score, null
    return [
        {
            "a": names[s],
            "b": names[t],
            "metric": m,
            "score": obs[m, s, t],
            "p": p_value(obs[m, s, t], nulls[m, s, t]),
            "calibrated": calibrated(obs[m, s, t], nulls[m, s, t], alpha),
            "null_mean": float(nulls[m, s, t].mean()),
            "n_perm": len(nulls[m, s, t]),
        }
        for m in metrics
        for t in range(1, len(X))
        for s in range(t)
    ]


def pair_matrix(spaces: Mapping[str, ArrayLike], metric: str = "mutual_knn", **options: Any) -> Any:
    """Symmetric pandas DataFrame of ``measure(metric, a, b)`` over all pairs of ``spaces`` (each
    space prepared once; the diagonal is the score of a space with itself)."""
    import pandas as pd

    m = _record(metric)
    if not m.symmetric:
        raise ValueError(f"pair_matrix needs a symmetric metric; {metric} maps A -> B")
    names, X = _matrices(spaces)
    prep, pair = m.split(options)
    out = np.ones((len(X), len(X)))
    S = _prepare(m, X, prep)
    with _blas_single():
        for t in range(len(X)):
            for s in range(t + 1):
                out[s, t] = out[t, s] = m.score(S[s], S[t], **pair)
    return pd.DataFrame(out, index=names, columns=names)


def knn_curve(spaces: Mapping[str, ArrayLike], anchor: str, ks: Sequence[int], center: bool = True) -> Any:
    """Mutual k-NN precision of ``anchor`` against every other space for each k in ``ks``:
    long DataFrame (model, k, precision, chance = k/(N-1)); neighbour lists are sorted once."""
    import pandas as pd

    _check_anchor(spaces, anchor)
    A = _as_matrix(spaces[anchor], repr(anchor))
    n, kmax = len(A), max(ks)
    for k in ks:
        _check_k(k, n)
    a = neighbours(A, kmax, center)
    rows = []
    for name, X in spaces.items():
        if name == anchor:
            continue
        b = neighbours(_as_pair(A, X)[1], kmax, center)
        for k in ks:
            member = _membership(b[:, :k])
            rows.append(
                {
                    "model": name,
                    "k": int(k),
                    "chance": chance("mutual_knn", n, k),
                    "precision": float(member[np.arange(n)[:, None], a[:, :k]].mean()),
                }
            )
    return pd.DataFrame(rows)


def headline(
    spaces: Mapping[str, ArrayLike],
    anchor: str,
    metrics: Sequence[str] = METRICS,
    n_perm: int = 1000,
    n_perm_retrieval: int | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """``anchor`` against every other space under every metric: one DataFrame row per (model,
    metric) with score, bootstrap CI (low, high), chance, permutation p, calibrated score and
    null mean.  Each row is ``compare_all({anchor: A, model: B})`` (B's rows permuted;
    procrustes_retrieval maps A -> B) plus ``bootstrap_ci``'s interval with the same options
    (n_boot=0: no interval, low and high are NaN), the resamples of every model drawn together
    (``bootstrap_scores``: A prepared once per resample)."""
    import pandas as pd

    _check_anchor(spaces, anchor)
    options = options or {}
    others = [name for name in spaces if name != anchor]
    rows = []
    with _blas_single():  # many small BLAS calls: threads only spin
        boots = (
            bootstrap_scores(metrics, spaces[anchor], [spaces[name] for name in others], n_boot, seed, options)
            if n_boot
            else None
        )
        for j, name in enumerate(others):
            X = spaces[name]
            recs = compare_all(
                {anchor: spaces[anchor], name: X},
                metrics,
                n_perm=n_perm,
                seed=seed,
                alpha=alpha,
                n_perm_retrieval=n_perm_retrieval,
                options=options,
            )
            for r in recs:
                opts = dict(options.get(r["metric"], {}))
                low, high = _interval(boots[r["metric"]][j][1], level) if boots else (np.nan, np.nan)
                rows.append(
                    {
                        "model": name,
                        "metric": r["metric"],
                        "score": r["score"],
                        "low": low,
                        "high": high,
                        "chance": chance(r["metric"], len(X), opts.get("k", DEFAULT_K)),
                        "p": r["p"],
                        "calibrated": r["calibrated"],
                        "null_mean": r["null_mean"],
                        "n_perm": r["n_perm"],
                    }
                )
    return pd.DataFrame(rows)


def headline_for(spaces: Mapping[str, ArrayLike], anchor: str, align: Any) -> Any:
    """``headline`` with the sizes of a config's ``align`` section (``lva.config.AlignConfig``:
    permutations, resamples, level, alpha, seed, and k for every metric that takes one)."""
    return headline(
        spaces,
        anchor,
        n_perm=align.n_perm,
        n_perm_retrieval=align.n_perm_retrieval,
        n_boot=align.n_boot,
        level=align.level,
        alpha=align.alpha,
        seed=align.seed,
        options={m: opts for m in METRICS if (opts := k_options(m, align.k))},
    )


def layer_curve(
    A: ArrayLike,
    layers: ArrayLike,
    metrics: Sequence[str] = ("mutual_knn", "cka"),
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Alignment of A with each layer of a layered representation ``layers`` (L, N, d): long
    DataFrame (layer, metric, score).  Report the whole curve: the best layer, picked after the
    fact, is biased upwards (a max over L noisy scores)."""
    import pandas as pd

    L = np.asarray(layers)
    if L.ndim != 3:
        raise ValueError(f"layers must have shape (n_layers, N, d); got {L.shape}")
    options = options or {}
    return pd.DataFrame(
        [
            {"layer": i, "metric": m, "score": measure(m, A, L[i], **options.get(m, {}))}
            for m in metrics
            for i in range(len(L))
        ]
    )


def within_groups(
    spaces: Mapping[str, ArrayLike],
    anchor: str,
    groups: Mapping[str, ArrayLike],
    metrics: Sequence[str] = ("mutual_knn", "cka", "rsa"),
    n_perm: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """``anchor`` against every other space computed within each group of rows (e.g. one task's
    instructions): long DataFrame (group, model, metric, n, score, chance, p, calibrated)."""
    import pandas as pd

    rows = []
    for group, idx in groups.items():
        idx = np.asarray(idx)
        sub = {name: np.asarray(X)[idx] for name, X in spaces.items()}
        for r in headline(
            sub, anchor, metrics, n_perm=n_perm, n_boot=0, seed=seed, alpha=alpha, options=options
        ).to_dict("records"):
            rows.append(
                {
                    "group": group,
                    "model": r["model"],
                    "metric": r["metric"],
                    "n": len(idx),
                    "score": r["score"],
                    "chance": r["chance"],
                    "p": r["p"],
                    "calibrated": r["calibrated"],
                }
            )
    return pd.DataFrame(rows)
