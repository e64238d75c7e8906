"""Chapter tables and charts added for readability: anisotropy tables, one-at-a-time heatmaps,
map legends that follow the colouring menu, whole-epoch axes and a description on each chart."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lva import embeddings as E
from lva import viz
from lva.instructions import all_instructions


def test_anisotropy_table_has_one_row_per_representation():
    rng = np.random.default_rng(0)
    reps = {"random": rng.normal(size=(50, 8)), "bag-of-words": np.abs(rng.normal(size=(50, 8))) + 3}
    table = E.anisotropy_table(reps)
    assert list(table.index) == ["random", "bag-of-words"]
    assert table.loc["bag-of-words", "raw"] > 0.9 > abs(table.loc["random", "raw"])
    assert np.allclose(table["centred"], -1 / 49, atol=0.05)


def test_similarity_heatmaps_one_representation_at_a_time():
    rng = np.random.default_rng(0)
    labels = ["a", "b", "c"]
    spec = viz.similarity_heatmaps({"x": rng.normal(size=(3, 4)), "y": rng.normal(size=(3, 4))}, labels, "t").to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert len(values) == 2 * 9 and {v["representation"] for v in values} == {"x", "y"}
    assert spec["description"] and spec["params"][0]["value"] == "x"
    diag = [v["cosine"] for v in values if v["i"] == v["j"]]
    assert np.allclose(diag, 1.0)
    with pytest.raises(ValueError, match="3 labels"):
        viz.similarity_heatmaps({"x": rng.normal(size=(2, 4))}, labels, "t")


def test_pca_map_legend_lists_only_the_chosen_grouping():
    rng = np.random.default_rng(0)
    n = len(all_instructions())
    spec = json.dumps(viz.pca_maps({"r": (rng.normal(size=(n, 2)), np.array([0.5, 0.2]))}).to_dict())
    assert 'colour_by == \'task\' ? [\\"GO-TO\\", \\"PICK-UP\\", \\"ESCAPE-FROM\\"]' in spec
    assert '"columns": 3' in spec or '"columns":3' in spec


def test_curves_have_whole_epoch_ticks_and_separate_legends():
    from lva.train import History

    h = History(
        epoch=[1, 2, 3],
        train_loss=[1.0, 0.5, 0.4],
        val_loss=[1.1, 0.6, 0.5],
        val_accuracy=[0.5, 0.7, 0.8],
        success=[{"goto": 0.5}, {"goto": 0.7}, {"goto": 0.9}],
    )
    spec = viz.training_curves({"seed 0": h, "seed 1": h}).to_dict()
    panels = spec["hconcat"]
    assert [p["encoding"]["x"]["axis"]["values"] for p in panels] == [[1, 2, 3]] * 3
    assert spec["resolve"]["scale"]["color"] == "independent"
    assert panels[0]["encoding"]["shape"]["field"] == "run"  # seeds differ by symbol, not only by dash
    assert spec["description"]


def test_target_visible_counts_views_that_show_the_named_object():
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

    from lva import grounding as G

    ins = all_instructions()
    goto = next(i for i, x in enumerate(ins) if x.task == "goto")
    views = np.zeros((2, 7, 7, 3), dtype=np.uint8)  # view 0: empty; view 1: the named object at (3, 3)
    views[1, 3, 3, :2] = (OBJECT_TO_IDX[ins[goto].obj_type], COLOR_TO_IDX[ins[goto].color])
    pairs = G.Pairs(np.array([goto, goto]), np.array([[1, 0], [0, 0]]), np.zeros((2, 40, 7, 7), np.float16), views)
    table = G.target_visible(pairs)
    assert list(table.index) == ["GO-TO"]
    assert table.loc["GO-TO", "first view shows it"] == 0.5 and table.loc["GO-TO", "final view shows it"] == 0.0
