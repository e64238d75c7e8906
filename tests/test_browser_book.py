"""The built book (``_build/html`` from ``make book``) in a real browser, page by page, as a reader
sees it at desktop width (1280 px: a main column of 688 px), served over HTTP on 127.0.0.1.

Every page must:
- load with no console error, no uncaught exception and no request leaving 127.0.0.1;
- draw every chart: each ``.lva-vega`` container holds an ``svg.marks`` or a ``canvas``;
- fit the main column (``article``), collapsed solutions opened. The rule, for a reader who reads
  down the page and never scrolls sideways:
  * no element's box reaches more than ``SLACK`` px past either edge of the column;
  * no element's content is wider than its box by more than ``SLACK`` px where the element clips it
    or scrolls it (``overflow-x`` other than ``visible``). A horizontal scrollbar counts as
    overflowing: what it hides is invisible in print and in a screenshot, and a reader misses it.
    Printed output wraps instead (``book/_static/lva.css``). Code does not wrap (a wrapped Python
    line reads as two): its lines must fit, up to 79 characters (PEP 8) in the main column and
    about 72 in an exercise's solution;
  ``SLACK`` ignores inline MathJax, whose invisible boxes stick out by 8-11 px;
- give every image an alt text that describes it: neither empty nor a file name.

Each page's full-length screenshot (solutions opened) goes to ``_build/screenshots/``, beside a
``report.txt`` listing each page's failures, for people to look through.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import WatchedPage, browser  # noqa: F401  (browser: a fixture)

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
SLACK = 24  # px
CHART_TIMEOUT_MS = 20_000
#: An alt text that is only a file name or path (what myst-nb writes for an output image).
FILE_NAME = re.compile(r"^\S*\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)


def book_pages() -> list[str]:
    """Every HTML page of the built book, relative to ``_build/html`` (not its _static files, nor
    ``index.html``, which only redirects to the first page)."""
    if not HTML.is_dir():
        return []
    return sorted(
        str(p.relative_to(HTML))
        for p in HTML.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(HTML).parts)
        and not p.read_text(errors="replace")[:200].lower().startswith('<meta http-equiv="refresh"')
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The built book served on a free port of 127.0.0.1, as a web server would serve it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def report() -> Iterator[dict[str, list[str]]]:
    """Each page's failures, written to ``_build/screenshots/report.txt`` when the module ends."""
    found: dict[str, list[str]] = {}
    yield found
    if found:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        lines = [
            f"{page}: {'OK' if not fails else f'{len(fails)} failures'}\n" + "".join(f"  - {f}\n" for f in fails)
            for page, fails in sorted(found.items())
        ]
        (SCREENSHOTS / "report.txt").write_text("".join(lines))


# Opens every collapsed block: <details> (sphinx-design dropdowns) and sphinx-togglebutton's hidden
# blocks (sphinx-exercise's solutions), so that their content is checked and photographed too.
OPEN_ALL = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('.toggle-hidden').forEach(e => e.classList.remove('toggle-hidden'));
  document.querySelectorAll('button.toggle-button').forEach(b => b.classList.remove('toggle-button-hidden'));
}"""

# Waits for MathJax's typesetting and the fonts, so that the boxes measured are the final ones.
SETTLED = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await document.fonts.ready;
}"""

CHARTS_DRAWN = "() => [...document.querySelectorAll('.lva-vega')].every(c => c.querySelector('svg.marks, canvas'))"

UNDRAWN = """() => [...document.querySelectorAll('.lva-vega')]
  .map((c, i) => [i + 1, !!c.querySelector('svg.marks, canvas')]).filter(([, drawn]) => !drawn).map(([i]) => i)"""

# Outermost elements of the main column wider than the column, or hiding content by clipping or
# scrolling it (see the module docstring): one line each, with the section it is in.
OVERFLOW = """(slack) => {
  const column = document.querySelector('article.bd-article, .bd-search-container')
    || document.querySelector('article');
  if (!column) { return ['no <article> main column on the page']; }
  const edge = column.getBoundingClientRect();
  const found = [];
  const where = (el) => {  // the exercise or solution it belongs to, else its section's heading
    const box = el.closest('.admonition');
    let h = box && box.querySelector('.admonition-title');
    for (let s = el.closest('section'); !h && s; s = s.parentElement.closest('section')) {
      h = s.querySelector(':scope > h1, :scope > h2, :scope > h3, :scope > h4');
    }
    return h ? ` in "${h.textContent.replace(/[#¶]/g, '').replace(/\\s+/g, ' ').trim().slice(0, 70)}"` : '';
  };
  const name = (el) => el.tagName.toLowerCase() + [...el.classList].slice(0, 3).map(c => '.' + c).join('');
  const text = (el) => (el.textContent || '').replace(/\\s+/g, ' ').trim().slice(0, 70);
  for (const el of column.querySelectorAll('*')) {
    if (found.some(([f]) => f.contains(el))) { continue; }
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) { continue; }
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') { continue; }
    let inside = false;  // inside a clipping or scrolling box of the column: that box answers for it
    for (let a = el.parentElement; a && a !== column; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') { inside = true; break; }
    }
    const past = Math.round(Math.max(box.right - edge.right, edge.left - box.left));
    const hidden = style.overflowX === 'visible' ? 0 : el.scrollWidth - el.clientWidth;
    if (!inside && past > slack) {
      found.push([el, `${name(el)}${where(el)} is ${Math.round(box.width)} px wide and reaches ${past} px `
                      + `past the ${Math.round(edge.width)} px column: "${text(el)}"`]);
    } else if (hidden > slack) {
      const how = ['auto', 'scroll'].includes(style.overflowX) ? 'behind a horizontal scrollbar' : 'clipped';
      found.push([el, `${name(el)}${where(el)} holds ${el.scrollWidth} px of content in ${el.clientWidth} px, `
                      + `${hidden} px ${how}: "${text(el)}"`]);
    }
  }
  return found.map(([, line]) => line);
}"""

