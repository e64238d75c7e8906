"""Figures for the book: the altair renderer, and the pictures and charts of every chapter.

One altair renderer (:mod:`lva.viz.render`, enabled by :func:`setup_charts`) serves every place a
chapter runs: each chart's output carries its Vega-Lite spec (JupyterLab draws it natively, the book
with the vega bundle it serves from ``book/_static``), a PNG for static viewers, and its title.

The charts live in one module per part of the book, all re-exported here (``viz.pca_maps``, ...):

  world      chapters 1-3: the grid world, instructions, expert, architecture, training, episodes
  maps       chapter 5: PCA maps, similarity heatmaps, anisotropy
  vision     chapter 4 and 6: the vision-grounded encoder's training and retrievals, the triangle
  alignment  chapter 6: matrices, curves, specification curve, anatomy, scale, seeds
"""

from __future__ import annotations

from .alignment import (
    METRIC_LABELS,
    alignment_matrix,
    anatomy_chart,
    knn_curves,
    layer_curves,
    scale_chart,
    seed_chart,
    specification_curve,
    task_scores,
)
from .explorer import NEIGHBOUR_COLORS, neighbour_explorer
from .maps import LABEL_COLORS, anisotropy_chart, pca_maps, similarity_heatmap, similarity_heatmaps
from .render import BUNDLE_NAME, RENDERER, setup_charts, write_vega_bundle
from .vision import PAIR_COLORS, ground_curves, retrieval_chart, retrieved_examples, triangle_chart
from .world import (
    TASK_COLORS,
    action_chart,
    architecture_diagram,
    draw_path,
    expert_path,
    filmstrip,
    length_chart,
    show_images,
    task_examples,
    training_curves,
    vocabulary_chart,
)

__all__ = [
    "BUNDLE_NAME",
    "LABEL_COLORS",
    "METRIC_LABELS",
    "NEIGHBOUR_COLORS",
    "PAIR_COLORS",
    "ground_curves",
    "neighbour_explorer",
    "retrieval_chart",
    "retrieved_examples",
    "triangle_chart",
    "RENDERER",
    "TASK_COLORS",
    "action_chart",
    "alignment_matrix",
    "anatomy_chart",
    "anisotropy_chart",
    "architecture_diagram",
    "draw_path",
    "expert_path",
    "filmstrip",
    "knn_curves",
    "layer_curves",
    "length_chart",
    "pca_maps",
    "scale_chart",
    "seed_chart",
    "setup_charts",
    "show_images",
    "similarity_heatmap",
    "similarity_heatmaps",
    "specification_curve",
    "task_examples",
    "task_scores",
    "training_curves",
    "vocabulary_chart",
    "write_vega_bundle",
]
