"""The pipeline: stages in order, each loading its artifact or building and caching it."""

import numpy as np
import pytest
import pandas as pd

from lva import pipeline
from lva.config import get_config

TINY = {
    "demos__episodes_per_task": 6,
    "train__epochs": 1,
    "train__monitor_episodes_per_task": 1,
    "threads": 1,
}


def test_stages_are_named_in_order_in_the_module_and_its_diagram():
    assert pipeline.STAGES == ("demonstrations", "visual_features", "agents", "vision_encoders", "embeddings", "alignment", "robustness")
    diagram = "\n".join(line for line in pipeline.__doc__.splitlines() if "──►" in line)
    assert [diagram.index(f"{stage}(cfg") for stage in pipeline.STAGES] == sorted(diagram.index(f"{stage}(cfg") for stage in pipeline.STAGES)
    assert all(callable(getattr(pipeline, stage)) for stage in pipeline.STAGES)


def test_demonstrations_are_built_once_then_loaded(tmp_path):
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=2)
    first_info: dict = {}
    second_info: dict = {}
    first = pipeline.demonstrations(cfg, show_progress=False, info=first_info)
    second = pipeline.demonstrations(cfg, show_progress=False, info=second_info)
    assert not first_info["cached"] and first_info["episodes_per_s"] > 0 and second_info["cached"]
    assert (cfg.stage_dir("demos") / "demos.npz").exists()
    assert np.array_equal(first.action, second.action) and np.array_equal(first.image, second.image)


def test_agents_are_one_per_agent_seed(tmp_path):
    cfg = get_config("fast", cache_dir=tmp_path, agent_seeds=(2,), **TINY)
    agents = pipeline.agents(cfg, show_progress=False)
    assert list(agents) == [2]
    assert pipeline.checkpoint_paths(cfg, 2)[0].exists()
    again, _, cached = pipeline.trained_agent(cfg, 2, show_progress=False)
    texts = ["go to the red ball", "grab the blue key"]
    assert cached and np.array_equal(agents[2].embed(texts), again.embed(texts))


def test_vision_encoders_are_one_per_agent_seed_then_loaded(tmp_path):
    cfg = get_config("fast", cache_dir=tmp_path, agent_seeds=(2,), ground__episodes_per_task=4, ground__epochs=1,
                     ground__batch_size=4, ground__width=4, **TINY)
    info: dict = {}
    pairs = pipeline.vision_pairs(cfg, show_progress=False, info=info)
    assert not info["cached"] and pairs.n_episodes == 12 and pairs.index.shape == (12, 2)
    encoders = pipeline.vision_encoders(cfg, show_progress=False)
    assert list(encoders) == [2] and (cfg.stage_dir("vision") / "seed2.pt").exists()
    again, history, cached = pipeline.trained_vision_encoder(cfg, 2, show_progress=False)
    texts = ["go to the red ball", "grab the blue key"]
    assert cached and history.epoch == [1] and np.array_equal(encoders[2].embed(texts), again.embed(texts))
    pipeline.vision_pairs(cfg, show_progress=False, info=info)
    assert info["cached"]
    assert pipeline.referent_control(cfg).shape == (396, 40)


def test_alignment_takes_k_from_the_config():
    """``align__k`` reaches every k-dependent number of the headline table (score and chance)."""
    from lva import alignment as al

    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 6))
    reps = {"agent-seed4": a, "other": a @ rng.standard_normal((6, 9)) + 0.5 * rng.standard_normal((40, 9))}
    sizes = {"agent_seeds": (4,), "align__n_perm": 5, "align__n_perm_retrieval": 2, "align__n_boot": 0}
    cfg = get_config("fast", align__k=10, **sizes)
    assert cfg.align.k == 10 and pipeline.anchor(cfg) == "agent-seed4"
    rows = pipeline.alignment(cfg, reps).set_index("metric")
    assert rows.loc["mutual_knn", "chance"] == 10 / 39 and rows.loc["procrustes_retrieval", "chance"] == 10 / 40
    assert rows.loc["mutual_knn", "score"] == al.measure("mutual_knn", reps["agent-seed4"], reps["other"], k=10)
    default = pipeline.alignment(get_config("fast", **sizes), reps).set_index("metric")
    assert default.loc["mutual_knn", "chance"] == 15 / 39


def test_robustness_stage_is_cached_under_a_hash_of_its_inputs(tmp_path):
    from lva.instructions import all_instructions

    cfg = get_config("fast", cache_dir=tmp_path, align__n_perm=10, align__n_perm_retrieval=3)
    n = len(all_instructions())
    rng = np.random.default_rng(0)
    reps = {pipeline.anchor(cfg): rng.standard_normal((n, 8))}
    pooled = {"lm": {"mean": rng.standard_normal((2, n, 6))}}
    info: dict = {}
    first = pipeline.robustness(cfg, reps, pooled, info=info)
    assert not info["cached"] and len(first) == 2 * 4 * 2  # normalisations x metrics x layer choices
    again = pipeline.robustness(cfg, reps, pooled, info=info)
    assert info["cached"]
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    pooled["lm"]["mean"][1, 0, 0] += 1.0  # one number changed: recomputed
    pipeline.robustness(cfg, reps, pooled, info=info)
    assert not info["cached"]


def test_evaluation_is_rolled_out_once_then_read(tmp_path, monkeypatch):
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=6, train__epochs=1,
                     train__monitor_episodes_per_task=2, checks__eval_episodes_per_task=3, threads=1)
    info: dict = {}
    first = pipeline.evaluation(cfg, info=info)
    assert not info["cached"] and len(first) == 3 * 3 and set(first["success"]) <= {True, False, 0, 1}
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: pytest.fail("rolled out twice"))
    again = pipeline.evaluation(cfg, info=info)
    assert info["cached"]
    pd.testing.assert_frame_equal(first, again, check_dtype=False)
    assert set(pipeline.trained_success(cfg)) == {"GO-TO", "PICK-UP", "ESCAPE-FROM", "training s"}
