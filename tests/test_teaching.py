"""Licences, citation, provenance in every page's footer, and the teacher's page."""

import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from lva.book import find_notebooks
from lva.provenance import PROFILE_VARIABLE, Provenance, executed_profiles, package_version, provenance

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_citation_cff_cites_the_book_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors", "type", "abstract"):
        assert cff[key], key
    assert str(cff["version"]) == PROJECT["version"] == package_version()
    assert set(cff["license"]) == {PROJECT["license"]["text"], "CC-BY-4.0"}  # code, then text and figures
    bib = (ROOT / "book" / "references.bib").read_text()
    eprint = re.search(r"@misc\{milano2026alignment,.*?eprint\s*=\s*\{([^}]+)\}", bib, re.DOTALL).group(1)
    paper = next(r for r in cff["references"] if "Milano" in [a.get("family-names") for a in r["authors"]])
    assert [a["family-names"] for a in paper["authors"]] == ["Milano", "Nolfi"] and paper["year"] == 2026
    assert paper["title"] in bib and eprint in paper["url"]
    assert f"arXiv:{eprint}" in [i["value"] for i in paper["identifiers"]]


def test_licence_files_match_what_pyproject_and_the_footer_say():
    from lva.sphinxext import LICENCES_HTML

    assert PROJECT["license"]["text"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    content = (ROOT / "LICENSE-CONTENT.md").read_text()
    assert "CC BY 4.0" in content and "https://creativecommons.org/licenses/by/4.0/" in content
    assert "CC BY 4.0" in LICENCES_HTML and "MIT" in LICENCES_HTML


def test_provenance_names_the_commit_and_marks_changes(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)
    assert provenance(tmp_path).commit is None  # not a git checkout: no commit, and no error
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.txt").write_text("one")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert provenance(tmp_path).commit == head
    (tmp_path / "a.txt").write_text("two")
    assert provenance(tmp_path).commit == head + "+changes"


def test_the_profile_comes_from_the_runner_else_from_the_executed_chapters(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)
    chapters = tmp_path / "book" / "chapters"
    chapters.mkdir(parents=True)
    assert provenance(tmp_path).profile is None
    for name, profile in (("01_a", "fast"), ("02_b", "fast")):
        meta = {"metadata": {"papermill": {"parameters": {"profile": profile}}}, "cells": []}
        (chapters / f"{name}.ipynb").write_text(json.dumps(meta))
    assert executed_profiles(chapters) == ["fast"] and provenance(tmp_path).profile == "fast"
    monkeypatch.setenv(PROFILE_VARIABLE, "full")
    origin = provenance(tmp_path)
    assert origin.profile == "full"
    assert Provenance("1.2", "abc1234", "fast").text() == "lva 1.2 · commit abc1234 · profile fast"
    assert Provenance("1.2", None, None).text() == "lva 1.2 · no git commit recorded"


def _exercise_titles(source: Path) -> list[str]:
    return re.findall(r"^# ```\{exercise\}[ \t]*(.*?)[ \t]*$", source.read_text(), re.MULTILINE)


def test_the_teaching_page_lists_every_exercise_by_number_and_title():
    """Exercise C.N is the N-th exercise of chapter C (the numbers ``check`` takes)."""
    page = (ROOT / "book" / "teaching.md").read_text()
    listed = re.findall(r"^\| (\d+\.\d+) \| ([^|]+?) \|", page, re.MULTILINE)
    expected = [
        (f"{int(source.name[:2])}.{n}", title)
        for source in find_notebooks(ROOT / "notebooks")
        for n, title in enumerate(_exercise_titles(source), start=1)
    ]
    assert len(expected) >= 6
    assert listed == expected, "book/teaching.md's exercise table and the chapters' exercises disagree"


def test_the_teaching_page_is_in_the_reference_part_and_types_no_measured_time():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    reference = next(p for p in toc["parts"] if p["caption"] == "Reference")
    assert {"file": "book/teaching"} in reference["chapters"]
    page = (ROOT / "book" / "teaching.md").read_text()
    assert "_generated/ledger-times-fast.md" in page  # the run times come from the ledger
    prose = page.split("## How long the chapters take to run")[1].split("## Preparing a class")[0]
    assert not re.search(r"\d+(\.\d+)? ?(s|min|GB)\b", prose)


@pytest.mark.parametrize("target", ["lab", "classroom-check"])
def test_makefile_has_the_teaching_targets(target):
    proc = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert {"lab": "-m lva.lab", "classroom-check": "-m lva.classroom"}[target] in proc.stdout
