"""A chart's output, the same wherever a chapter runs, and how the book draws it.

:mod:`lva.viz.render` gives every chart one output: the Vega-Lite spec under :data:`VEGALITE_MIME`
(JupyterLab draws it natively), a PNG (static viewers: GitHub, nbviewer) and a line of text. In the
book, :class:`BookChart` (a myst-nb mime render plugin, registered in ``pyproject.toml`` under
``myst_nb.mime_renderers``; ``_config.yml`` puts its mime type first for HTML) turns the spec into
:func:`chart_html`, drawn by the vega bundle the book serves. This module imports nothing heavy:
Sphinx loads it in every build.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: The newest Vega-Lite mime type JupyterLab 4 draws (it registers v3 to v5 and bundles Vega-Lite
#: 5.6); altair 6's own type, ``application/vnd.vegalite.v6.json``, lacks the ``+json`` that
#: nbformat requires of a JSON output, so a notebook holding it fails validation.
VEGALITE_MIME = "application/vnd.vegalite.v5+json"

#: The container the book's stylesheet (``book/_static/lva.css``) sizes and the browser tests look in.
CHART_CLASS = "lva-vega"


def chart_html(spec: Mapping[str, Any]) -> str:
    """The book's HTML for a chart: an empty ``div`` and a script that draws ``spec`` into it with
    ``vegaEmbed`` from the bundle the book serves. No random ids: the same spec gives the same bytes."""
    payload = json.dumps(spec, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    return (
        f'<div class="{CHART_CLASS}"></div>'
        f'<script>vegaEmbed(document.currentScript.previousElementSibling, {payload}, {{"actions": false}});</script>'
    )


class BookChart:
    """myst-nb mime render plugin: a :data:`VEGALITE_MIME` output becomes :func:`chart_html`.

    Which output of a bundle a page shows is the priority in ``_config.yml``
    (``nb_mime_priority_overrides``), so the plugin declares none of its own."""

    mime_priority_overrides: tuple[tuple[str, str, int | None], ...] = ()

    @staticmethod
    def handle_mime(renderer: Any, data: Any, inline: bool) -> list[Any] | None:
        """Raw HTML nodes for a block-level Vega-Lite output; ``None`` (myst-nb's own renderers) otherwise."""
        if inline or data.mime_type != VEGALITE_MIME:
            return None
        from docutils import nodes

        spec = json.loads(data.content) if isinstance(data.content, (str, bytes)) else data.content
        return [nodes.raw(text=chart_html(spec), format="html", classes=["output", "text_html"])]
