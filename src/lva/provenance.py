"""Where a build came from: the package version, the git commit and the profile its chapters ran with.

The book prints them at the foot of every page (:mod:`lva.sphinxext`), so a teacher can tell which
version the students used, and a reader which code made a figure.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

#: The book runner (:func:`lva.book.run`) names the profile it executed the chapters with here.
PROFILE_VARIABLE = "LVA_BOOK_PROFILE"


@dataclass(frozen=True)
class Provenance:
    """A build's origin: ``commit`` is :func:`lva.ledger.code_version`'s short hash (``+changes`` when
    tracked files differ from it) or None outside a git checkout; ``profile`` is None when no
    executed chapter says."""

    version: str
    commit: str | None
    profile: str | None

    def text(self) -> str:
        """One line: ``lva 0.1.0 · commit 1a2b3c4 · profile fast`` (the parts that are known)."""
        parts = [f"lva {self.version}"]
        parts.append(f"commit {self.commit}" if self.commit else "no git commit recorded")
        if self.profile:
            parts.append(f"profile {self.profile}")
        return " · ".join(parts)


def package_version() -> str:
    """The installed ``lva`` distribution's version, else the package's ``__version__``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lva")
    except PackageNotFoundError:
        from . import __version__

        return __version__


def executed_profiles(chapters: Path) -> list[str]:
    """The profiles papermill recorded in the executed notebooks of ``chapters`` (sorted, distinct)."""
    found = set()
    for path in chapters.glob("*.ipynb"):
        try:
            meta = json.loads(path.read_text()).get("metadata", {})
        except (OSError, ValueError):
            continue
        profile = meta.get("papermill", {}).get("parameters", {}).get("profile")
        if isinstance(profile, str):
            found.add(profile)
    return sorted(found)


def provenance(root: Path, chapters: Path | None = None) -> Provenance:
    """The provenance of a book in ``root``: the profile from :data:`PROFILE_VARIABLE` when the runner
    set it, else from the executed chapters (``root/book/chapters`` unless ``chapters`` is given)."""
    profile = os.environ.get(PROFILE_VARIABLE) or None
    if profile is None:
        profile = " + ".join(executed_profiles(chapters or root / "book" / "chapters")) or None
    from .ledger import code_version

    commit = code_version(root)
    return Provenance(package_version(), None if commit == "unknown" else commit, profile)
