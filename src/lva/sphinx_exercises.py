"""A Sphinx extension (in ``sphinx.config.extensions`` of ``_config.yml``): exercises numbered
within their chapter, "Exercise 6.2", the numbers student copies print and answer checks take
(:func:`lva.markup.exercise_numbers`). sphinx-exercise alone counts across the whole book, and
Sphinx's own per-chapter numbering (a numbered toctree) would prefix every chapter title, which
already carries its number, with a second one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

from .markup import chapter_number


def chapter_local_numbers(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Renumber each chapter's exercises ``(chapter, 1)``, ``(chapter, 2)``, ... in page order,
    after Sphinx has numbered them across the book; returns the pages whose numbers changed."""
    changed = []
    for docname, numbers in env.toc_fignumbers.items():
        chapter = chapter_number(Path(docname))
        exercises = numbers.get("exercise")
        if chapter is None or not exercises:
            continue
        order = sorted(exercises, key=exercises.__getitem__)  # Sphinx's numbers follow the page order
        local = {node_id: (chapter, n) for n, node_id in enumerate(order, 1)}
        if local != exercises:
            numbers["exercise"] = local
            changed.append(docname)
    return changed


def setup(app: Sphinx) -> dict[str, Any]:
    """Run after Sphinx's own figure numbering (the toctree collector, priority 500)."""
    app.connect("env-get-updated", chapter_local_numbers, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
