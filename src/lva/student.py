"""Student copies of the chapters, and the book without solutions.

``python -m lva student`` writes ``student/NN_name.ipynb``: each chapter with its solution cells cut
down to their starter code, and its MyST markup as plain Markdown (:mod:`lva.markup`), so that it
reads in Jupyter as it reads in the book: glued values come from the chapter the book build
executed (``book/chapters/NN_name.ipynb``), citations from ``book/references.bib``. With ``--html``
it also builds the book without solutions into ``_build/student-html`` from those executed chapters.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from . import markup
from .book import (
    CHAPTERS_DIR,
    STARTER_MARKER,
    check_offline,
    check_quiet,
    execute,
    find_notebooks,
    to_ipynb,
    toc_chapters,
)
from .config import repo_root

#: Where ``python -m lva student --html`` writes the solution-free book (its pages in ``_build/html`` below).
STUDENT_HTML = Path("_build") / "student-html"
_SOLUTION = "solution"
_LINK = re.compile(r"(?<=\]\()(?P<target>[^()\s#<>]+)(?P<anchor>#[^()\s]*)?(?=\))")
_CHECK = re.compile(r"\bcheck\(\s*[\"']\d+\.\d+[\"']")  # an answer check, lva.checks.check("6.2", ...)
_URL = re.compile(r"^([a-zA-Z][\w+.-]*:|/)")  # a scheme (https:, mailto:) or an absolute path


def starter_code(solution: str) -> str:
    """What a student gets of a solution cell: the lines down to :data:`STARTER_MARKER` (included),
    or ``# your answer here`` when the cell has no marker."""
    lines = solution.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == STARTER_MARKER:
            return "\n".join(lines[: i + 1])
    return "# your answer here"


def relink(text: str, written_for: Path, dest: Path) -> str:
    """Relative links in Markdown ``text`` written for a page in folder ``written_for`` (the book's
    chapters link ``../reproduce.md``), rewritten for a page in folder ``dest``. URLs stay, and so do
    links to pages beside it (``05_extraction.ipynb``): the student copies sit beside each other too."""

    def fix(m: re.Match[str]) -> str:
        if _URL.match(m["target"]):
            return m[0]
        resolved = os.path.normpath(written_for.resolve() / m["target"])
        if Path(resolved).parent == written_for.resolve():
            return m[0]
        target = os.path.relpath(resolved, dest.resolve())
        return Path(target).as_posix() + (m["anchor"] or "")

    return _LINK.sub(fix, text)


def glued_values(executed: Path) -> dict[str, dict[str, str]]:
    """Every value an executed notebook glued (myst-nb ``glue``): ``{name: {mime type: data}}``.

    myst-nb stores each as a ``display_data`` output whose metadata names it (``scrapbook``), its
    data under mime types with a prefix (``application/papermill.record/text/plain``) when
    ``display=False``."""
    import nbformat

    values: dict[str, dict[str, str]] = {}
    for cell in nbformat.read(executed, as_version=4).cells:
        for output in cell.get("outputs", []):
            book = output.get("metadata", {}).get("scrapbook")
            if not book or "name" not in book:
                continue
            prefix = book.get("mime_prefix", "")
            values[book["name"]] = {
                mime[len(prefix) :]: "".join(data) if isinstance(data, list) else str(data)
                for mime, data in output.get("data", {}).items()
                if mime.startswith(prefix)
            }
    return values


def book_index(root: Path, notebooks_dir: Path | None = None) -> markup.Book:
    """What the chapters' labels, documents and citations point at: every chapter of ``notebooks_dir``
    (default ``notebooks/``), the pages in ``book/`` and ``book/references.bib``."""
    documents = [*find_notebooks(notebooks_dir or root / "notebooks"), *sorted((root / "book").glob("*.md"))]
    return markup.book_index(documents, root / "book" / "references.bib")


