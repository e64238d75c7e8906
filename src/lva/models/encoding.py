"""Sentence vectors from a loaded model: attention-aware pooling of every layer's hidden states,
the prompt-based poolings (echo, prompt), and the controls computed from the texts alone.

Hidden states of every layer (embedding output = layer 0) are pooled with the attention mask, so
padding never changes a sentence's vector.

Input contract of :func:`encode` / :func:`encode_poolings`: ``texts`` is a list (any sequence) of
strings; a bare string or a non-string item raises ``TypeError`` saying how to fix it; an empty
list gives ``(n_layers, 0, d)``; a text longer than the model's limit (the smaller of its
tokenizer's ``model_max_length`` and its ``max_position_embeddings``) is truncated to it, with a
warning naming how many were.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from lva import patches
from lva.instructions import ALL_TYPES, COLORS, TASKS

from .loaders import Loaded
from .registry import ECHO_TEMPLATE, POOLINGS, PROMPT_TEMPLATE, ModelSpec

#: Poolings that read the plain sentence (one forward pass serves them all), and the reducer
#: each prompt-based pooling applies to its own forward pass.
_PLAIN = ("mean", "last", "first")
_REDUCE = {"mean": "mean", "last": "last", "first": "first", "echo": "mean", "prompt": "last"}


def pool(hidden: Any, mask: Any, pooling: str = "mean") -> Any:
    """Pool token states ``(..., n, t, d)`` with a 0/1 ``mask`` ``(n, t)`` into ``(..., n, d)``.

    ``mean``: mean over tokens where the mask is 1; ``last``: the last such token (right or left
    padding alike); ``first``: the first such token. Masked positions never enter the result
    (even if they hold NaN), so padding does not change a sentence's vector.
    """
    import torch

    if pooling not in _PLAIN:
        raise ValueError(
            f"pool() reduces with one of {', '.join(_PLAIN)}, not {pooling!r} (echo and prompt are "
            "mean and last over their own prompt: see encode_poolings)"
        )
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


def _onednn_linear_op() -> Any:
    """oneDNN's fused linear of this torch build, or ``None`` where torch was built without it
    (:func:`lva.patches.onednn_linear_op`; the tests replace this name)."""
    return patches.onednn_linear_op()


def _onednn_layers(model: Any) -> list[Any]:
    """The layers :func:`onednn_linear` would run with oneDNN: float32 ``nn.Linear`` on the CPU."""
    import torch

    return [
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32 and m.weight.device.type == "cpu"
    ]


def linear_engine(loaded: Loaded) -> str:
    """What multiplies ``loaded``'s linear layers in :func:`encode_poolings`: ``"onednn"`` or
    ``"aten"`` (torch's default; also for static vectors and controls, which have none)."""
    if loaded.model is None or _onednn_linear_op() is None or not _onednn_layers(loaded.model):
        return "aten"
    return "onednn"


@contextlib.contextmanager
def onednn_linear(model: Any) -> Iterator[str]:
    """While the block runs, the float32 ``nn.Linear`` layers of ``model`` that sit on the CPU
    multiply with oneDNN instead of the MKL sgemm torch calls by default; yields the engine used,
    ``"onednn"`` or ``"aten"`` (torch without oneDNN, or no such layer: nothing is changed).

    Why: a language model's forward pass is almost all these products, and on some processors
    torch's MKL does not use the widest vector instructions the CPU has while oneDNN does, so the
    embedding passes are shorter (figures in benchmarks/README.md). oneDNN's results are the same bit
    for bit on one thread or two; they differ from MKL's in the last bits (about 1e-6 relative),
    as any two BLAS libraries do. For inference only: the op has no gradient.
    """
    op, layers = _onednn_linear_op(), _onednn_layers(model)
    if op is None or not layers:
        yield "aten"
        return
    with patches.linear_forward(layers, op):
        yield "onednn"


def check_texts(texts: Any) -> list[str]:
    """``texts`` as a list of strings, or ``TypeError`` naming the fix (a bare string) or the
    first item that is not a string (its index and type)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"texts must be a list of strings, not a bare {type(texts).__name__}: wrap it in a list, "
            f"e.g. [{texts[:40]!r}]"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of strings, not {type(texts).__name__}") from None
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {text!r:.40} ({type(text).__name__}), not a string")
    return items


def token_limit(loaded: Loaded) -> int | None:
    """The most tokens ``loaded`` reads per text (``None``: no limit, or no model)."""
    if loaded.model is None:
        return None
    limits = [
        getattr(loaded.tokenizer, "model_max_length", None),
        getattr(loaded.model.config, "max_position_embeddings", None),
    ]
    limits = [int(n) for n in limits if isinstance(n, int) and 0 < n < 10**9]
    return min(limits) if limits else None


def _warn_truncated(loaded: Loaded, written: list[str], limit: int | None) -> None:
    if limit is None:
        return
    lengths = [len(ids) for ids in loaded.tokenizer(written, verbose=False)["input_ids"]]
    long = [i for i, n in enumerate(lengths) if n > limit]
    if long:
        warnings.warn(
            f"{loaded.spec.name}: {len(long)} text(s) longer than its limit of {limit} tokens were "
            f"truncated to it (texts[{long[0]}]: {lengths[long[0]]} tokens)",
            UserWarning,
            stacklevel=4,
        )


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
    limit = token_limit(loaded)
    _warn_truncated(loaded, [template.format(s=t) for t in texts], limit)
    if str(loaded.device).startswith("cuda"):  # a GPU: batches sized from its free memory (a CPU keeps batch_size)
        from .requirements import cuda_batch_size

        longest = max(len(ids) for ids in tok([template.format(s=t) for t in texts], verbose=False)["input_ids"])
        batch_size = cuda_batch_size(loaded, min(longest, limit or longest))
    out: dict[str, list[np.ndarray]] = {p: [] for p in poolings}
    with torch.inference_mode(), onednn_linear(model), progress(len(texts), desc, unit="text") as bar:
        for begin in range(0, len(texts), batch_size):
            batch = texts[begin : begin + batch_size]
            written = [template.format(s=t) for t in batch]
            # where the echoed (second) copy begins, in characters
            starts = [len(w) - len(t) for w, t in zip(written, batch)]
            enc = tok(
                written,
                return_tensors="pt",
                padding=True,
                return_special_tokens_mask=True,
                return_offsets_mapping="echo" in poolings,
                truncation=limit is not None,
                max_length=limit,
            )
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
    ``echo`` and ``prompt`` each need their own. Default: the model's ``all_poolings``. ``texts``:
    see the module's input contract (an empty list gives ``(n_layers, 0, d)``).
    """
    spec = loaded.spec
    texts = check_texts(texts)
    poolings = list(poolings or spec.all_poolings)
    unknown = [p for p in poolings if p not in POOLINGS]
    if unknown:
        raise ValueError(f"unknown pooling {unknown[0]!r}; valid: {', '.join(POOLINGS)}")
    if loaded.model is not None and not texts:
        empty = np.zeros((loaded.n_layers, 0, int(loaded.model.config.hidden_size)), dtype=np.float32)
        return {p: empty for p in poolings}
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


# ------------------------------------------------------------------------------------------------
# Without a model: the controls and static word vectors
# ------------------------------------------------------------------------------------------------


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


def _encode_without_model(loaded: Loaded, texts: list[str]) -> np.ndarray:
    """``(1, n, d)`` vectors of the controls and of static word vectors (mean of the words)."""
    spec = loaded.spec
    if spec.loader == "random":
        rows = [
            np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:16], 16)).standard_normal(spec.dim)
            for t in texts
        ]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), spec.dim)[None]
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
