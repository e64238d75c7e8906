"""Shared fixtures: every test writes its artifacts into a temporary cache, never the user's."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LVA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LVA_NO_PROGRESS", "1")
