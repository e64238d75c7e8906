"""The book's Sphinx extension (in ``sphinx.config.extensions`` of ``_config.yml``): every page's footer
names the licences and where the build came from (:mod:`lva.provenance`), e.g.
``lva 0.1.0 · commit 1a2b3c4 · profile fast``.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config

from .provenance import Provenance, provenance

LICENCES_HTML = (
    'Text and figures: <a href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>; code: MIT licence.'
)


def footer_html(origin: Provenance) -> str:
    """The footer line: the licences, then the version, commit and profile."""
    return f'<p class="lva-provenance">{LICENCES_HTML} Built from {html.escape(origin.text())}.</p>'


def _config_inited(app: Sphinx, config: Config) -> None:
    # a config value that changes with the commit: Sphinx rewrites every page when it differs
    config.lva_footer = footer_html(provenance(Path(app.srcdir)))


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    context["theme_extra_footer"] = (context.get("theme_extra_footer") or "") + app.config.lva_footer


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the footer."""
    app.add_config_value("lva_footer", "", "html")
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
