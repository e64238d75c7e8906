"""Every place lva reaches into another package's internals, in one module.

Each entry below names the internal it uses or replaces and the versions it was written against
(:data:`PINNED`, the pins of pyproject.toml). ``tests/test_patches.py`` checks, for the installed
versions, that every internal named here still exists with the signature the code expects, and
fails naming what changed; ``tests/test_architecture.py`` keeps other modules off third-party
private names. Each patch gives the same values as what it replaces (the tests compare them); the
gains that justify keeping them are recorded in benchmarks/README.md.

Nothing here imports torch, gguf or transformers at module level (``import lva`` stays light).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

#: The distributions whose internals this module touches, at the versions it was written for
#: (equal to the pins of pyproject.toml; ``tests/test_patches.py`` holds the two together).
PINNED = {"gguf": "0.19.0", "transformers": "5.23.0", "torch": "2.13.0", "efficientnet-lite-pytorch": "0.1.0"}


# ------------------------------------------------------------------------------------------------
# GGUF conversion (lva.models.weights.convert_gguf): gguf 0.19.0, transformers 5.23.0
# ------------------------------------------------------------------------------------------------


@functools.cache
def fast_gguf_reader() -> type:
    """``gguf.GGUFReader`` with the same fields and tensors, parsed over a plain ndarray view of the
    file's memmap: slicing a ``numpy.memmap`` costs more than slicing an ndarray, and the reader
    slices once or twice per vocabulary entry (3 million slices for Gemma's 262k tokens).

    Internal: ``gguf.gguf_reader.GGUFReader._get(self, offset, dtype, count=1, override_order=None)``
    (overridden) and its ``data`` attribute (a memmap, viewed as an ndarray)."""
    import numpy as np
    from gguf.gguf_reader import GGUFReader  # the class itself, even while gguf_conversion() patches gguf's name

    class FastGGUFReader(GGUFReader):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "data" and isinstance(value, np.memmap):
                value = value.view(np.ndarray)  # the same bytes (no copy), without memmap's per-slice cost
            super().__setattr__(name, value)

        def _get(self, offset: int, dtype: Any, count: int = 1, override_order: Any = None) -> Any:
            dt, count = np.dtype(dtype), int(count)
            arr = self.data[offset : offset + dt.itemsize * count].view(dt)[:count]
            return arr.view(arr.dtype.newbyteorder(self.byte_order if override_order is None else override_order))

    return FastGGUFReader


@contextlib.contextmanager
def gguf_conversion() -> Iterator[None]:
    """While converting, parse each GGUF file once (with :func:`fast_gguf_reader`) and skip work
    transformers and gguf repeat, each replacement giving the same values as what it replaces:

    - ``gguf.GGUFReader``: transformers reads the whole header three times per model (tokenizer,
      config, weights); one parse instead, shared by path;
    - ``gguf.get_tensor_name_map(arch, n_blocks)``: transformers rebuilds gguf's tensor-name table
      for every submodule; built once per (architecture, layers);
    - ``transformers.modeling_gguf_pytorch_utils._gguf_parse_value(_value, data_type)``: it decodes
      each vocabulary string byte by byte through a Python list; decoded from the bytes at once.

    Two earlier replacements were dropped when re-measured (benchmarks/README.md): gguf's
    dequantisation in larger row groups, and skipping transformers' copy of each fresh tensor.
    """
    import gguf
    import transformers.modeling_gguf_pytorch_utils as hf_gguf

    reader_class, readers = fast_gguf_reader(), {}

    def shared(path: Any, mode: str = "r") -> Any:
        key = (os.path.realpath(os.fspath(path)), mode)
        if key not in readers:
            readers[key] = reader_class(path, mode)
        return readers[key]

    replacements = [
        (gguf, "GGUFReader", shared),
        (gguf, "get_tensor_name_map", functools.cache(gguf.get_tensor_name_map)),
        (hf_gguf, "_gguf_parse_value", fast_parse_value(hf_gguf._gguf_parse_value)),
    ]
    with replaced(replacements):
        yield


@contextlib.contextmanager
def replaced(replacements: Sequence[tuple[Any, str, Any]]) -> Iterator[None]:
    """``setattr(owner, name, value)`` for each ``(owner, name, value)`` while the block runs; the
    previous values come back afterwards, whatever the block raised."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in replacements]
    for owner, name, value in replacements:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


_STRING, _ARRAY = 8, 9  # GGUF's value types of a string and of an array


def fast_parse_value(original: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """transformers' ``_gguf_parse_value``, with a string (alone or in an array) decoded from its
    bytes at once rather than through ``array("B", list(value))``; anything else goes to ``original``."""
    import numpy as np

    def parse(value: Any, data_type: Any) -> Any:
        types = data_type if isinstance(data_type, list) else [data_type]
        is_string = types in ([_STRING], [_ARRAY, _STRING])
        if is_string and isinstance(value, np.ndarray) and value.dtype == np.uint8:
            return value.tobytes().decode()
        return original(value, data_type)

    return parse


# ------------------------------------------------------------------------------------------------
# Linear layers on oneDNN (lva.models.encoding.onednn_linear): torch 2.13.0
# ------------------------------------------------------------------------------------------------


def onednn_linear_op() -> Any:
    """oneDNN's fused linear of this torch build, or ``None`` where torch was built without it.

    Internal: ``torch.ops.mkldnn._linear_pointwise(input, weight, bias, attr, scalars, algorithm)``."""
    import torch

    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._linear_pointwise
    except (AttributeError, RuntimeError):
        return None


@contextlib.contextmanager
def linear_forward(layers: Sequence[Any], op: Any) -> Iterator[None]:
    """While the block runs, each ``nn.Linear`` of ``layers`` computes ``op(x, weight, bias, "none",
    [], "")`` (:func:`onednn_linear_op`'s calling convention): an instance attribute ``forward``
    shadows ``nn.Linear.forward``, and is deleted afterwards."""
    import types

    def forward(self: Any, x: Any) -> Any:
        return op(x, self.weight, self.bias, "none", [], "")

    for layer in layers:
        layer.forward = types.MethodType(forward, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


# ------------------------------------------------------------------------------------------------
# EfficientNet-Lite0 cut at stride 8 (lva.vision.backbone): efficientnet-lite-pytorch 0.1.0
# ------------------------------------------------------------------------------------------------

#: The attributes of ``efficientnet_lite_pytorch.EfficientNet`` that :func:`efficientnet_stem_blocks`
#: reads (the package has no public way to stop after a block).
EFFICIENTNET_PARTS = ("_conv_stem", "_bn0", "_swish", "_blocks")


def efficientnet_stem_blocks(net: Any, x: Any, blocks: int) -> Any:
    """The activations of ``net`` (an ``efficientnet_lite_pytorch.EfficientNet``) after its stem and
    its first ``blocks`` blocks: ``EfficientNet.extract_features`` stopped early."""
    x = net._swish(net._bn0(net._conv_stem(x)))
    for block in net._blocks[:blocks]:
        x = block(x)
    return x


# ------------------------------------------------------------------------------------------------
# Worker processes (lva.workers): the standard library of Python 3.11
# ------------------------------------------------------------------------------------------------


def pool_processes(pool: Any) -> list[Any]:
    """The worker processes of a ``concurrent.futures.ProcessPoolExecutor`` (its ``_processes``;
    empty if that ever goes), so that a failed job can stop the others at once."""
    return list((getattr(pool, "_processes", None) or {}).values())
