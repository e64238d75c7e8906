"""Chapter 5's API: representations(), layerwise(), family_of(), the semantic-features control
and the geometry helpers. No training and no model weights: agents are freshly built tiny ones."""

import numpy as np
import pytest

import lva.pipeline
from lva import embeddings as E
from lva import geometry as G
from lva import models as M
from lva.agent import build_agent
from lva.catalogue import family_of
from lva.config import get_config
from lva.instructions import ALL_TYPES, COLORS, TASKS, all_instructions
from lva.models import availability, weights
from lva.models.weights import _converted_ok
from lva.representations import representations

TEXTS = [i.text for i in all_instructions()]


@pytest.fixture
def tiny_cfg():
    cfg = get_config(
        "fast",
        agent_seeds=(3, 5),
        agent__token_dim=8,
        agent__heads=2,
        agent__embed_dim=12,
        agent__mlp_dim=16,
        agent__channels=4,
        agent__hidden=8,
        agent__direction_dim=4,
    )
    return cfg


def fresh_agents(cfg):
    """ "Trained" agents: freshly built ones, so no training happens in tests."""
    return {s: build_agent(cfg, 100 + s) for s in cfg.agent_seeds}


# ---------------------------------------------------------------------------------------------- semantic features


def test_semantic_features_are_exactly_three_one_hots():
    x = E.embed("semantic-features", TEXTS)
    assert x.shape == (len(TEXTS), len(TASKS) + len(COLORS) + len(ALL_TYPES)) == (396, 13)
    assert x.dtype == np.float32 and set(np.unique(x)) == {0.0, 1.0}
    for row, ins in zip(x, all_instructions(), strict=True):
        expected = np.zeros(13, dtype=np.float32)
        expected[TASKS.index(ins.task)] = 1
        expected[3 + COLORS.index(ins.color)] = 1
        expected[9 + ALL_TYPES.index(ins.obj_type)] = 1
        assert np.array_equal(row, expected)
    first = M.semantic_features(["go to the red ball", "walk to the red ball", "grab the grey key"])
    assert np.array_equal(first[0], first[1])  # synonyms share a meaning
    assert first[2].tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="not an instruction"):
        M.semantic_features(["dance with the red ball"])
    assert M.REGISTRY["semantic-features"].family == "control" and M.is_available("semantic-features")


# ---------------------------------------------------------------------------------------------- family_of


def test_family_of_every_name_and_unknown_names():
    for name, spec in M.REGISTRY.items():
        assert family_of(name) == spec.family
    assert family_of("agent-seed0") == family_of("agent-seed12") == "agent"
    assert family_of("untrained-agent") == "control"
    assert family_of("semantic-features") == "control"
    assert family_of("vision-seed0") == family_of("vision-seed7") == "vision-grounded"
    assert family_of("untrained-vision") == "control"
    for bad in ("gpt-9", "agent-seed", "agent-seedx", "Agent-seed0"):
        with pytest.raises(ValueError, match="unknown representation") as err:
            family_of(bad)
        assert "agent-seed<N>" in str(err.value) and "untrained-agent" in str(err.value) and "minilm" in str(err.value)


# ---------------------------------------------------------------------------------------------- representations


def test_representations_keys_order_shapes_and_determinism(tiny_cfg):
    reps = representations(tiny_cfg, fresh_agents(tiny_cfg), models=[], show_progress=False)
    assert list(reps) == [
        "agent-seed3",
        "agent-seed5",
        "untrained-agent",
        "random",
        "bag-of-words",
        "semantic-features",
    ]
    for name, x in reps.items():
        assert x.ndim == 2 and x.shape[0] == 396 and x.dtype == np.float32 and np.isfinite(x).all(), name
    assert reps["agent-seed3"].shape[1] == 12 and reps["semantic-features"].shape[1] == 13
    # the untrained agent is the first seed's architecture at a fresh random init, not a trained one
    assert np.array_equal(reps["untrained-agent"], build_agent(tiny_cfg, 3).embed(TEXTS))
    assert not np.array_equal(reps["untrained-agent"], reps["agent-seed3"])
    again = representations(tiny_cfg, fresh_agents(tiny_cfg), models=["random"], show_progress=False)
    assert list(again) == list(reps)  # a control asked for explicitly is not listed twice
    for name in reps:
        assert np.array_equal(reps[name], again[name]), name


