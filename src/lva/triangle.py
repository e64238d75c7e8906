"""The language-vision-action triangle of chapter 6: three kinds of grounding, one text architecture.

The vertices are the agent's action-grounded $E_L$ (``agent-seed<N>``), the vision-grounded
encoder trained here (``vision-seed<N>``, :mod:`lva.grounding`) and each language model. Each of
the three pairs (action-vision, action-language, vision-language) is scored under every metric
of :mod:`lva.alignment`, over every pair of seeds, beside the two seed ceilings (agent vs agent,
vision vs vision: how far two networks trained identically but for their seed agree) and the
controls (the untrained twins, bag-of-words, and the referent-only image features of
:func:`lva.grounding.referent_control`). The verdict sentence is generated from the numbers
(:func:`verdict`), never written in advance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any

import numpy as np
import pandas as pd

from lva import alignment as al
from lva import names as N
from lva.names import ACTION, CONTROL, LANGUAGE, VISION, ceiling_name, pair_name

#: The referent-only control's name in the triangle (:data:`lva.names.REFERENT`).
REFERENT = N.REFERENT
#: Controls scored against both grounded vertices, when present.
CONTROLS: tuple[str, ...] = (N.UNTRAINED_AGENT, N.UNTRAINED_VISION, REFERENT, N.BAG_OF_WORDS)
#: The three pairs of vertices, in display order.
PAIRS: tuple[str, ...] = (pair_name(ACTION, VISION), pair_name(ACTION, LANGUAGE), pair_name(VISION, LANGUAGE))
#: The two seed ceilings (agent vs agent, vision vs vision).
CEILINGS: tuple[str, ...] = (ceiling_name(ACTION), ceiling_name(VISION))
_AV, _AL = PAIRS[0], PAIRS[1]  # action-vision, action-language


def roles(names: Sequence[str], family: Mapping[str, str]) -> dict[str, list[str]]:
    """The names of each role: ``action`` (agents), ``vision`` (vision-grounded encoders),
    ``language`` (language models) and ``control`` (those of :data:`CONTROLS` present)."""
    return {
        ACTION: [n for n in names if family.get(n) == N.AGENT],
        VISION: [n for n in names if family.get(n) == N.VISION_GROUNDED],
        LANGUAGE: [n for n in names if family.get(n) in N.LANGUAGE_FAMILIES],
        CONTROL: [n for n in CONTROLS if n in names],
    }


def pair_list(names: Sequence[str], family: Mapping[str, str]) -> list[tuple[str, str, str, str]]:
    """Every scored pair as (pair kind, partner, a, b): a is the grounded side (action before
    vision); ``partner`` names the language model or control (empty for the grounded pairs)."""
    r = roles(names, family)
    out = [(_AV, "", a, v) for a, v in product(r[ACTION], r[VISION])]
    out += [(CEILINGS[0], "", a, b) for a, b in combinations(r[ACTION], 2)]
    out += [(CEILINGS[1], "", a, b) for a, b in combinations(r[VISION], 2)]
    for side in (ACTION, VISION):
        out += [(pair_name(side, LANGUAGE), m, a, m) for m in r[LANGUAGE] for a in r[side]]
        out += [(pair_name(side, CONTROL), c, a, c) for c in r[CONTROL] for a in r[side] if a != c]
    return out


def seed_pairs(
    spaces: Mapping[str, np.ndarray], family: Mapping[str, str], metrics: Sequence[str] = al.METRICS, k: int = 15
) -> pd.DataFrame:
    """Every pair of :func:`pair_list` under every metric: long DataFrame (pair, partner, a, b,
    metric, score); the ``a -> b`` direction for the asymmetric retrieval. Each ``a`` is prepared
    once per metric (:func:`lva.alignment.measure_each`)."""
    listed = pair_list(list(spaces), family)
    rows = []
    for a in dict.fromkeys(p[2] for p in listed):
        mine = [p for p in listed if p[2] == a]
        for m in metrics:
            scores = al.measure_each(m, spaces[a], [spaces[p[3]] for p in mine], **al.k_options(m, k))
            rows += [
                {"pair": kind, "partner": partner, "a": a, "b": b, "metric": m, "score": float(s)}
                for (kind, partner, _, b), s in zip(mine, scores)
            ]
    return pd.DataFrame(rows, columns=["pair", "partner", "a", "b", "metric", "score"])


def spread(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, partner, metric): mean, std (ddof=1; 0 for one pair), min, max and the number
    of seed pairs, from :func:`seed_pairs`."""
    rows = []
    for (kind, partner, metric), g in pairs.groupby(["pair", "partner", "metric"], sort=False):
        s = al.spread_over_seeds(g["score"].to_numpy())
        rows.append(
            {
                "pair": kind,
                "partner": partner,
                "metric": metric,
                "mean": s.mean,
                "std": s.std,
                "min": s.min,
                "max": s.max,
                "seed pairs": s.n,
            }
        )
    return pd.DataFrame(rows)