IMAGES = """() => [...document.querySelectorAll('img')]
  .map(img => [img.getAttribute('src') || '', img.getAttribute('alt')])"""


def page_failures(
    watched: WatchedPage, url: str, screenshot: Path | None = None, chart_timeout_ms: int = CHART_TIMEOUT_MS
) -> list[str]:
    """Everything a reader would find wrong on the page at ``url`` (see the module docstring)."""
    page = watched.page
    page.goto(url, wait_until="load", timeout=30_000)
    fails: list[str] = []
    try:
        page.wait_for_function(CHARTS_DRAWN, timeout=chart_timeout_ms)
    except Exception:  # playwright's TimeoutError: the charts left undrawn are listed below
        pass
    fails += [
        f"chart {i} of the page is not drawn (no svg.marks or canvas in .lva-vega)" for i in page.evaluate(UNDRAWN)
    ]
    page.evaluate(OPEN_ALL)
    page.evaluate(SETTLED)
    page.wait_for_timeout(200)  # one more layout after the last fonts
    fails += page.evaluate(OVERFLOW, SLACK)
    for src, alt in page.evaluate(IMAGES):
        if not (alt or "").strip():
            fails.append(f"image without alt text: {src}")
        elif FILE_NAME.match(alt.strip()):
            fails.append(f"image whose alt text is a file name: {alt}")
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    return watched.errors + fails


PAGES = book_pages()


NOT_BUILT = pytest.param("", marks=pytest.mark.skip(reason="build the book first: make book"))


@pytest.mark.parametrize("name", PAGES or [NOT_BUILT])
def test_book_page_reads_well_in_a_browser(browser, site, report, name):  # noqa: F811
    watched = WatchedPage(browser, allowed=site)
    try:
        fails = page_failures(watched, site + name, SCREENSHOTS / Path(name).with_suffix(".png"))
    finally:
        watched.close()
    report[name] = fails
    assert not fails, f"{name}: {len(fails)} problems a reader would see:\n  " + "\n  ".join(fails)


PROBLEMS = """<!doctype html><html><head><meta charset="utf-8"><title>p</title>
<style>article { width: 600px; } pre { overflow-x: auto; }</style></head><body><main><article class="bd-article">
<section><h2>Wide</h2><div style="width: 900px">a box wider than the column</div>
<pre>{long}</pre><p>fine <img src="x.png" alt="A bar chart of three values"></p>
<img src="_images/plot.png" alt="_images/plot.png"><img src="y.png"></section>
<div class="lva-vega"></div></article></main><script>console.error("broken"); undefinedFunction();</script>
<script src="https://cdn.example.org/x.js"></script></body></html>"""


def test_page_checks_find_each_kind_of_problem(browser, tmp_path):  # noqa: F811
    """The checks above on a page with one problem of each kind: none may pass unnoticed."""
    (tmp_path / "p.html").write_text(PROBLEMS.replace("{long}", "x = 1  # " + "a long line " * 40))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site_url = f"http://127.0.0.1:{server.server_address[1]}/"
    watched = WatchedPage(browser, allowed=site_url)
    start = time.perf_counter()
    try:
        fails = page_failures(watched, site_url + "p.html", chart_timeout_ms=500)
    finally:
        watched.close()
        server.shutdown()
        server.server_close()
    text = "\n".join(fails)
    assert 'div in "Wide" is 900 px wide and reaches 300 px past the 600 px column' in text
    assert "behind a horizontal scrollbar" in text and "pre" in text
    assert "console error: broken" in text and "uncaught: " in text and "undefinedFunction" in text
    assert "loads from the network: https://cdn.example.org/x.js" in text
    assert "image without alt text: y.png" in text and "alt text is a file name: _images/plot.png" in text
    assert "chart 1 of the page is not drawn" in text
    assert "A bar chart" not in text  # a described image passes
    assert time.perf_counter() - start < 30
