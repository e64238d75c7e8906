"""The classroom check: every chapter runs against a read-only shared cache, and nothing is written to it."""

import os

import pytest

from lva import classroom

READ = """# %% tags=["parameters"]
profile = "fast"

# %%
import os
from pathlib import Path
print(Path(os.environ["LVA_CACHE"], "artifact.txt").read_text())
"""
WRITE = (
    READ
    + """
# %%
Path(os.environ["LVA_CACHE"], "new.txt").write_text("a student's run wrote this")
"""
)


@pytest.fixture
def built(tmp_path):
    cache, notebooks = tmp_path / "cache", tmp_path / "notebooks"
    cache.mkdir()
    notebooks.mkdir()
    (cache / "artifact.txt").write_text("built once")
    (notebooks / "01_read.py").write_text(READ)
    return cache, notebooks


def test_listing_changes_name_every_added_removed_and_modified_path(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_text("2")
    before = classroom.listing(tmp_path)
    (tmp_path / "a").write_text("11")
    (tmp_path / "sub" / "b").unlink()
    (tmp_path / "c").write_text("3")
    assert classroom.changes(before, classroom.listing(tmp_path)) == [
        "added: c",
        "modified: .",
        "modified: a",
        "modified: sub",
        "removed: sub/b",
    ]  # folders' times too
    assert classroom.changes(before, before) == []


def test_a_read_only_cache_that_serves_every_chapter_passes(built):
    cache, notebooks = built
    assert classroom.check(cache, "fast", notebooks) == []
    assert sorted(p.name for p in cache.iterdir()) == ["artifact.txt"]


@pytest.mark.parametrize("mount", [True, False], ids=["read-only mount", "listings"])
def test_a_chapter_that_writes_to_the_cache_fails_the_check(built, monkeypatch, mount):
    cache, notebooks = built
    (notebooks / "01_read.py").write_text(WRITE)
    if not mount:  # what a machine without mount namespaces does
        monkeypatch.setattr(classroom, "_namespace_command", lambda *args: None)
    elif classroom._namespace_command(cache, cache, ["true"]) is None or os.name != "posix":
        pytest.skip("no unshare here")
    problems = classroom.check(cache, "fast", notebooks)
    if mount:  # the write fails, and with it the chapter
        assert len(problems) == 1 and "a chapter failed" in problems[0]
    else:
        assert problems == ["the cache changed: added: new.txt", "the cache changed: modified: ."]


def test_a_missing_cache_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="make book PROFILE=fast"):
        classroom.check(tmp_path / "nothing", "fast")
