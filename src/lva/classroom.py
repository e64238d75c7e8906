"""Check that a built cache, shared read-only, serves every chapter: ``python -m lva.classroom --profile fast``
(``make classroom-check``).

A class shares one cache (``LVA_CACHE``) that nobody may write to. This executes every chapter, its
exercise solutions included, against a read-only view of the cache and fails if a chapter fails or
anything in the cache changed. The view is a read-only bind mount in a private mount namespace
(``unshare -m``; root ignores file permissions, so only a read-only mount stops its writes). Where
mount namespaces are unavailable, the chapters read the cache itself and a listing of its files'
paths, sizes and modification times, taken before and after, shows any write.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from .config import PROFILES, default_cache_dir, repo_root

Listing = dict[str, tuple[int, int]]


def listing(folder: Path) -> Listing:
    """``{relative path: (size, modification time in ns)}`` of ``folder`` (``.``) and every file and
    folder under it: a folder's time also shows a file written and removed again."""
    out: Listing = {".": (0, folder.lstat().st_mtime_ns)}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(folder))] = (st.st_size if name in filenames else 0, st.st_mtime_ns)
    return out


def changes(before: Listing, after: Listing) -> list[str]:
    """One line per path added, removed or modified between two listings, sorted."""
    lines = [f"added: {p}" for p in after.keys() - before.keys()]
    lines += [f"removed: {p}" for p in before.keys() - after.keys()]
    lines += [f"modified: {p}" for p in before.keys() & after.keys() if before[p] != after[p]]
    return sorted(lines)


def read_only(folder: Path) -> bool:
    """True when a new file cannot be created in ``folder`` (a probe file that could is removed)."""
    probe = folder / f".lva-write-probe-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return True
    probe.unlink()
    return False


def run_chapters(cache: Path, profile: str, out: Path, notebooks: Path | None = None) -> dict[str, float]:
    """Execute every chapter in order with ``LVA_CACHE=cache``, outputs in ``out``; ``{stem: seconds}``.
    Raises :class:`lva.book.NotebookFailed` at the first failing chapter."""
    from .book import execute, find_notebooks, to_ipynb

    os.environ["LVA_CACHE"] = str(cache)  # the kernels papermill starts inherit it
    os.environ["LVA_NO_PROGRESS"] = "1"
    root = repo_root()
    times = {}
    for source in find_notebooks(notebooks or root / "notebooks"):
        notebook = to_ipynb(source, out / ".src" / f"{source.stem}.ipynb")
        times[source.stem] = execute(notebook, out / f"{source.stem}.ipynb", profile, cwd=root)
        print(f"[classroom/{profile}] {source.stem}: {times[source.stem]:.1f} s", flush=True)
    print(f"[classroom/{profile}] all chapters: {sum(times.values()):.1f} s against a read-only cache", flush=True)
    return times


def _namespace_command(cache: Path, view: Path, inner: Sequence[str]) -> list[str] | None:
    """``unshare`` running ``inner`` with ``cache`` bound read-only at ``view``; None where that cannot be
    done here (no ``unshare``, no permission for a mount namespace, or the mount fails: tried with ``true``)."""
    if shutil.which("unshare") is None:
        return None
    flags = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]  # not root: a user namespace lets it mount
    script = 'mount --bind "$1" "$2" && mount -o remount,bind,ro "$2" && shift 2 && exec "$@"'

    def command(run: Sequence[str]) -> list[str]:
        return ["unshare", *flags, "sh", "-c", script, "sh", str(cache), str(view), *run]

    probe = subprocess.run(command(["true"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return command(inner) if probe.returncode == 0 else None


def _inner(cache: Path, profile: str, out: Path, notebooks: Path | None, mounted: bool) -> list[str]:
    """The command that runs the chapters against ``cache`` (``mounted``: a read-only mount it checks first)."""
    cmd = [
        sys.executable,
        "-m",
        "lva.classroom",
        "--inside",
        "--cache",
        str(cache),
        "--profile",
        profile,
        "--out",
        str(out),
    ]
    return cmd + (["--notebooks", str(notebooks)] if notebooks else []) + ([] if mounted else ["--unmounted"])


def check(cache: Path, profile: str, notebooks: Path | None = None) -> list[str]:
    """Execute every chapter against ``cache`` made read-only; the problems found (empty: it serves them)."""
    if not cache.is_dir() or not any(cache.iterdir()):
        raise ValueError(f"no built cache in {cache}: build it first with `make book PROFILE={profile}`")
    before = listing(cache)
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lva-classroom-") as tmp:
        view, out = Path(tmp) / "cache", Path(tmp) / "out"
        view.mkdir()
        cmd = _namespace_command(cache, view, _inner(view, profile, out, notebooks, mounted=True))
        if cmd:
            code = subprocess.run(cmd).returncode
        else:
            print(
                "mount namespaces are unavailable here: the chapters read the cache itself, and a listing of "
                "its files before and after shows any write",
                flush=True,
            )
            code = subprocess.run(_inner(cache, profile, out, notebooks, mounted=False)).returncode
        if code != 0:
            problems.append(f"a chapter failed against the read-only cache (exit status {code}; see above)")
    problems += [f"the cache changed: {line}" for line in changes(before, listing(cache))]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; exit status 0 when the cache serves every chapter, 1 when not, 2 without a cache."""
    parser = argparse.ArgumentParser(prog="python -m lva.classroom", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="fast", choices=PROFILES)
    parser.add_argument("--cache", type=Path, default=None, help="the built cache (default: LVA_CACHE or .cache/lva)")
    parser.add_argument("--notebooks", type=Path, default=None, help="the chapters' folder (default: notebooks/)")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)  # the namespace's side
    parser.add_argument("--unmounted", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from .book import NotebookFailed

    cache = (args.cache or default_cache_dir()).resolve()
    if args.inside:
        if not args.unmounted and not read_only(cache):
            print(f"error: {cache} is writable inside the namespace: the read-only mount did not take", file=sys.stderr)
            return 1
        try:
            run_chapters(cache, args.profile, args.out, args.notebooks)
        except NotebookFailed as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    start = time.perf_counter()
    try:
        problems = check(cache, args.profile, args.notebooks)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print(
        f"the read-only cache {cache} served every chapter; nothing was written to it "
        f"({time.perf_counter() - start:.0f} s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