def vertex_means(table: pd.DataFrame, metric: str = "mutual_knn") -> pd.Series:
    """The three pairs and the two ceilings under ``metric``: mean over seed pairs (and, for the
    language pairs, over language models) of :func:`spread`."""
    sub = table[table["metric"] == metric]
    return pd.Series(
        {kind: float(sub.loc[sub["pair"] == kind, "mean"].mean()) for kind in (*PAIRS, *CEILINGS)}, name=metric
    )


def top_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Per metric: the three pairs' means (:func:`vertex_means`), the two ceilings and the pair on top."""
    metrics = list(dict.fromkeys(table["metric"]))
    out = pd.DataFrame({m: vertex_means(table, m) for m in metrics}).T
    out["on top"] = out[list(PAIRS)].idxmax(axis=1)
    return out


def headline(
    spaces: Mapping[str, np.ndarray],
    family: Mapping[str, str],
    align: Any,
    known: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """:func:`lva.alignment.headline_for` (every metric, permutation p, bootstrap interval, the
    config's sizes) from the first agent against the vision encoders, the other agents, the
    language models and the controls, then from the first vision encoder against the other
    encoders, the language models and the controls; a ``pair`` and an ``anchor`` column.

    ``known`` maps an anchor to rows :func:`lva.alignment.headline_for` already computed from it
    with the same sizes and the same vectors (the pipeline passes its cached headline table):
    a model found there is copied, not recomputed (each row depends only on its two spaces)."""
    r = roles(list(spaces), family)
    if not r[ACTION] or not r[VISION]:
        raise ValueError("the triangle needs at least one agent and one vision-grounded encoder")
    kind = {n: _AV for n in r[VISION]}
    parts = []
    for side, anchor, own in ((ACTION, r[ACTION][0], r[ACTION]), (VISION, r[VISION][0], r[VISION])):
        ceiling = ceiling_name(side)
        names = (
            ([*r[VISION]] if side == ACTION else []) + own[1:] + r[LANGUAGE] + [c for c in r[CONTROL] if c != anchor]
        )
        labels = {
            **(kind if side == ACTION else {}),
            **{n: ceiling for n in own[1:]},
            **{n: pair_name(side, LANGUAGE) for n in r[LANGUAGE]},
            **{n: pair_name(side, CONTROL) for n in r[CONTROL]},
        }
        rows = _anchor_rows(spaces, anchor, names, align, (known or {}).get(anchor))
        parts.append(rows.assign(anchor=anchor, pair=rows["model"].map(labels)))
    return pd.concat(parts, ignore_index=True)[
        ["pair", "anchor", "model", "metric", "score", "low", "high", "chance", "p", "calibrated"]
    ]


def _anchor_rows(
    spaces: Mapping[str, np.ndarray], anchor: str, names: Sequence[str], align: Any, known: pd.DataFrame | None
) -> pd.DataFrame:
    """``anchor`` against each of ``names`` (in that order), the rows of ``known`` reused."""
    have = set() if known is None else set(known["model"]) & set(names)
    todo = [n for n in names if n not in have]
    fresh = al.headline_for({anchor: spaces[anchor], **{n: spaces[n] for n in todo}}, anchor, align) if todo else None
    found = pd.concat([t for t in (known, fresh) if t is not None], ignore_index=True)
    order = {n: i for i, n in enumerate(names)}
    found = found[found["model"].isin(order)]
    return found.iloc[np.argsort(found["model"].map(order).to_numpy(), kind="stable")].reset_index(drop=True)


@dataclass(frozen=True)
class TriangleVerdict:
    """Which pair aligns most, and whether action aligns with the vision-grounded model."""

    metric: str
    means: dict[str, float]  # the three pairs and the two ceilings (vertex_means)
    metrics_on_top: int  # metrics under which the same pair is on top
    n_metrics: int
    action_vision_p: float  # the largest permutation p of the action-vision rows of the headline
    chance: float
    alpha: float
    referent: dict[str, float]  # action / vision against the referent-only control, if present
    best_language: tuple[str, float]  # the language model closest to action, and its mean score

    @property
    def top(self) -> str:
        return max(PAIRS, key=lambda p: self.means[p])

    @property
    def status(self) -> str:
        """``holds`` (action-vision above chance and at least as high as action-language),
        ``holds in part`` (above chance only) or ``does not hold``."""
        if not self.action_vision_p < self.alpha:
            return "does not hold"
        return "holds" if self.means[_AV] >= self.means[_AL] else "holds in part"

    def sentence(self) -> str:
        m = self.means
        others = sorted((p for p in PAIRS if p != self.top), key=lambda p: -m[p])
        ceiling = min(m[c] for c in CEILINGS)
        text = (
            f"Under {self.metric}, the pair that aligns most is **{self.top}** ({m[self.top]:.3f}), ahead of "
            f"{others[0]} ({m[others[0]]:.3f}) and {others[1]} ({m[others[1]]:.3f}); the same pair is on top under "
            f"{self.metrics_on_top} of {self.n_metrics} metrics. The seed ceilings are {m[CEILINGS[0]]:.3f} "
            f"(agent vs agent) and {m[CEILINGS[1]]:.3f} (vision vs vision), chance {self.chance:.3f}. "
        )
        av, al_ = m[_AV], m[_AL]
        detail = {
            "holds": f"action-vision is above chance (every p ≤ {self.action_vision_p:.3f}) and at least as high as "
            f"action-language ({av:.3f} vs {al_:.3f}, the mean over language models)",
            "holds in part": f"action-vision is above chance (every p ≤ {self.action_vision_p:.3f}) but below "
            f"action-language ({av:.3f} vs {al_:.3f}, the mean over language models)",
            "does not hold": f"action-vision is not above chance (largest p = {self.action_vision_p:.3f})",
        }[self.status]
        best, score = self.best_language
        text += (
            f"The claim that action aligns with the vision(-language) model **{self.status}** for this controlled "
            f"pair: {detail}; it reaches {av / ceiling:.0%} of the lower seed "
            f"ceiling, and is {'above' if av > score else 'not above'} the language model closest to action "
            f"({best}, {score:.3f})."
        )
        if self.referent:
            ref = self.referent.get(ACTION, float("nan"))
            text += (
                f" What the named object looks like alone (the referent-only control, task-blind) aligns at "
                f"{ref:.3f} with action ({ref / av:.0%} of the action-vision score) and "
                f"{self.referent.get(VISION, float('nan')):.3f} with vision."
            )
        return text


def verdict(
    table: pd.DataFrame, rows: pd.DataFrame, n: int, k: int = 15, alpha: float = 0.05, metric: str = "mutual_knn"
) -> TriangleVerdict:
    """The verdict from :func:`spread` (``table``) and :func:`headline` (``rows``) for ``n`` items."""
    tops = top_pairs(table)
    means = vertex_means(table, metric).to_dict()
    av = rows[(rows["pair"] == _AV) & (rows["metric"] == metric)]
    if av.empty:
        raise ValueError(f"the headline has no {_AV} rows")
    sub = table[(table["metric"] == metric) & (table["partner"] == REFERENT)]
    referent = {N.pair_sides(kind)[0]: float(mean) for kind, mean in zip(sub["pair"], sub["mean"])}
    lang = table[(table["metric"] == metric) & (table["pair"] == _AL)].set_index("partner")["mean"]
    best = (str(lang.idxmax()), float(lang.max())) if len(lang) else ("none", float("nan"))
    return TriangleVerdict(
        metric,
        means,
        int((tops["on top"] == tops.loc[metric, "on top"]).sum()),
        len(tops),
        float(av["p"].max()),
        al.chance(metric, n, k),
        alpha,
        referent,
        best,
    )