def student_copy(source: Path, dest: Path, executed: Path | None = None, book: markup.Book | None = None) -> Path:
    """Write the student version of a chapter: solutions removed, starter code kept, plain Markdown.

    Each code cell tagged ``solution`` becomes :func:`starter_code` (its lines above
    :data:`STARTER_MARKER`, or an empty ``# your answer here`` cell). Markdown cells go through
    :func:`lva.markup.to_markdown`, with glued values read from ``executed`` (the chapter as the book
    build ran it; a value it lacks reads :data:`lva.markup.GLUE_MISSING`, explained by a note under
    the title) and labels and citations from ``book`` (default: this repository's, see
    :func:`book_index`); a "References" cell ends a chapter that cites, and links to the book's pages
    point at them from ``dest`` (:func:`relink`). Returns ``dest``; the counts of what was replaced
    are in its metadata (``lva.student``)."""
    import nbformat

    book = book if book is not None else book_index(repo_root(), source.parent)
    glue = glued_values(executed) if executed is not None and executed.exists() else None
    ctx = markup.Context(chapter=markup.chapter_number(source), book=book, glue=glue)
    nb = nbformat.read(
        to_ipynb(source, dest.parent / ".src" / f"{source.stem}.ipynb", keep_starter_markers=True), as_version=4
    )
    cells = []
    for cell in nb.cells:
        if _SOLUTION in cell.metadata.get("tags", []):
            cells.append(nbformat.v4.new_code_cell(starter_code(cell.source)))
            continue
        if cell.cell_type == "markdown":
            cell.source = relink(markup.to_markdown(cell.source, ctx), repo_root() / CHAPTERS_DIR, dest.parent)
            if not cell.source:
                continue
        cells.append(cell)
    references = markup.references_markdown(ctx)
    if references:
        cells.append(nbformat.v4.new_markdown_cell(references))
    if ctx.missing:  # under the title
        note = markup.GLUE_NOTE.format(example=markup.GLUE_MISSING.format(name=ctx.missing[0]))
        if cells and cells[0].cell_type == "markdown" and cells[0].source.startswith("# "):
            title, _, rest = cells[0].source.partition("\n")
            cells[0].source = f"{title}\n\n{note}\n\n{rest.strip()}".strip()
        else:
            cells.insert(0, nbformat.v4.new_markdown_cell(note))
    nb.cells = cells
    nb.metadata["lva"] = {
        "student": {
            **dict(ctx.replaced),
            "exercises": ctx.exercises,
            "cited": len(ctx.cited),
            "glued": len(ctx.glue or {}),
            "missing": sorted(set(ctx.missing)),
        }
    }
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return dest


def write_student(
    notebooks_dir: Path | None = None,
    out_dir: Path | None = None,
    profile: str | None = None,
    chapters_dir: Path | None = None,
) -> list[Path]:
    """Student copies of every chapter in ``student/``, glued values taken from ``chapters_dir``
    (default ``book/chapters/``); with ``profile``, execute each copy as a check."""
    import nbformat

    root = repo_root()
    out_dir = out_dir or root / "student"
    chapters_dir = chapters_dir or root / CHAPTERS_DIR
    book = book_index(root, notebooks_dir)
    written = []
    for source in find_notebooks(notebooks_dir or root / "notebooks"):
        executed = chapters_dir / f"{source.stem}.ipynb"
        dest = student_copy(source, out_dir / f"{source.stem}.ipynb", executed, book)
        done = nbformat.read(dest, as_version=4).metadata["lva"]["student"]
        missing = f", not found there: {', '.join(done['missing'])}" if done["missing"] and executed.exists() else ""
        print(
            f"[student] {source.stem}: {done.get('roles', 0)} roles and {done.get('directives', 0)} directives "
            f"as plain Markdown, {done['exercises']} exercises, {done['cited']} works cited, "
            + (
                f"{done['glued']} glued values read from {executed}"
                if executed.exists()
                else f"no executed chapter {executed}: glued values in brackets"
            )
            + missing,
            flush=True,
        )
        if profile is not None:
            os.environ["LVA_NO_PROGRESS"] = "1"
            seconds = execute(dest, out_dir / ".executed" / dest.name, profile, cwd=root)
            print(f"[student/{profile}] {source.stem}: {seconds:.1f} s", flush=True)
        written.append(dest)
    return written


# --- the book without solutions ------------------------------------------------------------------------------------


