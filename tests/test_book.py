"""The notebook runner and the offline book build."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lva.book import STARTER_MARKER, build_book, check_offline, check_quiet, check_toc, execute, find_notebooks, to_ipynb

ROOT = Path(__file__).resolve().parents[1]

OK = '''# %% tags=["parameters"]
profile = "fast"

# %%
print("ran with", profile)
'''


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
    proc = subprocess.run([sys.executable, "-m", "lva", "book", "--profile", "huge"], capture_output=True, text=True, cwd=ROOT)
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
    (tmp_path / "a.html").write_text('<script src="https://cdn.example/x.js"></script><link href="//cdn/y.css" rel="stylesheet">')
    (tmp_path / "b.html").write_text('<script src="_static/x.js"></script><a href="https://example.org">a link is fine</a>')
    (tmp_path / "c.html").write_text('<script>requirejs.config({paths: {"vega": "https://cdn.jsdelivr.net/npm/vega@6?noext"}});</script>')
    found = check_offline(tmp_path)
    assert len(found) == 3 and all(f.startswith(("a.html", "c.html")) for f in found)


def test_check_quiet_flags_stderr_blocks(tmp_path):
    (tmp_path / "a.html").write_text('<div class="output stderr highlight-myst-ansi notranslate"><div class="highlight">'
                                     "<pre><span></span>Loading weights: 100%|##########| 290/290\n</pre></div></div>")
    (tmp_path / "b.html").write_text('<div class="output stream highlight-myst-ansi notranslate"><div class="highlight">'
                                     "<pre><span></span>printed output is fine</pre></div></div>")
    assert check_quiet(tmp_path) == ["a.html: Loading weights: 100%|##########| 290/290"]


def test_a_book_with_a_chart_and_math_builds_offline(tmp_path, monkeypatch):
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
        + "    print('Loading', 'weights', file=sys.stderr, flush=True)\n    for _ in tqdm(range(3), desc='Converting'):\n"
        + "        time.sleep(0.2)\n"
        + "time.sleep(1.5)\n"
        + "\n# %%\nprint('to the page')\n"
    )
    monkeypatch.setenv("LVA_BOOK", "1")
    nb = to_ipynb(src, tmp_path / "work" / "01_chart.ipynb")
    execute(nb, tmp_path / "book" / "chapters" / "01_chart.ipynb", "fast", cwd=tmp_path)
    shutil.rmtree(tmp_path / "work")
    build_book(tmp_path)  # raises SystemExit on a -W warning or an external load
    html = tmp_path / "_build" / "html"
    page = (html / "book" / "chapters" / "01_chart.html").read_text()
    assert "vegaEmbed(document.currentScript.previousElementSibling" in page
    assert (html / "_static" / "vega-bundle.js").stat().st_size > 100_000
    assert (html / "_static" / "mathjax" / "tex-chtml.js").exists()
    assert check_offline(html) == []
    assert check_quiet(html) == [] and "to the page" in page
    assert "Loading weights" not in page and "Converting: 100%" not in page
    assert "Milano and Nolfi" in (html / "book" / "intro.html").read_text()  # the citation resolved


def test_repository_book_is_offline_when_built():
    html = ROOT / "_build" / "html"
    if not html.exists():
        pytest.skip("the book has not been built in this checkout (make book)")
    assert check_offline(html) == []


@pytest.mark.parametrize("command", ["book", "demos", "train", "embed", "align", "student"])
def test_command_line_help(command):
    proc = subprocess.run([sys.executable, "-m", "lva", command, "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "--profile" in proc.stdout


EXERCISE = '''# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## Exercises
#
# ```{exercise} Double it
# :label: ex-double
#
# Compute twice 21.
# ```
#
# ```{solution-start} ex-double
# :class: dropdown
# ```

# %% tags=["solution"]
answer = 2 * 21
print(answer)

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} Halve it
# :label: ex-halve
#
# Halve the answer.
# ```
#
# ```{solution-start} ex-halve
# :class: dropdown
# ```

# %% tags=["solution"]
half = None
# --- your code below ---
half = answer // 2
print(half)

# %% [markdown]
# ```{solution-end}
# ```
#
# A closing remark.
'''


def test_student_copy_drops_solutions_and_still_runs(tmp_path):
    import nbformat

    from lva.book import student_copy

    (tmp_path / "nb").mkdir()
    source = tmp_path / "nb" / "01_ex.py"
    source.write_text(EXERCISE)
    dest = student_copy(source, tmp_path / "student" / "01_ex.ipynb")
    nb = nbformat.read(dest, as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells)
    assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells)
    assert "2 * 21" not in text and "solution-start" not in text and "solution-end" not in text
    assert "**Exercise: Double it**\n\nCompute twice 21." in text and "A closing remark." in text  # the exercise stays
    assert "```" not in text and ":label:" not in text  # as plain Markdown: Jupyter renders no MyST directive
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "# your answer here" in code  # no marker: an empty answer cell
    assert "half = None\n# --- your code below ---" in code  # the starter code above the marker stays
    assert "answer // 2" not in text
    execute(dest, tmp_path / "run.ipynb", "fast", cwd=tmp_path)  # what is left still executes


def test_book_notebooks_run_the_whole_solution_without_the_starter_marker(tmp_path):
    source = tmp_path / "01_ex.py"
    source.write_text(EXERCISE)
    import nbformat

    nb = nbformat.read(to_ipynb(source, tmp_path / "01_ex.ipynb"), as_version=4)
    solutions = [c.source for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions[1] == "half = None\nhalf = answer // 2\nprint(half)"


def test_plain_markdown_and_starter_code():
    from lva.book import plain_markdown, starter_code

    myst = "Intro.\n\n```{exercise} Title here\n:label: ex-x\n:class: hard\n\nDo *this*.\n\nThen that.\n```\n"
    assert plain_markdown(myst) == "Intro.\n\n**Exercise: Title here**\n\nDo *this*.\n\nThen that."
    assert plain_markdown("```{exercise}\n:label: ex-y\n\nNo title.\n```") == "**Exercise**\n\nNo title."
    assert starter_code("x = 1\n  # --- your code below ---  \ny = 2") == "x = 1\n  # --- your code below ---  "
    assert starter_code("y = 2") == "# your answer here"


def test_repository_student_copies_have_no_solutions(tmp_path):
    import nbformat

    from lva.book import write_student

    paths = write_student(out_dir=tmp_path)
    assert [p.stem for p in paths] == [p.stem for p in find_notebooks(ROOT / "notebooks")]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells), path.name
        assert not any("solution-start" in c.source for c in nb.cells), path.name
        assert not any("{exercise}" in c.source for c in nb.cells), path.name
        assert sum("**Exercise: " in c.source for c in nb.cells if c.cell_type == "markdown") >= 1, path.name
    starters = [c.source for path in paths for c in nbformat.read(path, as_version=4).cells if STARTER_MARKER in c.source]
    assert len(starters) >= 3  # chapters 1-3 give starter code for some exercises


@pytest.mark.parametrize("command", ["embed", "align"])
def test_command_line_rejects_unknown_models_naming_the_known_ones(command, tmp_path):
    """At once (checked before torch is imported), in one line, writing nothing."""
    proc = subprocess.run(
        [sys.executable, "-m", "lva", command, "--models", "minilm,no-such-model"], capture_output=True, text=True, cwd=ROOT
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
    reader = ("import mmap, sys; f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); "
              "sum(m[i] for i in range(0, len(m), 4096)); print('ready', flush=True); sys.stdin.read()")
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
    out = subprocess.run([sys.executable, "-c", measure, reader, str(shared)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 0.19 <= float(out.stdout) < 0.3