def test_representations_list_the_vision_family_after_the_agents(tiny_cfg):
    from lva.grounding import build_encoder

    cfg = tiny_cfg
    vision = {s: build_encoder(cfg, 100 + s) for s in cfg.agent_seeds}
    reps = representations(cfg, fresh_agents(cfg), models=[], show_progress=False, vision=vision)
    assert list(reps)[:6] == [
        "agent-seed3",
        "agent-seed5",
        "untrained-agent",
        "vision-seed3",
        "vision-seed5",
        "untrained-vision",
    ]
    assert reps["vision-seed3"].shape == (396, 12) and np.array_equal(reps["vision-seed5"], vision[5].embed(TEXTS))
    assert np.array_equal(reps["untrained-vision"], build_encoder(cfg, 3).embed(TEXTS))


def test_representations_fail_fast_for_missing_models_before_training(tiny_cfg, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("trained before checking the models")

    monkeypatch.setattr(lva.pipeline, "agents", boom)
    monkeypatch.delenv("LVA_MODELS_DIR", raising=False)
    monkeypatch.setattr(availability, "_local_dir", lambda spec: None)
    with pytest.raises(M.ModelUnavailable, match="bert-base"):
        lva.pipeline.embeddings(tiny_cfg, models=["bert-base"])


def test_layerwise_is_embed_all_layers():
    x = E.layerwise("bag-of-words", TEXTS[:5])
    assert x.shape[0] == 1 and x.shape[1] == 5 and np.array_equal(x[-1], E.embed("bag-of-words", TEXTS[:5]))
    with pytest.raises(ValueError, match="registry models"):
        E.layerwise("agent-seed0")
    with pytest.raises(ValueError, match="unknown representation"):
        E.layerwise("gpt-9")


def test_cache_info_round_trip_is_bit_identical_and_records_timing():
    cold = E.embed("semantic-features", TEXTS, layers="all")
    warm = E.embed("semantic-features", TEXTS, layers="all")
    assert np.array_equal(cold, warm) and cold.dtype == warm.dtype
    info = E.cache_info("semantic-features")
    assert info["n"] == 396 and info["dim"] == 13 and info["layers"] == 1
    assert info["load_s"] >= 0 and info["embed_s"] >= 0
    with pytest.raises(FileNotFoundError, match="no cached embeddings"):
        E.cache_info("random", TEXTS[:3])


# ---------------------------------------------------------------------------------------------- geometry


def test_anisotropy_identities():
    rng = np.random.default_rng(0)
    assert G.anisotropy(np.tile(rng.standard_normal(7), (6, 1))) == pytest.approx(1.0)
    # centred rows of equal norm (+-e_i): the mean pairwise cosine is exactly -1/(n-1)
    eye = np.eye(4)
    sym = np.concatenate([eye, -eye])
    assert G.anisotropy(sym) == pytest.approx(-1 / 7)
    assert G.anisotropy(sym, center=True) == pytest.approx(-1 / 7)
    # a shared offset makes cosines high; centring removes it
    x = rng.standard_normal((200, 64)) + 10
    assert G.anisotropy(x) > 0.95 and abs(G.anisotropy(x, center=True) + 1 / 199) < 0.02
    # the closed form equals the explicit mean over pairs
    y = rng.standard_normal((9, 5))
    u = y / np.linalg.norm(y, axis=1, keepdims=True)
    cos = u @ u.T
    assert G.anisotropy(y) == pytest.approx(cos[~np.eye(9, dtype=bool)].mean())
    with pytest.raises(ValueError):
        G.anisotropy(y[:1])


def test_pca_scores_ratios_and_fixed_signs():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 6)) * np.array([5.0, 2.0, 1, 1, 1, 1])
    scores, ratio = G.pca(x)
    assert scores.shape == (50, 2) and np.all(np.diff(ratio) <= 0) and 0 < ratio.sum() <= 1
    assert np.allclose(scores.mean(axis=0), 0)
    flipped, _ = G.pca(-x)  # a mirrored cloud gives the same map up to the fixed sign rule
    assert np.allclose(np.abs(flipped), np.abs(scores))
    assert np.allclose(G.pca(x)[0], scores)  # deterministic