def solution_free(executed: Path, dest: Path) -> list[str]:
    """Write ``executed`` (a chapter as the book build ran it) without its solutions: cells tagged
    ``solution`` removed, solution directives cut from the markdown, and the outputs of answer checks
    (``check("6.2", answer)``, which ran on the solution) cleared. Returns the removed cells' code."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    removed = [c.source for c in nb.cells if _SOLUTION in c.metadata.get("tags", [])]
    cells = []
    for cell in nb.cells:
        if _SOLUTION in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "markdown":
            cell.source = markup.strip_solutions(cell.source)
            if not cell.source:
                continue
        elif _CHECK.search(cell.source):
            cell.outputs, cell.execution_count = [], None
        cells.append(cell)
    nb.cells = cells
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    return removed


def check_no_solutions(html_dir: Path, solutions: list[str], shown: list[str]) -> list[str]:
    """``file: line`` for every line of solution code found on a built page, and every solution block.

    A line counts when it is at least 20 characters long and appears in no cell the book keeps
    (``shown``): lines such as ``print(table)`` may also stand elsewhere."""
    kept = {line.strip() for text in shown for line in text.split("\n")}
    lines = {
        line.strip()
        for text in solutions
        for line in text.split("\n")
        if len(line.strip()) >= 20 and line.strip() not in kept
    }
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        raw = page.read_text(errors="replace")
        text = html.unescape(re.sub(r"<[^>]+>", "", raw))
        found += [f"{page.relative_to(html_dir)}: {line}" for line in sorted(lines) if line in text]
        found += [f"{page.relative_to(html_dir)}: a solution block"] * len(re.findall(r'class="solution\b', raw))
    return found


def _stage(root: Path, chapters_dir: Path, stage: Path) -> tuple[list[str], list[str]]:
    """The book's sources in ``stage``, chapters without solutions; returns (solutions removed, cells kept)."""
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(root / "book", stage / "book", ignore=shutil.ignore_patterns("chapters", ".*"))
    shutil.copy(root / "_toc.yml", stage / "_toc.yml")
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    config.setdefault("sphinx", {}).setdefault("config", {})["hide_solutions"] = True
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    solutions, kept = [], []
    for stem in toc_chapters(root):
        executed = chapters_dir / f"{stem}.ipynb"
        if not executed.exists():
            raise SystemExit(f"no executed chapter {executed}: build the book first (make book)")
        dest = stage / CHAPTERS_DIR / f"{stem}.ipynb"
        solutions += solution_free(executed, dest)
        import nbformat

        kept += [c.source for c in nbformat.read(dest, as_version=4).cells]
    return solutions, kept


def build_student_html(root: Path | None = None, chapters_dir: Path | None = None, out: Path | None = None) -> Path:
    """The book without solutions, from the executed chapters in ``chapters_dir`` (default
    ``book/chapters/``), built with ``-W -n`` into ``out`` (default :data:`STUDENT_HTML`): its sources
    are staged in ``out/source``, its pages written to ``out/_build/html``. Checked like the book
    (offline, no stderr) and for solutions: no solution block, no line of solution code."""
    root = root or repo_root()
    chapters_dir = chapters_dir or root / CHAPTERS_DIR
    out = out or root / STUDENT_HTML
    from .reference import write_pages

    write_pages(root)  # the reference pages' generated tables, staged with book/
    solutions, kept = _stage(root, chapters_dir, out / "source")
    from .viz import write_vega_bundle

    write_vega_bundle(out / "source" / "book" / "_static")
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(out / "source"), "-W", "-n", "--keep-going", "--path-output", str(out)]
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=root).returncode != 0:
        raise SystemExit("jupyter-book build of the student edition failed (warnings are errors: see above)")
    html_dir = out / "_build" / "html"
    problems = check_offline(html_dir) + check_quiet(html_dir) + check_no_solutions(html_dir, solutions, kept)
    if problems:
        raise SystemExit("the student edition is not clean:\n  " + "\n  ".join(problems))
    print(f"student edition: {len(solutions)} solution cells removed, {html_dir / 'index.html'}", flush=True)
    return html_dir
