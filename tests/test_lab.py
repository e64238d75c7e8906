"""``make lab``: JupyterLab on the repository, offline, with the chapters' ``.py`` files opening as notebooks."""

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lva.lab import OFFLINE_OPTIONS, SETTINGS, lab_command, write_settings

ROOT = Path(__file__).resolve().parents[1]


def test_lab_command_is_offline_and_allows_root_only_as_root(tmp_path):
    plain = lab_command(tmp_path, ["--port", "9000"])
    assert plain[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path}" in plain and "--LabApp.default_url=/lab/tree/notebooks" in plain
    assert all(option in plain for option in OFFLINE_OPTIONS)
    assert "--allow-root" not in plain and plain[-2:] == ["--port", "9000"]  # the caller's options come last
    assert "--allow-root" in lab_command(tmp_path, as_root=True)


def test_settings_make_jupytext_the_viewer_of_python_files(tmp_path):
    path = write_settings(tmp_path)
    assert path == tmp_path / "overrides.d" / "lva.json"
    assert json.loads(path.read_text()) == SETTINGS
    before = path.stat().st_mtime_ns
    write_settings(tmp_path)  # unchanged settings: the file is left alone
    assert path.stat().st_mtime_ns == before
    viewer = SETTINGS["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]["python"]
    extension = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "jupyterlab-jupytext"
    if not extension.exists():
        pytest.skip("jupytext's JupyterLab extension is not installed (pip install -e '.[lab]')")
    bundles = "".join(p.read_text(errors="replace") for p in (extension / "static").glob("*.js"))
    assert f'"{viewer}"' in bundles  # the name of the widget factory the installed extension registers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def test_lab_lists_the_chapters_and_opens_a_py_chapter_as_a_notebook():
    """What ``make lab`` starts, token-less on a free local port: the contents API lists the six chapters
    as notebooks, a ``.py`` chapter comes back as cells, and the news feed is empty (nothing fetched)."""
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (make lab)")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "lva.lab",
        "--no-browser",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
    ]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(f"{base}/api/status")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "JupyterLab did not answer within 90 s"
                time.sleep(0.3)
        listing = _get(f"{base}/api/contents/notebooks")
        chapters = sorted(c["name"] for c in listing["content"] if c["name"].endswith(".py"))
        assert chapters == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")) and len(chapters) == 6
        assert all(c["type"] == "notebook" for c in listing["content"] if c["name"] in chapters)
        first = _get(f"{base}/api/contents/notebooks/{chapters[0]}?type=notebook&content=1")
        cells = first["content"]["cells"]
        assert first["type"] == "notebook" and len(cells) > 5
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
        assert _get(f"{base}/lab/api/news") == {"news": []}
    finally:
        server.terminate()
        server.wait(timeout=30)