# ---------------------------------------------------------------------------------------------- optional MPNet


def test_zipped_model_is_verified_unpacked_once_and_filtered(tmp_path, monkeypatch):
    import dataclasses
    import hashlib
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("m/", "")
        zf.writestr("m/config.json", '{"model_type": "mpnet"}')
        zf.writestr("m/desktop.ini", "junk")
        zf.writestr("m/1_Pooling/config.json", "{}")
    data = buf.getvalue()
    half = len(data) // 2
    chunks = [tmp_path / "z.001", tmp_path / "z.002"]
    chunks[0].write_bytes(data[:half])
    chunks[1].write_bytes(data[half:])
    monkeypatch.setattr(weights, "_chunk_paths", lambda spec: chunks)
    spec = dataclasses.replace(M.REGISTRY["mpnet"], sha256=hashlib.sha256(data).hexdigest())
    folder = M.unpack_zip_model(spec)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "lva-converted.json"]
    assert (folder / "config.json").read_text() == '{"model_type": "mpnet"}'

    def boom(*a, **k):
        raise AssertionError("unpacked twice")

    with monkeypatch.context() as patch:  # undone at the end of the block; the cache isolation stays
        patch.setattr(weights, "assemble_chunks", boom)
        assert M.unpack_zip_model(spec) == folder  # cached
    with pytest.raises(ValueError, match="sha256 mismatch"):
        M.unpack_zip_model(dataclasses.replace(spec, sha256="0" * 64), force=True)


def test_mpnet_real_weights(monkeypatch):
    import os
    from pathlib import Path

    from lva.config import repo_root

    spec = M.get_spec("mpnet")
    if not M.is_available("mpnet"):
        pytest.skip("optional MPNet not installed (python -m lva.models install --optional)")
    monkeypatch.setenv("LVA_CACHE", str(Path(os.environ.get("LVA_REAL_CACHE") or repo_root() / ".cache" / "lva")))
    if not _converted_ok(M.converted_dir(spec), spec) and os.environ.get("LVA_SLOW_TESTS") != "1":
        pytest.skip("MPNet not unpacked yet and LVA_SLOW_TESTS!=1")
    texts = ["go to the red ball", "walk to the red ball", "pick up the blue key", "run away from the grey door"]
    X = M.encode(M.load("mpnet", device="cpu"), texts)
    assert X.shape == (13, 4, 768) and np.isfinite(X).all()
    u = G.unit_rows(X[-1])
    assert np.argmax(np.where(np.eye(4, dtype=bool), -np.inf, u @ u.T)[0]) == 1  # the synonym is nearest


def test_poolings_on_disk_says_whether_every_pooling_has_its_cache_file():
    assert not E.poolings_on_disk("random")
    E.embed("random")
    assert E.poolings_on_disk("random") and not E.poolings_on_disk("gemma-3-270m")


def test_what_chapters_five_and_six_read_from_embeddings_is_the_defining_modules_own():
    from lva import catalogue, geometry

    assert E.family_of is catalogue.family_of
    assert (E.unit_rows, E.anisotropy, E.pca) == (geometry.unit_rows, geometry.anisotropy, geometry.pca)
