"""The notebook runner and the offline book build."""

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lva.book import build_book, check_offline, check_quiet, check_toc, execute, find_notebooks, to_ipynb
from lva.vegalite import VEGALITE_MIME

ROOT = Path(__file__).resolve().parents[1]

OK = """# %% tags=["parameters"]
profile = "fast"

# %%
print("ran with", profile)
"""


def test_runner_stops_non_zero_at_the_first_failing_notebook(tmp_path):
    src, out = tmp_path / "nb", tmp_path / "out"
    src.mkdir()
    (src / "01_ok.py").write_text(OK)
    (src / "02_fail.py").write_text(OK + '\n# %%\nraise ValueError("boom")\n')
    (src / "03_later.py").write_text(OK)
    proc = subprocess.run(
        [sys.executable, "-m", "lva", "book", "--notebooks", str(src), "--out", str(out), "--no-build"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode != 0
    assert "02_fail" in proc.stderr and "ValueError: boom" in proc.stderr
    assert "01_ok:" in proc.stdout  # its wall time was printed
    assert (out / "01_ok.ipynb").exists() and (out / "02_fail.ipynb").exists()
    assert not (out / "03_later.ipynb").exists()  # nothing after the failure runs


def test_runner_rejects_unknown_profile():
    proc = subprocess.run(
        [sys.executable, "-m", "lva", "book", "--profile", "huge"], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 2 and "fast" in proc.stderr and "full" in proc.stderr


def test_toc_and_notebooks_must_agree(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/chapters/01_a\n")
    (tmp_path / "01_a.py").write_text(OK)
    check_toc(find_notebooks(tmp_path), tmp_path)
    (tmp_path / "02_b.py").write_text(OK)
    with pytest.raises(SystemExit, match="02_b"):
        check_toc(find_notebooks(tmp_path), tmp_path)


def test_repository_toc_lists_every_notebook():
    check_toc(find_notebooks(ROOT / "notebooks"), ROOT)


def test_check_offline_flags_external_scripts_and_styles(tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="https://cdn.example/x.js"></script><link href="//cdn/y.css" rel="stylesheet">'
    )
    (tmp_path / "b.html").write_text(
        '<script src="_static/x.js"></script><a href="https://example.org">a link is fine</a>'
    )
    (tmp_path / "c.html").write_text(
        '<script>requirejs.config({paths: {"vega": "https://cdn.jsdelivr.net/npm/vega@6?noext"}});</script>'
    )
    found = check_offline(tmp_path)
    assert len(found) == 3 and all(f.startswith(("a.html", "c.html")) for f in found)


def test_check_quiet_flags_stderr_blocks(tmp_path):
    (tmp_path / "a.html").write_text(
        '<div class="output stderr highlight-myst-ansi notranslate"><div class="highlight">'
        "<pre><span></span>Loading weights: 100%|##########| 290/290\n</pre></div></div>"
    )
    (tmp_path / "b.html").write_text(
        '<div class="output stream highlight-myst-ansi notranslate"><div class="highlight">'
        "<pre><span></span>printed output is fine</pre></div></div>"
    )
    assert check_quiet(tmp_path) == ["a.html: Loading weights: 100%|##########| 290/290"]


def test_a_book_with_a_chart_and_math_builds_offline(tmp_path):
    """A miniature book with the project's _config.yml: -W passes and nothing loads from the network."""
    for name in ("_config.yml",):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "book" / "_static").mkdir(parents=True)
    shutil.copy(ROOT / "book" / "_static" / "lva.css", tmp_path / "book" / "_static")
    shutil.copy(ROOT / "book" / "references.bib", tmp_path / "book")
    (tmp_path / "book" / "intro.md").write_text(
        "# Mini\n\nEuler: $e^{i\\pi} + 1 = 0$, as in {cite:t}`milano2026alignment`.\n\n```{bibliography}\n```\n"
    )
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n- file: book/chapters/01_chart\n")
    src = tmp_path / "01_chart.py"
    src.write_text(
        "# %% [markdown]\n# # Chart page\n\n"
        + OK
        + "\n# %% [markdown]\n# ## A chart\n\n# %%\nimport altair as alt, pandas as pd\nfrom lva import viz\n"
        + "viz.setup_charts()\nalt.Chart(pd.DataFrame({'x': [1, 2, 3]})).mark_bar().encode(x='x:Q')\n"
        # what a cold build does: library bars inside quiet(); ipykernel forwards file descriptor 2 as
        # well, so the cell waits long enough for anything written there to reach the page
        + "\n# %%\nimport sys, time\nfrom tqdm import tqdm\nfrom lva.models import quiet\nwith quiet():\n"
        + "    print('Loading', 'weights', file=sys.stderr, flush=True)\n"
        + "    for _ in tqdm(range(3), desc='Converting'):\n"
        + "        time.sleep(0.2)\n"
        + "time.sleep(1.5)\n"
        + "\n# %%\nprint('to the page')\n"
    )
    nb = to_ipynb(src, tmp_path / "work" / "01_chart.ipynb")
    execute(nb, tmp_path / "book" / "chapters" / "01_chart.ipynb", "fast", cwd=tmp_path)
    shutil.rmtree(tmp_path / "work")
    build_book(tmp_path)  # raises SystemExit on a -W warning or an external load
    html = tmp_path / "_build" / "html"
    page = (html / "book" / "chapters" / "01_chart.html").read_text()
    assert "vegaEmbed(document.currentScript.previousElementSibling" in page
    # the chart's Vega-Lite output is drawn (lva.vegalite), not its PNG fallback
    assert page.count('<div class="lva-vega"></div>') == 1 and "<img" not in page
    [output] = [
        o
        for c in nbformat.read(tmp_path / "book" / "chapters" / "01_chart.ipynb", 4).cells
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert VEGALITE_MIME in output["data"]
    assert (html / "_static" / "vega-bundle.js").stat().st_size > 100_000
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert check_offline(html) == []
    assert check_quiet(html) == [] and "to the page" in page
    assert "Loading weights" not in page and "Converting: 100%" not in page
    assert "Milano and Nolfi" in (html / "book" / "intro.html").read_text()  # the citation resolved
    import re  # every page's footer (lva.sphinxext): the licences and where the build came from

    from lva.provenance import package_version

    for built in (page, (html / "book" / "intro.html").read_text()):
        footer = re.search(r'<p class="lva-provenance">(.*?)</p>', built, re.DOTALL).group(1)
        assert "CC BY 4.0" in footer and "MIT" in footer and f"lva {package_version()}" in footer
        assert "profile fast" in footer  # papermill's record of the executed chapter


def test_repository_book_is_offline_when_built():
    html = ROOT / "_build" / "html"
    if not html.exists():
        pytest.skip("the book has not been built in this checkout (make book)")
    assert check_offline(html) == []


@pytest.mark.parametrize("command", ["book", "demos", "train", "embed", "align", "student"])
def test_command_line_help(command):
    proc = subprocess.run([sys.executable, "-m", "lva", command, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "--profile" in proc.stdout


@pytest.mark.parametrize("command", ["embed", "align"])
def test_command_line_rejects_unknown_models_naming_the_known_ones(command, tmp_path):
    """At once (checked before torch is imported), in one line, writing nothing."""
    proc = subprocess.run(
        [sys.executable, "-m", "lva", command, "--models", "minilm,no-such-model"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "no-such-model" in proc.stderr and "minilm" in proc.stderr
    assert not (tmp_path / "cache").exists()  # conftest's LVA_CACHE: nothing was written


def test_peak_memory_counts_the_children_a_notebook_starts():
    import subprocess
    import sys

    from lva.book import PeakMemory

    hold = "import time; a = bytearray(300_000_000); a[::4096] = b'x' * len(a[::4096]); time.sleep(0.5)"
    with PeakMemory(interval=0.05) as memory:
        subprocess.run([sys.executable, "-c", hold], check=True)
    assert 0.3 <= memory.peak_gb < 2.0  # the child's 300 MB, counted, and not more than it plausibly holds
    with PeakMemory(interval=0.05) as idle:
        pass
    assert idle.peak_gb < 0.3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="proportional set sizes are Linux's")
def test_peak_memory_counts_pages_two_children_share_once(tmp_path):
    """Two children reading the same 200 MB file through one mapping: 0.2 GB, not 0.4 (summed RSS).

    Measured in a fresh process whose only children are the two readers (this worker's children
    can include a test's leftovers, which once made the difference of two peaks fall short under
    load), and the readers hold their mapping until the sampler has seen both."""
    shared = tmp_path / "shared.bin"
    shared.write_bytes(b"x" * 200_000_000)
    reader = (
        "import mmap, sys; f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); "
        "sum(m[i] for i in range(0, len(m), 4096)); print('ready', flush=True); sys.stdin.read()"
    )
    measure = """
import subprocess, sys, time
from lva.book import PeakMemory
with PeakMemory(interval=0.05) as memory:
    readers = [subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    assert [r.stdout.readline() for r in readers] == ["ready\\n"] * 2
    deadline = time.monotonic() + 20  # a loaded machine may keep the sampler waiting; 0.4 GB shows in its first look
    while memory.peak_gb < 0.19 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a few more samples with both mappings read
    for r in readers:
        r.stdin.close()
    assert [r.wait() for r in readers] == [0, 0]
print(memory.peak_gb)
"""
    out = subprocess.run(
        [sys.executable, "-c", measure, reader, str(shared)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert 0.19 <= float(out.stdout) < 0.3
