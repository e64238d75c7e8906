"""Code fits the page: the book does not wrap code, so a line longer than the column hides behind
a scrollbar (the browser test, tests/test_browser_book.py, catches it on the built book; this
checks the sources in a second). The main column holds 79 characters of code, an exercise's
solution box 72."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]
MAIN, BOX = 79, 72
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*(\S*)")
#: Fenced blocks the book shows as code (a plain fence, a language, or a code directive).
_CODE = re.compile(r"^(|[\w+-]+|\{code-block\}.*|\{code-cell\}.*|\{code\}.*)$")


def too_long_in_chapter(path: Path) -> list[str]:
    """Code lines of a chapter over the main column's width, or over the solution box's width
    inside its "## Exercises" section (until the next second-level heading)."""
    found, exercises = [], False
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("## "):
                    exercises = line.strip() == "## Exercises"
            continue
        if cell.cell_type != "code":
            continue
        limit = BOX if exercises else MAIN
        found += [
            f"{path.name}: {len(line)} > {limit}: {line}" for line in cell.source.splitlines() if len(line) > limit
        ]
    return found


def too_long_in_page(path: Path) -> list[str]:
    """Lines of a Markdown page's code blocks over the main column's width."""
    found: list[str] = []
    fence: str | None = None
    shown = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence, shown = m.group(2), bool(_CODE.match(m.group(3)))
            continue
        if fence is not None and m and m.group(2).startswith(fence) and not m.group(3):
            fence = None
            continue
        if fence is not None and shown and len(line) > MAIN:
            found.append(f"{path.name}:{number}: {len(line)} > {MAIN}: {line}")
    return found


def test_chapter_code_fits_the_column_and_the_solution_box():
    chapters = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert chapters
    found = [line for path in chapters for line in too_long_in_chapter(path)]
    assert not found, "\n".join(found)


def test_code_blocks_of_the_book_pages_fit_the_column():
    pages = sorted((ROOT / "book").glob("*.md"))
    assert pages
    found = [line for path in pages for line in too_long_in_page(path)]
    assert not found, "\n".join(found)


def test_the_checks_catch_a_long_line(tmp_path):
    chapter = tmp_path / "01_x.py"
    chapter.write_text('# %%\nx = 1\n\n# %% [markdown]\n# ## Exercises\n\n# %%\ny = "' + "a" * 70 + '"\n')
    assert [line.split(":")[1].strip() for line in too_long_in_chapter(chapter)] == [f"{6 + 70 - 1 + 1} > {BOX}"]
    page = tmp_path / "p.md"
    page.write_text("```bash\n" + "b" * 80 + "\n```\n\n```{include} x.md\n" + "c" * 90 + "\n```\n")
    assert len(too_long_in_page(page)) == 1
