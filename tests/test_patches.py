"""lva.patches: the third-party internals it uses are still there, and its replacements give what they replace.

The first tests are pinned to the installed versions (``lva.patches.PINNED``, equal to pyproject's
pins): after an upgrade they fail naming the internal that moved or changed, so that a patch is
rechecked (or dropped) instead of breaking silently.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import tomllib

import numpy as np
import pytest

from lva import patches
from lva.config import repo_root


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist).split("+")[0]  # torch's "2.13.0+cpu" is 2.13.0
    except importlib.metadata.PackageNotFoundError:
        return None


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    reqs = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {name.lower(): version for name, _, version in (r.partition("==") for r in reqs)}


def _require(dist: str) -> None:
    found = _installed(dist)
    if found is None:
        pytest.skip(f"{dist} is not installed (`python -m lva.models install` installs the zoo)")
    assert found == patches.PINNED[dist], (
        f"{dist} {found} is installed, but lva.patches was written for {patches.PINNED[dist]}: check every "
        f"internal lva.patches names for {dist} (tests/test_patches.py), then update PINNED and pyproject.toml"
    )


def _resolve(dotted: str) -> object:
    """The object at ``module.attr.attr`` (the longest importable module prefix first)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for i, name in enumerate(parts[cut:], cut):
            assert hasattr(obj, name), f"{'.'.join(parts[:i])} has no {name!r} any more (lva.patches uses {dotted})"
            obj = getattr(obj, name)
        return obj
    raise AssertionError(f"cannot import {dotted}")


def test_the_pins_of_the_patched_packages_are_pyprojects_and_installed():
    pins = _pyproject_pins()
    for dist, version in patches.PINNED.items():
        assert pins.get(dist) == version, f"pyproject.toml pins {dist}=={pins.get(dist)}, lva.patches.PINNED {version}"
    for dist in ("torch", "transformers"):  # the book's own dependencies: always installed
        assert _installed(dist) == patches.PINNED[dist], f"{dist} {_installed(dist)} is installed, not the pin"


#: Every patched or overridden function, with the signature lva.patches relies on (and replaces).
SIGNATURES = {
    "gguf.gguf_reader.GGUFReader.__init__": (
        "gguf",
        "(self, path: 'os.PathLike[str] | str', mode: \"Literal['r', 'r+', 'c']\" = 'r')",
    ),
    "gguf.gguf_reader.GGUFReader._get": (
        "gguf",
        "(self, offset: 'int', dtype: 'npt.DTypeLike', count: 'int' = 1, "
        "override_order: \"None | Literal['I', 'S', '<']\" = None) "
        "-> 'npt.NDArray[Any]'",
    ),
    "gguf.get_tensor_name_map": ("gguf", "(arch: 'MODEL_ARCH', n_blocks: 'int') -> 'TensorNameMap'"),
    "transformers.modeling_gguf_pytorch_utils._gguf_parse_value": ("transformers", "(_value, data_type)"),
}


@pytest.mark.parametrize("dotted", sorted(SIGNATURES))
def test_every_patched_function_still_has_its_signature(dotted):
    dist, expected = SIGNATURES[dotted]
    _require(dist)
    found = str(inspect.signature(_resolve(dotted)))
    assert found == expected, f"{dotted} changed its signature: {found} (lva.patches expects {expected})"


def test_the_gguf_conversions_internals_are_used_as_the_patches_expect():
    """Replacing a module's name only helps if the caller looks it up there at call time."""
    _require("gguf")
    _require("transformers")
    import gguf.gguf_reader
    import transformers.modeling_gguf_pytorch_utils as hf_gguf

    source = inspect.getsource(hf_gguf)
    for needle, why in [
        ("from gguf import GGUFReader", "gguf.GGUFReader is looked up at each load"),
        ("from gguf import MODEL_ARCH_NAMES, get_tensor_name_map", "get_tensor_name_map too"),
        ("_gguf_parse_value(", "the values are parsed through the module's function"),
    ]:
        assert needle in source, f"transformers.modeling_gguf_pytorch_utils no longer has {needle!r} ({why})"
    reader = inspect.getsource(gguf.gguf_reader.GGUFReader)
    for needle in ("self.data =", "self.byte_order", "self._get("):
        assert needle in reader, f"gguf.GGUFReader no longer uses {needle!r} (lva.patches.fast_gguf_reader)"


def test_onednns_linear_op_keeps_its_schema():
    _require("torch")
    import torch

    if patches.onednn_linear_op() is None:
        pytest.skip("this torch build has no oneDNN linear")
    schema = str(torch.ops.mkldnn._linear_pointwise.default._schema)
    expected = (
        "mkldnn::_linear_pointwise(Tensor X, Tensor W, Tensor? B, str attr, Scalar?[] scalars, "
        "str? algorithm) -> Tensor Y"
    )
    assert schema == expected, f"torch.ops.mkldnn._linear_pointwise changed: {schema} (lva.patches expects {expected})"
    x, w, b = torch.randn(3, 5), torch.randn(4, 5), torch.randn(4)
    assert torch.allclose(
        patches.onednn_linear_op()(x, w, b, "none", [], ""), torch.nn.functional.linear(x, w, b), atol=1e-5
    )


