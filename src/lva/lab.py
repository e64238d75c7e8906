"""JupyterLab on the chapters, offline: ``python -m lva.lab [jupyter lab options]`` (what ``make lab`` runs).

The repository is the server's root and the file browser opens on ``notebooks/``. A chapter's ``.py``
opens as a notebook with a double click: jupytext's Lab extension is made the default viewer of
Python files. Student copies (``student/*.ipynb``, from ``make student``) are plain notebooks.
Nothing is fetched at run time: JupyterLab's news feed, update check and PyPI extension manager are off.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import repo_root

#: Server options that would reach the network, switched off: the news feed, the update check and
#: the extension manager's PyPI search.
OFFLINE_OPTIONS = (
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
)
#: Lab settings this project sets for its users (a user's own settings still win): Python files open
#: in jupytext's notebook view, and Lab neither asks to fetch news nor checks for updates.
SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
#: The file holding :data:`SETTINGS` in JupyterLab's ``overrides.d`` folder.
OVERRIDES_FILE = "lva.json"


def is_root() -> bool:
    """True when this process runs as root (Jupyter refuses to start there without ``--allow-root``)."""
    return hasattr(os, "geteuid") and os.geteuid() == 0


def lab_command(root: Path, extra: Sequence[str] = (), as_root: bool = False) -> list[str]:
    """The ``jupyter lab`` command line: ``root`` as the server's root, the browser on ``notebooks/``,
    the :data:`OFFLINE_OPTIONS`, ``--allow-root`` only ``as_root``, then ``extra`` (later options win)."""
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        "--LabApp.default_url=/lab/tree/notebooks",
        *OFFLINE_OPTIONS,
    ]
    if as_root:
        cmd.append("--allow-root")
    return cmd + list(extra)


def write_settings(app_settings_dir: Path) -> Path:
    """Write :data:`SETTINGS` into ``app_settings_dir/overrides.d`` (JupyterLab reads every file there
    as defaults, beside any ``overrides.json`` an administrator keeps); returns the file."""
    path = app_settings_dir / "overrides.d" / OVERRIDES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(SETTINGS, indent=2, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """Start JupyterLab on the repository (this process becomes the server: Ctrl-C stops it)."""
    extra = list(sys.argv[1:] if argv is None else argv)
    try:
        from jupyterlab.commands import get_app_dir
    except ImportError:
        raise SystemExit("JupyterLab is not installed: run `make lab`, or `pip install -e '.[lab]'`") from None
    from .config import default_cache_dir
    from .legacy import migrate

    migrate(default_cache_dir())  # a cache of the earlier layout: moved, not rebuilt
    write_settings(Path(get_app_dir()) / "settings")
    cmd = lab_command(repo_root(), extra, as_root=is_root())
    print("$ jupyter lab", " ".join(cmd[3:]), flush=True)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
