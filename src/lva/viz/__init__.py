"""Figures for the book: an offline altair renderer, and the pictures and charts of every chapter.

Charts render in the built book with the vega bundle served from ``book/_static`` (no CDN): the
renderer emits ``vegaEmbed(<previous element>, SPEC)`` with no random ids, so a re-run gives the
same HTML. In JupyterLab the same output carries altair's own mimetype and renders natively.

The charts live in one module per part of the book, all re-exported here (``viz.pca_maps``, ...):

  world      chapters 1-3: the grid world, instructions, expert, architecture, training, episodes
  maps       chapter 5: PCA maps, similarity heatmaps, anisotropy
  vision     chapter 4 and 6: the vision-grounded encoder's training and retrievals, the triangle
  alignment  chapter 6: matrices, curves, specification curve, anatomy, scale, seeds
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt

from .alignment import (METRIC_LABELS, alignment_matrix, anatomy_chart, knn_curves, layer_curves, scale_chart,
                        seed_chart, specification_curve, task_scores)
from .vision import PAIR_COLORS, ground_curves, retrieval_chart, retrieved_examples, triangle_chart
from .maps import LABEL_COLORS, anisotropy_chart, pca_maps, similarity_heatmap
from .world import (TASK_COLORS, action_chart, architecture_diagram, draw_path, expert_path, filmstrip,
                    length_chart, show_images, task_examples, training_curves, vocabulary_chart)

RENDERER = "lva-offline"
BUNDLE_NAME = "vega-bundle.js"


def _offline_renderer(spec: dict[str, Any], **_: Any) -> dict[str, Any]:
    payload = json.dumps(spec, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    html = (
        '<div class="lva-vega"></div>'
        f'<script>vegaEmbed(document.currentScript.previousElementSibling, {payload}, {{"actions": false}});</script>'
    )
    return {"text/html": html, "text/plain": f"<altair chart: {spec.get('title', 'untitled')}>"}


def setup_charts() -> str:
    """Choose the altair renderer: offline (vega served by the book) in a book build, else altair's default.

    The book runner sets ``LVA_BOOK=1``; in JupyterLab, altair's default renderer draws natively.
    Returns the renderer's name.
    """
    import os

    if RENDERER not in alt.renderers.names():
        alt.renderers.register(RENDERER, _offline_renderer)
    name = RENDERER if os.environ.get("LVA_BOOK") == "1" else "default"
    alt.renderers.enable(name)
    alt.data_transformers.disable_max_rows()
    return name


def write_vega_bundle(static_dir: str | Path) -> Path:
    """Write vega + vega-lite + vega-embed (from ``vl-convert``) into the book's static folder."""
    import vl_convert

    from lva.io import atomic_open

    path = Path(static_dir) / BUNDLE_NAME
    text = "(function(){\n" + vl_convert.javascript_bundle() + "\n})();\n"
    if not path.exists() or path.read_text() != text:
        with atomic_open(path, "w") as fh:
            fh.write(text)
    return path


__all__ = [
    "BUNDLE_NAME", "LABEL_COLORS", "METRIC_LABELS", "PAIR_COLORS", "ground_curves", "retrieval_chart",
    "retrieved_examples", "triangle_chart", "RENDERER", "TASK_COLORS", "action_chart", "alignment_matrix",
    "anatomy_chart", "anisotropy_chart", "architecture_diagram", "draw_path", "expert_path", "filmstrip", "knn_curves",
    "layer_curves", "length_chart", "pca_maps", "scale_chart", "seed_chart", "setup_charts", "show_images",
    "similarity_heatmap", "specification_curve", "task_examples", "task_scores", "training_curves",
    "vocabulary_chart", "write_vega_bundle",
]
