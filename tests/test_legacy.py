"""A cache of the earlier layout is moved into the current one, and then read, never rebuilt."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from lva import cache, pipeline
from lva import embeddings as E
from lva import models as M
from lva.config import get_config
from lva.legacy import migrate
from lva.pipeline_tables import save_table

TEXTS = ["go to the red ball", "pick up the blue key", "reach the box"]


def _to_old(artifact: cache.Artifact, old: Path) -> Path:
    """Put a current artifact where the earlier layout kept it (its manifest beside it)."""
    old.parent.mkdir(parents=True, exist_ok=True)
    artifact.path.rename(old)
    cache.manifest_path(artifact.path).rename(cache.manifest_path(old))
    return old


def _old_embedding_path(root: Path, name: str, pooling: str) -> Path:
    """The earlier name of an embeddings file: pooling, texts hash, source hash."""
    spec = M.get_spec(name)
    src = hashlib.sha256(f"{spec.source}|{spec.sha256}|{M.MODELS_SCHEMA}".encode()).hexdigest()[:6]
    return root / "embeddings" / name / f"{pooling}-{E.texts_hash(TEXTS)}-{src}.npz"


def test_an_old_cache_is_moved_to_the_current_paths_and_read_from_there(tmp_path, capfd):
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1)
    demos = pipeline.demonstrations(cfg, show_progress=False)
    old_demos = _to_old(cfg.artifact("demos", "demos.npz"), tmp_path / f"demos-{cfg.key('env', 'demos')}" / "demos.npz")
    evaluation = pipeline.evaluation_artifact(cfg, 0)  # written here as the stage writes it, without an agent
    cache.write(evaluation, pd.DataFrame({"success": [True]}), save_table, lambda t: {"episodes": len(t)})
    stage = f"agent-{cfg.key('env', 'demos', 'agent', 'train')}"
    _to_old(evaluation, tmp_path / stage / f"seed0-eval{cfg.checks.eval_episodes_per_task}-stream0.json")
    vectors = E.embed("random", TEXTS, layers="all", cache_dir=tmp_path)
    _to_old(E._artifact("random", TEXTS, cache_dir=tmp_path), _old_embedding_path(tmp_path, "random", "mean"))

    assert migrate(tmp_path) == 3
    assert "moved 3 cached artifacts" in capfd.readouterr().err
    built = pipeline.demonstrations.built(cfg, show_progress=False)
    assert built.cached and (built.value.action == demos.action).all()
    assert not old_demos.parent.exists()  # the emptied stage folder is gone
    assert cache.problem(evaluation) is None
    assert json.loads(cache.manifest_path(evaluation.path).read_text())["file"] == evaluation.path.name
    assert cache.problem(E._artifact("random", TEXTS, cache_dir=tmp_path)) is None
    assert (E.embed("random", TEXTS, layers="all", cache_dir=tmp_path) == vectors).all()
    assert migrate(tmp_path) == 0  # nothing left to move


def test_a_file_whose_current_path_is_taken_or_whose_manifest_is_unreadable_stays(tmp_path):
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1)
    pipeline.demonstrations(cfg, show_progress=False)
    current = cfg.artifact("demos", "demos.npz").path
    old = tmp_path / f"demos-{cfg.key('env', 'demos')}" / "demos.npz"
    old.parent.mkdir()
    old.write_bytes(current.read_bytes())
    cache.manifest_path(old).write_text(cache.manifest_path(current).read_text())
    stray = tmp_path / "agent-0123456789ab" / "seed0.pt"
    stray.parent.mkdir()
    stray.write_bytes(b"x")
    cache.manifest_path(stray).write_text("{not json")
    assert migrate(tmp_path) == 0 and old.exists() and stray.exists()
    assert migrate(tmp_path / "missing") == 0


def test_a_read_only_old_cache_is_left_as_it_is_after_one_line(tmp_path, monkeypatch, capfd):
    """A class's shared cache may be mounted read-only: nothing moves, nothing fails."""
    import errno

    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=1)
    pipeline.demonstrations(cfg, show_progress=False)
    old = _to_old(cfg.artifact("demos", "demos.npz"), tmp_path / f"demos-{cfg.key('env', 'demos')}" / "demos.npz")

    def read_only(self, target):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "rename", read_only)
    assert migrate(tmp_path) == 0 and old.exists() and cache.manifest_path(old).exists()
    assert "Read-only file system" in capfd.readouterr().err
