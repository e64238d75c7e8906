"""The one altair renderer of the project, the same in the book, in JupyterLab and in a static viewer.

Every chart's output holds three representations (:func:`chart_bundle`), and each place picks one:

  application/vnd.vegalite.v5+json  JupyterLab's built-in renderer, and the book (lva.vegalite)
  image/png                         GitHub, nbviewer: rendered here by vl-convert, offline
  text/plain                        a terminal: the chart's title

Nothing loads from the network: the spec carries its data, vl-convert may fetch nothing, and the
book serves the vega scripts itself (:func:`write_vega_bundle`).
"""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path
from typing import Any

import altair as alt

from lva.vegalite import VEGALITE_MIME

RENDERER = "lva"
BUNDLE_NAME = "vega-bundle.js"
#: Pixels per chart pixel in the PNG: sharp on high-density screens; the output's metadata keeps
#: the chart's own size on the page.
PNG_SCALE = 2
_SCHEMA_VERSION = re.compile(r"/vega-lite/v(\d+)\.(\d+)")


def chart_title(spec: dict[str, Any]) -> str:
    """The chart's title on one line: its own, else the first of its parts' (a layered chart often
    carries it on a layer), else ``untitled``."""
    title = spec.get("title")
    if isinstance(title, dict):
        title = title.get("text")
    if isinstance(title, list):
        title = " ".join(str(line) for line in title)
    if title:
        return " ".join(str(title).split())
    parts = [spec["spec"]] if isinstance(spec.get("spec"), dict) else []
    parts += [part for key in ("layer", "hconcat", "vconcat", "concat") for part in spec.get(key, [])]
    for part in parts:
        if (found := chart_title(part)) != "untitled":
            return found
    return "untitled"


def chart_png(spec: dict[str, Any]) -> bytes:
    """``spec`` drawn as a PNG at :data:`PNG_SCALE` by vl-convert, with the Vega-Lite version the spec
    names, allowed to fetch nothing. The same spec gives the same bytes on the same machine."""
    import vl_convert

    match = _SCHEMA_VERSION.search(str(spec.get("$schema", "")))
    version = f"{match[1]}.{match[2]}" if match else None
    if version not in vl_convert.get_vegalite_versions():
        version = None  # vl-convert's newest
    return vl_convert.vegalite_to_png(spec, vl_version=version, scale=PNG_SCALE, allowed_base_urls=[])


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels, from a PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def chart_bundle(spec: dict[str, Any], **_: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The output of a chart: (mime bundle, metadata), what an altair renderer returns.

    The Vega-Lite spec goes without its ``$schema``: altair writes Vega-Lite 6, JupyterLab 4 draws
    these charts with its Vega-Lite 5.6 all the same, and the ``$schema`` would only make vega-embed
    warn about the version in the browser's console. The PNG's metadata gives the chart's size.
    """
    png = chart_png(spec)
    width, height = png_size(png)
    vegalite = {key: value for key, value in spec.items() if key != "$schema"}
    data = {
        VEGALITE_MIME: vegalite,
        "image/png": base64.b64encode(png).decode("ascii"),
        "text/plain": f"<altair chart: {chart_title(spec)}>",
    }
    metadata = {"image/png": {"width": round(width / PNG_SCALE), "height": round(height / PNG_SCALE)}}
    return data, metadata


def setup_charts() -> str:
    """Enable the project's renderer (:func:`chart_bundle`), the same in the book, in JupyterLab and in
    a script; charts take any number of rows. Returns the renderer's name."""
    if RENDERER not in alt.renderers.names():
        alt.renderers.register(RENDERER, chart_bundle)
    alt.renderers.enable(RENDERER)
    alt.data_transformers.disable_max_rows()
    return RENDERER


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
