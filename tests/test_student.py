"""Student copies (solutions cut to starter code, MyST as plain Markdown) and the book without solutions."""

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from lva import markup
from lva.bibtex import latex_text, read_bib
from lva.book import STARTER_MARKER, execute, find_notebooks, to_ipynb
from lva.student import (
    build_student_html,
    check_no_solutions,
    glued_values,
    relink,
    solution_free,
    starter_code,
    student_copy,
    write_student,
)

ROOT = Path(__file__).resolve().parents[1]

#: Raw MyST that Jupyter would show as text: a role, a directive (backtick or colon fence), a target, a block break.
RAW_MYST = re.compile(r"\{[A-Za-z][\w:.+-]*\}`|```\{|:::\{|^[ \t]*\([^()\s]+\)=[ \t]*$|^\+\+\+", re.MULTILINE)

EXERCISE = """# %% tags=["parameters"]
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
"""

BIB = r"""@article{smith2020a,
  author  = {Smith, Jane and S{\o}gaard, Anders},
  title   = {{A} Study of \& Things},
  journal = {Journal of Tests},
  year    = {2020},
  url     = {https://example.org/a}
}

@misc{team2021b,
  author = {{Test Team}},
  title  = "Report",
  year   = 2021,
  eprint = {2101.00001},
  archivePrefix = {arXiv}
}

@inproceedings{doe2019c,
  author    = {Doe, John and Roe, Richard and Poe, Edgar},
  title     = {Three Authors},
  booktitle = {Proceedings},
  year      = {2019}
}
"""


def context(tmp_path: Path, glue=None, chapter=3) -> markup.Context:
    """A chapter-3 context with a two-page book: chapter 3 (labels, an exercise) and chapter 1."""
    (tmp_path / "refs.bib").write_text(BIB)
    (tmp_path / "01_intro.py").write_text("# %% [markdown]\n# # 1. The start\n#\n# (sec-one)=\n# ## 1. Setting up\n")
    (tmp_path / "03_eval.py").write_text(
        "# %% [markdown]\n# (ch-eval)=\n# # 3. Evaluation\n#\n# ## 1. Data\n#\n"
        "# (sec-agent)=\n# ## 2. Evaluating the agent\n"
        "#\n# ```{figure} plot.png\n# :label: fig-curve\n#\n# The curve.\n# ```\n#\n# $$ x = 1 $$ (eq-one)\n#\n"
        "# ```{exercise} First\n# :label: ex-first\n#\n# Text.\n# ```\n#\n# ```{exercise} Second\n# :label: ex-second\n"
        "#\n# Text.\n# ```\n#\n# (sec-end)=\n# ## Summary\n"
    )
    (tmp_path / "guide.md").write_text("# The guide\n\n(guide-sec)=\n## Tips\n")
    book = markup.book_index(
        [tmp_path / "01_intro.py", tmp_path / "03_eval.py", tmp_path / "guide.md"], tmp_path / "refs.bib"
    )
    return markup.Context(chapter=chapter, book=book, glue=glue)


# --- student copies of a small chapter --------------------------------------------------------------------------


def test_student_copy_drops_solutions_and_still_runs(tmp_path):
    (tmp_path / "nb").mkdir()
    source = tmp_path / "nb" / "01_ex.py"
    source.write_text(EXERCISE)
    dest = student_copy(source, tmp_path / "student" / "01_ex.ipynb")
    nb = nbformat.read(dest, as_version=4)
    nbformat.validate(nb)
    text = "\n".join(c.source for c in nb.cells)
    assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells)
    assert "2 * 21" not in text and "solution-start" not in text and "solution-end" not in text
    assert "**Exercise 1.1: Double it**\n\nCompute twice 21." in text and "A closing remark." in text
    assert "**Exercise 1.2: Halve it**" in text
    assert "```" not in text and ":label:" not in text  # as plain Markdown: Jupyter renders no MyST directive
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "# your answer here" in code  # no marker: an empty answer cell
    assert "half = None\n# --- your code below ---" in code  # the starter code above the marker stays
    assert "answer // 2" not in text
    assert nb.metadata["lva"]["student"]["exercises"] == 2
    execute(dest, tmp_path / "run.ipynb", "fast", cwd=tmp_path)  # what is left still executes


