"""A student's chapter in JupyterLab, in a real browser: the charts are drawn and the console is clean.

The test writes the student copy of a cheap chapter (:data:`CHAPTER`), executes it with papermill
under its own cache, starts JupyterLab on 127.0.0.1 (a free port, no token, offline options of
:mod:`lva.lab`) with that notebook alone in a temporary root, and opens it in headless chromium.
Every cell whose executed outputs hold an altair chart must show an ``svg`` or ``canvas`` inside its
``.jp-OutputArea-output``. Nothing may be requested outside 127.0.0.1. The server always stops.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_support import WatchedPage, browser, free_port  # noqa: F401  (browser: a fixture)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "02_agent"  # one altair chart, a few seconds to run on a cold cache
EXECUTE_TIMEOUT_S = 420
START_TIMEOUT_S = 90
DRAW_TIMEOUT_MS = 60_000

# The student copy of a chapter, executed: argv = chapter source, work folder, executed notebook.
_EXECUTE = """import sys
from pathlib import Path
from lva.book import execute
from lva.config import repo_root
from lva.student import student_copy
source, work, out = map(Path, sys.argv[1:])
copy = student_copy(source, work / source.with_suffix('.ipynb').name)
print(f"executed in {execute(copy, out, 'fast', cwd=repo_root()):.1f} s")
"""


def chart_cells(notebook: Path) -> list[int]:
    """Indices, among the code cells, of the cells whose outputs hold an altair chart (a vega-lite
    mime bundle, or altair's HTML: ``vegaEmbed``)."""
    import nbformat

    found = []
    code = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            html = str(data.get("text/html", ""))
            if any(m.startswith("application/vnd.vegalite") for m in data) or "vegaEmbed" in html:
                found.append(i)
                break
    return found


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory) -> Path:
    """A temporary folder holding the executed student copy of :data:`CHAPTER`."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed: pip install -e '.[lab]' (or make lab)")
    base = tmp_path_factory.mktemp("lab")
    env = {**os.environ, "LVA_CACHE": str(base / "cache"), "LVA_NO_PROGRESS": "1"}
    env.pop("LVA_BOOK", None)  # as a student runs it: not the book's renderer
    out = base / "root" / f"{CHAPTER}.ipynb"
    source = ROOT / "notebooks" / f"{CHAPTER}.py"
    proc = subprocess.run(
        [sys.executable, "-c", _EXECUTE, str(source), str(base / "work"), str(out)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=EXECUTE_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"the student copy of {CHAPTER} did not run:\n{proc.stderr[-3000:]}"
    print(proc.stdout.strip().splitlines()[-1])
    return out.parent


@pytest.fixture(scope="module")
def lab(lab_root, tmp_path_factory) -> Iterator[str]:
    """JupyterLab serving ``lab_root`` on a free port of 127.0.0.1; its URL. Stopped at the end, always."""
    from lva.lab import lab_command

    home = tmp_path_factory.mktemp("jupyter")
    # every cell attached to the page, not only those in view: each chart is drawn and can be checked
    settings = home / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"windowingMode": "none"}))
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "LVA_CACHE": str(lab_root.parent / "cache"),
    }
    port = free_port()
    cmd = lab_command(
        lab_root,
        [
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            "--IdentityProvider.token=",
            "--LabApp.default_url=/lab",
        ],
        as_root=True,
    )
    log = (home / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=lab_root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(url + "api/status", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start:\n{(home / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)  # the group this fixture started: server and kernels
            server.wait(timeout=10)
        log.close()


# For each code cell (in order): whether its output area holds a drawn chart (an svg or a canvas).
DRAWN = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell =>
  !!cell.querySelector('.jp-OutputArea-output svg, .jp-OutputArea-output canvas'))"""


def test_student_chapter_draws_its_charts_in_jupyterlab(browser, lab, lab_root):  # noqa: F811
    notebook = lab_root / f"{CHAPTER}.ipynb"
    expected = chart_cells(notebook)
    assert expected, f"{CHAPTER} has no chart to check"
    watched = WatchedPage(browser, allowed=lab)
    page = watched.page
    start = time.perf_counter()
    try:
        page.goto(f"{lab}lab/tree/{notebook.name}", wait_until="load", timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-OutputArea-output", timeout=60_000)
        check = f"() => {{ const d = ({DRAWN})(); return {json.dumps(expected)}.every(i => d[i]); }}"
        try:
            page.wait_for_function(check, timeout=DRAW_TIMEOUT_MS)
        except Exception:  # playwright's TimeoutError: the undrawn charts are listed below
            pass
        page.wait_for_timeout(1000)  # late console errors
        drawn = page.evaluate(DRAWN)
        page.evaluate(f"() => document.querySelectorAll('.jp-Notebook .jp-CodeCell')[{expected[0]}].scrollIntoView()")
        shot = ROOT / "_build" / "screenshots" / "lab" / f"{CHAPTER}.png"  # the first chart, for people to look at
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
    finally:
        watched.close()
    seconds = time.perf_counter() - start
    fails = [
        f"code cell {i + 1}: its chart is not drawn (no svg or canvas in .jp-OutputArea-output)"
        for i in expected
        if i >= len(drawn) or not drawn[i]
    ]
    fails += watched.errors
    assert not fails, (
        f"{CHAPTER} in JupyterLab ({len(drawn)} code cells, charts in cells "
        f"{[i + 1 for i in expected]}, {seconds:.0f} s):\n  " + "\n  ".join(fails)
    )
