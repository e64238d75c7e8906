"""The notebook runner: jupytext ``.py`` -> ``.ipynb`` -> papermill (with the profile) -> Jupyter Book.

``python -m lva book --profile fast`` executes every ``notebooks/NN_name.py`` in order, writes the
executed copies where ``_toc.yml`` points (``book/chapters/``), prints each notebook's wall time,
stops with a non-zero exit at the first failing notebook, then builds the book with ``-W -n`` and
checks that the HTML loads nothing from the network.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import ALL_PROFILES, PAPER_PROFILE, repo_root

CHAPTERS_DIR = Path("book") / "chapters"
_EXTERNAL = re.compile(
    r"""<(script|link)\b[^>]*\b(src|href)=["'](https?:)?//"""
    # a chart drawn by altair's default renderer loads vega from a CDN at run time
    r"""|["'](https?:)?//cdn\.jsdelivr\.net/npm/vega[^"']*["']""",
    re.IGNORECASE,
)
# a cell's stderr output as myst-nb renders it: <div class="output stderr ..."><div class="highlight"><pre>...
_STDERR = re.compile(r"""<div class="output stderr[^"]*">(.*?)</pre>""", re.DOTALL)


#: In a solution cell, this line ends the starter code: student copies keep the lines above it
#: (and the marker itself), the book shows the whole solution without it.
STARTER_MARKER = "# --- your code below ---"


class NotebookFailed(RuntimeError):
    """A notebook raised during execution."""


def find_notebooks(folder: Path) -> list[Path]:
    """The chapter sources ``NN_name.py`` in a folder, in chapter order."""
    return sorted(p for p in folder.glob("[0-9][0-9]_*.py"))


def toc_chapters(root: Path) -> list[str]:
    """Chapter stems that ``_toc.yml`` points into ``book/chapters/`` (in toc order)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    prefix = CHAPTERS_DIR.as_posix() + "/"
    return [f[len(prefix) :] for f in files if f.startswith(prefix)]


def check_toc(notebooks: list[Path], root: Path) -> None:
    """Every notebook is in the toc and every toc chapter has a notebook: nothing is skipped silently."""
    stems = [p.stem for p in notebooks]
    listed = toc_chapters(root)
    missing = [s for s in stems if s not in listed]
    orphans = [s for s in listed if s not in stems]
    if missing or orphans:
        raise SystemExit(
            f"_toc.yml and notebooks/ disagree: notebooks not in the toc: {missing or 'none'}; "
            f"toc chapters without a notebook: {orphans or 'none'}"
        )


def to_ipynb(source: Path, dest: Path, keep_starter_markers: bool = False) -> Path:
    """Convert a jupytext percent script into a notebook with the python3 kernel set.

    :data:`STARTER_MARKER` lines are removed from solution cells unless ``keep_starter_markers``.
    """
    import jupytext

    nb = jupytext.read(source)
    if not keep_starter_markers:
        for cell in nb.cells:
            if "solution" in cell.metadata.get("tags", []):
                cell.source = "\n".join(line for line in cell.source.split("\n") if line.strip() != STARTER_MARKER)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(nb, dest, fmt="ipynb")
    return dest


def _own_memory(process: Any) -> int:
    """``process``'s share of memory in bytes: its PSS where the system reports one, else its RSS."""
    if sys.platform.startswith("linux"):
        return int(process.memory_full_info().pss)
    return int(process.memory_info().rss)


class PeakMemory:
    """The peak of the summed memory of this process's children (a notebook's kernel and the worker
    processes it starts), sampled every ``interval`` seconds while the block runs: what a machine
    needs free to run a chapter. ``peak_gb`` after the block.

    Each process counts its proportional set size (PSS) where the system reports it (Linux): a
    page shared by several processes (torch's libraries, a file they all map) counts once in the
    sum, where summed resident sizes would count it once per process. Elsewhere: resident size."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak_gb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += _own_memory(child)
                except psutil.Error:  # it ended between listing and reading
                    pass
            self.peak_gb = max(self.peak_gb, total / 1e9)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def execute(notebook: Path, output: Path, profile: str, cwd: Path, memory: PeakMemory | None = None) -> float:
    """Run one notebook with papermill; returns its wall time, raises :class:`NotebookFailed`.
    ``memory``, if given, records the peak memory of its kernel and the processes it started."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with memory or contextlib.nullcontext():
            papermill.execute_notebook(
                str(notebook),
                str(output),
                parameters={"profile": profile},
                kernel_name="python3",
                cwd=str(cwd),
                progress_bar=False,
                log_output=False,
                # written once at the end (and on a failing cell, with its error), not before and
                # after every cell: rewriting a chapter whose charts carry their PNGs cost seconds
                request_save_on_cell_execute=False,
            )
    except PapermillExecutionError as err:
        raise NotebookFailed(f"{notebook.stem} failed in cell {err.exec_count}: {err.ename}: {err.evalue}") from err
    _hide_default_parameters(output)
    return time.perf_counter() - start