def test_book_notebooks_run_the_whole_solution_without_the_starter_marker(tmp_path):
    source = tmp_path / "01_ex.py"
    source.write_text(EXERCISE)
    nb = nbformat.read(to_ipynb(source, tmp_path / "01_ex.ipynb"), as_version=4)
    solutions = [c.source for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert solutions[1] == "half = None\nhalf = answer // 2\nprint(half)"


def test_starter_code():
    assert starter_code("x = 1\n  # --- your code below ---  \ny = 2") == "x = 1\n  # --- your code below ---  "
    assert starter_code("y = 2") == "# your answer here"


GLUED = """# %% [markdown]
# # 2. Glued
#
# There are {glue:text}`n_colors` colours, a share of {glue:text}`share:.1%`, named {glue:text}`name`,
# and {glue:text}`never_glued` of something.
"""


def executed_with_glue(path: Path) -> Path:
    """A notebook as papermill leaves it after ``glue(..., display=False)`` calls: display_data outputs
    whose metadata names the value and whose mime types carry myst-nb's prefix."""
    prefix = "application/papermill.record/"
    outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={prefix + "text/plain": text},
            metadata={"scrapbook": {"mime_prefix": prefix, "name": name}},
        )
        for name, text in (("n_colors", "6"), ("share", "0.1234"), ("name", "'Ada'"))
    ]
    cell = nbformat.v4.new_code_cell("glue(...)", outputs=outputs)
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def test_glued_values_come_from_the_executed_chapter(tmp_path):
    executed = executed_with_glue(tmp_path / "02_glued.ipynb")
    assert glued_values(executed) == {
        "n_colors": {"text/plain": "6"},
        "share": {"text/plain": "0.1234"},
        "name": {"text/plain": "'Ada'"},
    }
    (tmp_path / "nb").mkdir()
    source = tmp_path / "nb" / "02_glued.py"
    source.write_text(GLUED)
    nb = nbformat.read(student_copy(source, tmp_path / "out" / "02_glued.ipynb", executed), as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "There are 6 colours, a share of 12.3%, named Ada,\nand [never_glued] of something." in text
    assert nb.cells[0].source.startswith("# 2. Glued\n\n> Values in square brackets, such as [never_glued]")
    assert nb.metadata["lva"]["student"]["missing"] == ["never_glued"]
    assert not RAW_MYST.search(text)


def test_without_an_executed_chapter_glue_reads_as_a_bracketed_name(tmp_path):
    (tmp_path / "nb").mkdir()
    source = tmp_path / "nb" / "02_glued.py"
    source.write_text(GLUED)
    nb = nbformat.read(student_copy(source, tmp_path / "out" / "02_glued.ipynb", tmp_path / "none.ipynb"), as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "There are [n_colors] colours, a share of [share]" in text and not RAW_MYST.search(text)
    assert nb.cells[0].source.startswith(
        "# 2. Glued\n\n> Values in square brackets, such as [n_colors], are computed when this chapter runs"
    )


# --- the conversions, one by one ----------------------------------------------------------------------------------


def test_glue_roles_format_as_myst_nb_does(tmp_path):
    ctx = context(
        tmp_path,
        glue={
            "x": {"text/plain": "0.5"},
            "s": {"text/plain": "'word'"},
            "md": {"text/plain": "'plain'", "text/markdown": "**bold**"},
        },
    )
    assert (
        markup.to_markdown("{glue:text}`x` {glue:text}`x:.0%` {glue:text}`x:.2f` {glue:text}`s`", ctx)
        == "0.5 50% 0.50 word"
    )
    assert markup.to_markdown("{glue}`md` {glue:md}`md` {glue:text}`md`", ctx) == "**bold** **bold** plain"
    assert markup.to_markdown("{glue:text}`other.ipynb::x:.1f`", ctx) == "0.5"
    assert markup.format_plain_text("3", "d") == "3" and markup.format_plain_text("'a'", "") == "a"


def test_citations_are_author_year_with_a_reference_list(tmp_path):
    ctx = context(tmp_path)
    text = "As {cite:t}`smith2020a` showed {cite:p}`doe2019c,team2021b`; see {cite}`smith2020a`."
    assert markup.to_markdown(text, ctx) == (
        "As Smith and Søgaard (2020) showed (Doe et al., 2019; Test Team, 2021); see (Smith and Søgaard, 2020)."
    )
    refs = markup.references_markdown(ctx)
    assert refs.startswith("## References\n\n- John Doe, Richard Roe and Edgar Poe (2019). Three Authors.")
    assert (
        "- Jane Smith and Anders Søgaard (2020). A Study of & Things. *Journal of Tests*. <https://example.org/a>"
        in refs
    )
    assert "- Test Team (2021). Report. *arXiv:2101.00001*." in refs
    assert markup.references_markdown(markup.Context()) == ""  # no citation, no list
    with pytest.raises(ValueError, match="nosuchkey.*known keys: doe2019c, smith2020a, team2021b"):
        markup.to_markdown("{cite:p}`nosuchkey`", ctx)


def test_read_bib_and_latex_text():
    assert (
        latex_text(r"Sch{\"o}nemann, {\L}ukasz S{\o}gaard \'{e}t\'e 1--10 A~B \& C")
        == "Schönemann, Łukasz Søgaard été 1–10 A B & C"
    )
    refs = read_bib(ROOT / "book" / "references.bib")
    assert refs["milano2026alignment"].authors() == "Milano and Nolfi" and refs["milano2026alignment"].year == "2026"
    assert refs["hui2024qwen25coder"].authors() == "Hui et al."  # "and others"
    assert refs["gemma2025gemma3"].authors() == "Gemma Team"  # an institution in braces
    for ref in refs.values():  # every entry reads as text
        assert not re.search(r"[{}\\]", ref.entry), ref.entry


def test_cross_references_name_chapters_and_sections(tmp_path):
    ctx = context(tmp_path)
    convert = lambda text: markup.to_markdown(text, ctx)  # noqa: E731
    assert convert("See {ref}`sec-agent`.") == "See chapter 3, section 2 (Evaluating the agent)."
    assert convert("{ref}`ch-eval`, {ref}`sec-one`") == "chapter 3 (Evaluation), chapter 1, section 1 (Setting up)"
    assert convert("{ref}`the setup <sec-one>`") == "the setup"
    assert convert("{numref}`ex-second`, {numref}`Exercise %s <ex-first>`") == "Exercise 3.2, Exercise 3.1"
    assert convert("{numref}`fig-curve`") == "the figure in chapter 3, section 2 (Evaluating the agent)"
    assert convert("{ref}`sec-end`") == "chapter 3, section \u201cSummary\u201d"
    assert convert("{eq}`eq-one`") == "the equation in chapter 3, section 2 (Evaluating the agent)"
    assert (
        convert("{doc}`01_intro` and {doc}`../guide`, {ref}`guide-sec`")
        == "chapter 1 (The start) and the page “The guide”, the section “Tips” of the page “The guide”"
    )
    assert (
        convert("{math}`x^2` and {sub}`2`, {abbr}`CKA (centred kernel alignment)`, {term}`a word <w>`")
        == "$x^2$ and <sub>2</sub>, CKA, a word"
    )
    assert markup.exercise_numbers(tmp_path / "03_eval.py") == {"ex-first": "3.1", "ex-second": "3.2"}
    with pytest.raises(ValueError, match="NN_name"):
        markup.exercise_numbers(tmp_path / "guide.md")


def test_directives_become_plain_markdown(tmp_path):
    ctx = context(tmp_path)
    text = (
        "(a-target)=\n## Head\n\n```{note}\nRead *this*.\n```\n\n:::{admonition} Careful\n:class: tip\n\nTwo\n"
        "lines.\n:::\n\n```{exercise} Try\n:label: ex-t\n\nDo {math}`x`.\n```\n\n```{solution-start} ex-t\n"
        ":class: dropdown\n```\n\n```{solution-end}\n```\n\n```{figure} p.png\n:alt: A plot\n\nIts caption.\n"
        "```\n\n+++\n% a comment\n\n```{math}\na_{i}\n```\n\n$$ y $$ (eq-y)\n\n````{warning} Nested\n"
        "```{tip}\nInside.\n```\n````\n\n```{code-block} python\nx = {ref}`kept`\n```\n\n```python\n"
        'y = "{cite:p}`kept`"\n```\n\nInline `{ref}` stays code.'
    )
    out = markup.to_markdown(text, ctx)
    assert out == (
        "## Head\n\n> **Note**\n>\n> Read *this*.\n\n> **Careful**\n>\n> Two\n> lines.\n\n**Exercise 3.1: Try**\n\n"
        "Do $x$.\n\n![A plot](p.png)\n\n*Its caption.*\n\n$$\na_{i}\n$$\n\n$$ y $$\n\n> **Warning: Nested**\n>\n"
        '> > **Tip**\n> >\n> > Inside.\n\n```python\nx = {ref}`kept`\n```\n\n```python\ny = "{cite:p}`kept`"\n```\n\n'
        "Inline `{ref}` stays code."
    )
    assert ctx.exercises == 1 and ctx.replaced["roles"] == 1 and ctx.replaced["directives"] == 10


def test_strip_solutions_keeps_everything_else():
    text = "```{exercise} A\n:label: ex-a\n\nDo.\n```\n\n```{solution-start} ex-a\n:class: dropdown\n```\n"
    assert markup.strip_solutions(text) == "```{exercise} A\n:label: ex-a\n\nDo.\n```"
    assert markup.strip_solutions("```{solution-end}\n```\n\nAfter.") == "After."
    assert markup.strip_solutions(":::{solution} ex-a\nAnswer.\n:::\nKept.") == "Kept."


def test_relink_points_book_links_at_the_pages_from_the_copy(tmp_path):
    chapters, student = tmp_path / "book" / "chapters", tmp_path / "student"
    text = (
        "[times](../reproduce.md#fast), [the\npage](../models.md), [web](https://x.org/a.md), [here](#sec), "
        "[chapter 5](05_extraction.ipynb)"
    )
    assert relink(text, chapters, student) == (
        "[times](../book/reproduce.md#fast), [the\npage](../book/models.md), [web](https://x.org/a.md), [here](#sec), "
        "[chapter 5](05_extraction.ipynb)"
    )  # a chapter's copy is beside this one


# --- the repository's chapters ------------------------------------------------------------------------------------


def test_repository_student_copies_have_no_solutions_and_no_raw_myst(tmp_path):
    """Written without executing anything, and without the book built (glued values then read as names)."""
    paths = write_student(out_dir=tmp_path, chapters_dir=tmp_path / "not-built")
    sources = find_notebooks(ROOT / "notebooks")
    assert [p.stem for p in paths] == [p.stem for p in sources]
    for path, source in zip(paths, sources):
        nb = nbformat.read(path, as_version=4)
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells), path.name
        markdown = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        raw = [m.group(0) for m in RAW_MYST.finditer(markdown)]
        assert raw == [], f"{path.name}: raw MyST {raw}"
        titles = re.findall(r"^\*\*Exercise (\d+\.\d+)[:*]", markdown, re.MULTILINE)
        assert titles, path.name
        # the numbers answer checks use are the ones the copy prints, in order, chapter-local
        assert sorted(markup.exercise_numbers(source).values(), key=lambda n: int(n.split(".")[1])) == titles
        chapter = int(path.name[:2])
        assert titles == [f"{chapter}.{n}" for n in range(1, len(titles) + 1)]
        if re.search(r"\{cite(:\w+)?\}`", source.read_text()):
            assert nb.cells[-1].source.startswith("## References\n\n- "), path.name
    starters = [
        c.source for path in paths for c in nbformat.read(path, as_version=4).cells if STARTER_MARKER in c.source
    ]
    assert len(starters) >= 3  # chapters 1-3 give starter code for some exercises


# --- the book without solutions -----------------------------------------------------------------------------------


def test_solution_free_removes_solution_cells_and_markers(tmp_path):
    nb = nbformat.read(to_ipynb(_write(tmp_path / "01_ex.py", EXERCISE), tmp_path / "01_ex.ipynb"), as_version=4)
    stream = nbformat.v4.new_output("stream", name="stdout", text="✓ Exercise 1.1: correct, 42.\n")
    nb.cells.append(nbformat.v4.new_code_cell('check("1.1", answer);', outputs=[stream], execution_count=3))
    nbformat.write(nb, tmp_path / "executed.ipynb")
    removed = solution_free(tmp_path / "executed.ipynb", tmp_path / "free.ipynb")
    assert removed == ["answer = 2 * 21\nprint(answer)", "half = None\nhalf = answer // 2\nprint(half)"]
    cells = nbformat.read(tmp_path / "free.ipynb", as_version=4).cells
    text = "\n".join(c.source for c in cells)
    assert "```{exercise} Double it" in text and "solution" not in text and "2 * 21" not in text
    assert cells[-1].source == 'check("1.1", answer);' and cells[-1].outputs == []  # it ran on the solution


def test_check_no_solutions_finds_code_lines_and_blocks(tmp_path):
    (tmp_path / "a.html").write_text('<pre><span class="n">total</span> = <span>sum_of_everything</span>(x)</pre>')
    (tmp_path / "b.html").write_text('<div class="solution dropdown">…</div><pre>print(table)</pre>')
    found = check_no_solutions(tmp_path, ["total = sum_of_everything(x)\nprint(table)"], ["print(table)"])
    assert found == ["a.html: total = sum_of_everything(x)", "b.html: a solution block"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_student_edition_builds_without_solutions(tmp_path):
    """A miniature book with one executed chapter: built with -W -n, its exercise shown, its solutions gone."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    (tmp_path / "book" / "_static").mkdir(parents=True)
    shutil.copy(ROOT / "book" / "_static" / "lva.css", tmp_path / "book" / "_static")
    _write(tmp_path / "book" / "references.bib", BIB)
    _write(tmp_path / "book" / "intro.md", "# Mini\n\nAs in {cite:t}`smith2020a`.\n\n```{bibliography}\n```\n")
    _write(tmp_path / "_toc.yml", "format: jb-book\nroot: book/intro\nchapters:\n- file: book/chapters/01_ex\n")
    # the chapter as the runner writes it (not executed: the build renders sources and what outputs there are)
    to_ipynb(
        _write(tmp_path / "01_ex.py", "# %% [markdown]\n# # One\n\n" + EXERCISE),
        tmp_path / "book" / "chapters" / "01_ex.ipynb",
    )
    html_dir = build_student_html(tmp_path)  # raises SystemExit on a warning, a network load or a solution
    page = (html_dir / "book" / "chapters" / "01_ex.html").read_text()
    assert "Double it" in page and "Compute twice 21." in page
    assert "2 * 21" not in page and "answer // 2" not in page and 'class="solution' not in page
    assert html_dir == tmp_path / "_build" / "student-html" / "_build" / "html"
    assert (tmp_path / "book" / "chapters" / "01_ex.ipynb").exists()  # the book's own chapter is untouched
