"""The nearest-neighbour explorer's tables: per-instruction overlaps average to mutual k-NN."""

from __future__ import annotations

import numpy as np
import pytest

from lva import alignment as al
from lva.alignment.explorer import neighbour_lists, overlap_table


@pytest.fixture(scope="module")
def reps():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(60, 16))
    return {"agent": A, "near": A + 0.3 * rng.normal(size=A.shape), "far": rng.normal(size=(60, 8))}


def test_mean_of_per_instruction_overlaps_is_mutual_knn(reps):
    table = overlap_table(reps, "agent", k=5)
    assert list(table.columns) == ["near", "far"] and len(table) == 60
    for name in table.columns:
        assert table[name].mean() == pytest.approx(al.measure("mutual_knn", reps["agent"], reps[name], k=5))
    assert table["near"].mean() > table["far"].mean()


def test_neighbour_lists_agree_with_the_overlaps(reps):
    lists = neighbour_lists(reps, "agent", k=5)
    assert list(lists["representation"].unique()) == ["agent", "near", "far"] and len(lists) == 3 * 60
    for row in lists.itertuples():
        found = [int(j) for j in row.neighbours.split()]
        shared = [int(s) for s in row.shared.split()]
        assert len(found) == len(shared) == 5 and row.item not in found
        assert row.overlap == pytest.approx(sum(shared) / 5, abs=1e-4)
    assert (lists.loc[lists["representation"] == "agent", "overlap"] == 1).all()


def test_unknown_names_are_refused(reps):
    with pytest.raises(ValueError, match="choose from"):
        overlap_table(reps, "nobody")
    with pytest.raises(ValueError, match="unknown representations"):
        neighbour_lists(reps, "agent", names=["ghost"])