def _hide_default_parameters(path: Path) -> None:
    """Show only the parameters papermill injected (the profile actually used), not the defaults."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "parameters" in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = [*tags, "remove-cell"]
    nbformat.write(nb, path)


def _matches(html_dir: Path, pattern: re.Pattern[str]) -> Iterator[tuple[Path, re.Match[str]]]:
    """(page relative to ``html_dir``, match) for every match of ``pattern`` in the built HTML."""
    for page in sorted(html_dir.rglob("*.html")):
        for match in pattern.finditer(page.read_text(errors="replace")):
            yield page.relative_to(html_dir), match


def check_offline(html_dir: Path) -> list[str]:
    """``file: tag`` for every script or stylesheet in the built HTML that loads from the network."""
    return [f"{page}: {match.group(0)}" for page, match in _matches(html_dir, _EXTERNAL)]


def check_quiet(html_dir: Path) -> list[str]:
    """``file: first line`` for every stderr output block on a built page: library progress bars,
    warnings and log lines do not belong in the book (see ``lva.models.quiet``)."""
    found = []
    for page, match in _matches(html_dir, _STDERR):
        text = re.sub(r"<[^>]+>", "", match.group(1)).strip().splitlines()
        found.append(f"{page}: {text[0][:120] if text else '(empty)'}")
    return found


def build_book(root: Path) -> None:
    """``jupyter-book build . -W -n --keep-going`` in ``root``, then the offline check. The
    reference pages' tables (the ledger of runs, the profiles, the models) are generated first."""
    from .reference import write_pages
    from .viz import write_vega_bundle

    write_vega_bundle(root / "book" / "_static")
    write_pages(root)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe), "build", str(root), "-W", "-n", "--keep-going"]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    if subprocess.run(cmd, cwd=root).returncode != 0:
        raise SystemExit("jupyter-book build failed (warnings are errors: see above)")
    external = check_offline(root / "_build" / "html")
    if external:
        raise SystemExit("the built book loads from the network:\n  " + "\n  ".join(external))
    noisy = check_quiet(root / "_build" / "html")
    if noisy:
        raise SystemExit("the built book shows stderr output (send it to the terminal):\n  " + "\n  ".join(noisy))
    print(f"book built in {time.perf_counter() - start:.1f} s: {root / '_build' / 'html' / 'index.html'}")


def run(
    profile: str, notebooks_dir: Path | None = None, out_dir: Path | None = None, build: bool = True
) -> dict[str, float]:
    """Execute every chapter notebook in order, then (optionally) build the book.

    Returns ``{notebook stem: wall seconds}``. Raises :class:`NotebookFailed` at the first failure.
    """
    if profile not in ALL_PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(ALL_PROFILES)}")
    if profile == PAPER_PROFILE:  # one line and no download when this machine cannot run the paper's models
        from .models.requirements import preflight

        preflight(profile)
    from .config import default_cache_dir
    from .legacy import migrate

    migrate(default_cache_dir())  # a cache of the earlier layout: moved, not rebuilt
    root = repo_root()
    notebooks_dir = notebooks_dir or root / "notebooks"
    out_dir = out_dir or root / CHAPTERS_DIR
    notebooks = find_notebooks(notebooks_dir)
    if not notebooks:
        raise SystemExit(f"no chapter notebooks (NN_name.py) in {notebooks_dir}")
    if build:
        check_toc(notebooks, root)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    os.environ["LVA_NO_PROGRESS"] = "1"  # bars would be frozen text in the rendered pages
    os.environ["LVA_BOOK_PROFILE"] = profile  # the pages' footer names it (lva.provenance)
    from .ledger import code_version

    commit = code_version(root)  # the code the chapters run, for the ledger of runs (lva.ledger)
    times: dict[str, float] = {}
    peaks: dict[str, float] = {}
    work = out_dir / ".src"
    for source in notebooks:
        print(f"[{profile}] {source.stem} ...", flush=True)
        ipynb = to_ipynb(source, work / f"{source.stem}.ipynb")
        memory = PeakMemory()
        times[source.stem] = execute(ipynb, out_dir / f"{source.stem}.ipynb", profile, cwd=root, memory=memory)
        peaks[source.stem] = round(memory.peak_gb, 2)
        print(f"[{profile}] {source.stem}: {times[source.stem]:.1f} s, peak memory {memory.peak_gb:.1f} GB", flush=True)
        from .checks import notebook_results

        failing = [ex for ex, ok in notebook_results(out_dir / f"{source.stem}.ipynb").items() if not ok]
        if failing:  # a solution that does not pass its own answer check (lva.checks)
            raise NotebookFailed(f"{source.stem}: the solutions of exercises {', '.join(failing)} fail their checks")
    from .io import save_json

    save_json(out_dir / f"timings-{profile}.json", times)
    save_json(out_dir / f"commit-{profile}.json", {"commit": commit})
    save_json(
        out_dir / f"memory-{profile}.json",
        {
            "peak_gb_per_notebook": peaks,
            "what": "peak summed memory (PSS on Linux, else RSS) of each notebook's kernel and its workers, GB",
        },
    )
    print(
        f"[{profile}] all notebooks: {sum(times.values()):.1f} s, peak memory {max(peaks.values()):.1f} GB", flush=True
    )
    if build:
        build_book(root)
    return times