def test_efficientnets_parts_and_the_pools_processes_are_where_lva_reads_them():
    _require("efficientnet-lite-pytorch")
    import concurrent.futures

    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    missing = [name for name in patches.EFFICIENTNET_PARTS if not hasattr(net, name)]
    assert not missing, f"efficientnet_lite_pytorch.EfficientNet has no {missing} any more (lva.patches)"
    stem = inspect.getsource(EfficientNet.extract_features)
    assert "self._swish(self._bn0(self._conv_stem(inputs)))" in stem, "EfficientNet's stem changed"
    assert "self._processes = {}" in inspect.getsource(concurrent.futures.ProcessPoolExecutor.__init__), (
        "ProcessPoolExecutor no longer keeps its workers in _processes (lva.patches.pool_processes)"
    )
    with concurrent.futures.ProcessPoolExecutor(1) as pool:
        assert pool.submit(int, "7").result() == 7
        assert [p.is_alive() for p in patches.pool_processes(pool)] == [True]


def test_efficientnet_stem_blocks_is_extract_features_stopped_early():
    _require("efficientnet-lite-pytorch")
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    net = EfficientNet.from_name("efficientnet-lite0").eval()
    x = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        blocks = patches.efficientnet_stem_blocks(net, x, len(net._blocks))
        assert torch.equal(net._swish(net._bn1(net._conv_head(blocks))), net.extract_features(x))
        assert patches.efficientnet_stem_blocks(net, x, 3).shape[-1] < x.shape[-1]


# ---------------------------------------------------------------------------------------------------
# The replacements give what they replace
# ---------------------------------------------------------------------------------------------------


def test_replaced_restores_every_name_even_when_the_block_raises():
    import types

    owner = types.SimpleNamespace(a=1, b=2)
    with pytest.raises(RuntimeError, match="inside"):
        with patches.replaced([(owner, "a", 10), (owner, "b", 20)]):
            assert (owner.a, owner.b) == (10, 20)
            raise RuntimeError("inside")
    assert (owner.a, owner.b) == (1, 2)


def test_linear_forward_shadows_and_restores_nn_linear():
    import torch

    layer = torch.nn.Linear(3, 2)
    calls = []

    def op(x, w, b, *rest):
        calls.append(rest)
        return torch.nn.functional.linear(x, w, b)

    with patches.linear_forward([layer], op):
        assert "forward" in vars(layer)
        layer(torch.ones(1, 3))
    assert "forward" not in vars(layer) and calls == [("none", [], "")]


def test_fast_gguf_reader_parses_exactly_what_gguf_parses_and_conversion_shares_one_parse(tmp_path):
    """The conversion's shortcuts (:func:`lva.patches.gguf_conversion`) give what they replace."""
    gguf = pytest.importorskip("gguf")

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("tiny.count", 7)
    writer.add_float32("tiny.scale", 0.5)
    writer.add_string("tiny.name", "grüße")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "go", "to", "the", "red", "ball", "é"])
    writer.add_array("tokenizer.ggml.scores", [0.0, -1.5, -2.0, -2.5, -3.0, -3.5, -4.0])
    writer.add_tensor("w", np.arange(24, dtype=np.float32).reshape(4, 6))
    writer.add_tensor("b", np.arange(5, dtype=np.float16))
    for write in (writer.write_header_to_file, writer.write_kv_data_to_file, writer.write_tensors_to_file):
        write()
    writer.close()

    stock, fast = gguf.GGUFReader(path), patches.fast_gguf_reader()(path)
    assert list(stock.fields) == list(fast.fields)
    for name, field in stock.fields.items():
        other = fast.fields[name]
        assert (field.offset, field.data, field.types) == (other.offset, other.data, other.types), name
        assert [p.tobytes() for p in field.parts] == [p.tobytes() for p in other.parts], name
        assert field.contents() == other.contents(), name
    assert fast.fields["tokenizer.ggml.tokens"].contents()[-1] == "é"
    assert [(t.name, t.tensor_type, t.data.tobytes()) for t in stock.tensors] == [
        (t.name, t.tensor_type, t.data.tobytes()) for t in fast.tensors
    ]

    import transformers.modeling_gguf_pytorch_utils as hf_gguf

    originals = (gguf.GGUFReader, gguf.get_tensor_name_map, hf_gguf._gguf_parse_value)
    stock_values = {name: [originals[2](f.parts[i], f.types) for i in f.data] for name, f in stock.fields.items()}
    with patches.gguf_conversion():
        first = gguf.GGUFReader(path)
        assert gguf.GGUFReader(str(path)) is first  # transformers' three reads share one parse
        assert type(first) is patches.fast_gguf_reader()
        # the same values as what each replacement replaces
        assert {
            name: [hf_gguf._gguf_parse_value(f.parts[i], f.types) for i in f.data] for name, f in first.fields.items()
        } == stock_values
        arch = gguf.MODEL_ARCH.LLAMA
        assert gguf.get_tensor_name_map(arch, 2) is gguf.get_tensor_name_map(arch, 2)
        assert gguf.get_tensor_name_map(arch, 2).mapping == originals[1](arch, 2).mapping
    assert (gguf.GGUFReader, gguf.get_tensor_name_map, hf_gguf._gguf_parse_value) == originals
