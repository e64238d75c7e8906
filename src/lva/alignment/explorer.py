"""Mutual k-NN precision one instruction at a time: each instruction's k nearest neighbours in the
action space and in every other representation, which of them the two share, and the
instruction's overlap, whose mean over instructions is ``measure("mutual_knn")``.

Chapter 6's nearest-neighbour explorer (:func:`lva.viz.neighbour_explorer`) draws these tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .common import neighbours
from .inference import per_item
from .metrics import DEFAULT_K


def overlap_table(
    reps: Mapping[str, np.ndarray],
    anchor: str,
    k: int = DEFAULT_K,
    center: bool = True,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Each instruction's mutual k-NN overlap with the ``anchor`` space: rows in the order of the
    representations' rows, one column per other representation (``names``, default all). A
    column's mean is ``measure("mutual_knn", reps[anchor], reps[name], k=k, center=center)``."""
    if anchor not in reps:
        raise ValueError(f"unknown anchor {anchor!r}; choose from {sorted(reps)}")
    others = [n for n in reps if n != anchor] if names is None else list(names)
    unknown = sorted(set(others) - set(reps))
    if unknown:
        raise ValueError(f"unknown representations {unknown}; choose from {sorted(reps)}")
    A = reps[anchor]
    return pd.DataFrame({name: per_item("mutual_knn", A, reps[name], k=k, center=center) for name in others})


def neighbour_lists(
    reps: Mapping[str, np.ndarray],
    anchor: str,
    k: int = DEFAULT_K,
    center: bool = True,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per (instruction, representation), the anchor first: ``item`` (row index),
    ``representation``, ``neighbours`` (the k nearest rows, nearest first, space-separated),
    ``shared`` (1 where that neighbour is also among the anchor's k, else 0, same order) and
    ``overlap`` (the share of shared neighbours: the item's term in mutual k-NN; 1 for the anchor).

    Strings keep the table small enough for a chart that ships every instruction's lists."""
    overlaps = overlap_table(reps, anchor, k, center, names)
    order = [anchor, *overlaps.columns]
    anchor_sets = neighbours(np.asarray(reps[anchor]), k, center)
    members = np.zeros((len(anchor_sets), len(anchor_sets)), dtype=bool)
    members[np.arange(len(anchor_sets))[:, None], anchor_sets] = True
    rows = []
    for name in order:
        found = anchor_sets if name == anchor else neighbours(np.asarray(reps[name]), k, center)
        shared = members[np.arange(len(found))[:, None], found]
        overlap = np.ones(len(found)) if name == anchor else overlaps[name].to_numpy()
        for i in range(len(found)):
            rows.append(
                {
                    "item": i,
                    "representation": name,
                    "neighbours": " ".join(map(str, found[i])),
                    "shared": " ".join("1" if s else "0" for s in shared[i]),
                    "overlap": round(float(overlap[i]), 4),
                }
            )
    return pd.DataFrame(rows)
