"""Moving a cache of the earlier layout into the current one, so an upgrade retrains nothing.

Before the one naming scheme of :class:`lva.cache.Artifact`, a stage's files lived in
``<cache>/<stage>-<config key>/`` (evaluations named ``seed<n>-eval<N>-stream<s>.json``, pairs
``pairs-<N>-<views>.npz``), embeddings in ``<cache>/embeddings/<model>/<pooling>-<texts>-<src>.npz``
and converted models in ``<cache>/models/<name>-<sha12>-v<schema>/``. Each old file's manifest
records what it was built from, which is exactly what makes its current path, so :func:`migrate`
moves every verified old file to that path (its manifest with it) and never recomputes anything.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .cache import SUFFIX, Artifact, manifest_path, notice
from .config import STAGES
from .io import save_json

#: The old names that the current layout shortens: an evaluation and the vision-grounded pairs.
_RENAMED = (
    (re.compile(r"^(seed\d+)-eval\d+-stream\d+\.json$"), r"\1-eval.json"),
    (re.compile(r"^pairs-.+\.npz$"), "pairs.npz"),
)
#: The folders of chapter 6's tables (:mod:`lva.pipeline_tables`): named ``<prefix>-<hash>.json``.
_TABLE_KINDS = ("alignment", "robustness", "triangle")


def current_artifact(root: Path, old: Path, built_from: dict[str, Any]) -> Artifact | None:
    """Where the old file ``old`` (its manifest saying ``built_from``) belongs now, or ``None``
    when it is not a file of the earlier layout."""
    stage = built_from.get("stage")
    if "texts_sha256" in built_from and "pooling" in built_from:  # an embedding
        return Artifact(root, f"embeddings/{built_from['model']}", f"{built_from['pooling']}.npz", built_from)
    if stage in STAGES and old.parent.parent == root and old.parent.name.startswith(f"{stage}-"):
        name = old.name
        for pattern, short in _RENAMED:
            name = pattern.sub(short, name)
        return Artifact(root, stage, name, built_from)
    if stage in _TABLE_KINDS and "inputs_sha256" in built_from:
        return Artifact(root, stage, f"{old.name.split('-')[0]}.json", built_from)
    return None


def _move(old: Path, new: Path) -> None:
    """The file, then its manifest (naming the new file): a run killed in between leaves a file
    without a manifest, which the cache treats as stale, never a wrong one."""
    meta = json.loads(manifest_path(old).read_text())
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)
    save_json(manifest_path(new), {**meta, "file": new.name})
    manifest_path(old).unlink()


def _converted_models(root: Path) -> list[tuple[Path, Path]]:
    """The converted-model folders of the earlier naming, with the folder each belongs in now."""
    from .models.registry import MODELS_SCHEMA, REGISTRY
    from .models.weights import converted_dir

    out = []
    for spec in REGISTRY.values():
        if spec.loader == "gguf":
            old = root / "models" / f"{spec.name}-{spec.sha256[:12]}-v{MODELS_SCHEMA}"
            new = converted_dir(spec, root)
            if old.is_dir() and old != new:
                out.append((old, new))
    return out


def migrate(root: Path) -> int:
    """Move every artifact of the earlier layout under ``root`` to its current path (one line
    saying how many); files already at home, unknown ones and ones whose new path is taken stay.
    A read-only cache is left as it is, after one line. Returns the number moved."""
    root = Path(root)
    if not root.is_dir():
        return 0
    moved = 0
    try:
        for meta_path in sorted(root.rglob(f"*{SUFFIX}")):
            old = meta_path.with_name(meta_path.name[: -len(SUFFIX)])
            try:
                built_from = json.loads(meta_path.read_text())["built_from"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            artifact = current_artifact(root, old, built_from)
            if artifact is None or artifact.path == old or artifact.path.exists() or not old.is_file():
                continue
            _move(old, artifact.path)
            moved += 1
        for old, new in _converted_models(root):
            if not new.exists():
                old.rename(new)
                moved += 1
        for folder in sorted(root.iterdir()):  # the old stage folders, if nothing else is left in them
            if folder.is_dir() and re.fullmatch(r"[a-z-]+-[0-9a-f]{12}", folder.name) and not any(folder.iterdir()):
                folder.rmdir()
    except OSError as err:  # a read-only cache (a class's shared one): read as it is
        notice(
            f"could not move the earlier layout's artifacts in {root} ({err.strerror}); "
            "run `make book` once where it is writable"
        )
        return moved
    if moved:
        notice(f"moved {moved} cached artifacts of the earlier layout to their current paths in {root}")
    return moved
