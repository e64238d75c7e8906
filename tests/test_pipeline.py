"""The pipeline: stages in order, each loading its artifact or building and caching it."""

import numpy as np
import pandas as pd
import pytest

from lva import pipeline
from lva.config import get_config

TINY = {
    "demos__episodes_per_task": 6,
    "train__epochs": 1,
    "train__monitor_episodes_per_task": 1,
    "checks__eval_episodes_per_task": 3,  # the workers evaluate each agent they train
    "threads": 1,
}


def test_stages_are_named_in_order_in_the_module_and_its_diagram():
    assert pipeline.STAGES == (
        "demonstrations",
        "visual_features",
        "agents",
        "vision_encoders",
        "embeddings",
        "alignment",
        "robustness",
    )
    diagram = "\n".join(line for line in pipeline.__doc__.splitlines() if "──►" in line)
    assert [diagram.index(f"{stage}(cfg") for stage in pipeline.STAGES] == sorted(
        diagram.index(f"{stage}(cfg") for stage in pipeline.STAGES
    )
    assert all(callable(getattr(pipeline, stage)) for stage in pipeline.STAGES)


def test_demonstrations_are_built_once_then_loaded(tmp_path):
    cfg = get_config("fast", cache_dir=tmp_path, demos__episodes_per_task=2)
    built = pipeline.demonstrations.built(cfg, show_progress=False)
    read = pipeline.demonstrations.built(cfg, show_progress=False)
    assert not built.cached and built.seconds > 0 and read.cached
    assert cfg.artifact("demos", "demos.npz").path.exists()
    first, second = built.value, pipeline.demonstrations(cfg, show_progress=False)  # called: the value itself
    assert np.array_equal(first.action, read.value.action) and np.array_equal(first.image, second.image)


def test_agents_are_one_per_agent_seed(tmp_path):
    cfg = get_config("fast", cache_dir=tmp_path, agent_seeds=(2,), **TINY)
    agents = pipeline.agents(cfg, show_progress=False)
    assert list(agents) == [2]
    assert pipeline.checkpoint_paths(cfg, 2)[0].exists()
    again, _, cached = pipeline.trained_agent(cfg, 2, show_progress=False)
    texts = ["go to the red ball", "grab the blue key"]
    assert cached and np.array_equal(agents[2].embed(texts), again.embed(texts))


def test_vision_encoders_train_side_by_side_then_load_identical_to_training_here(tmp_path, monkeypatch):
    """The pairs are built once; the two missing encoders go to the workers together (their
    process path is test_train's agents' own: lva.workers.side_by_side), each the same bit for bit
    as trained here on cfg.threads (one torch thread whatever it says); a second call trains
    nothing and every stage loads."""
    import torch

    from lva import workers
    from lva.grounding import train_encoder

    cfg = get_config(
        "fast",
        cache_dir=tmp_path,
        agent_seeds=(1, 2),
        ground__episodes_per_task=4,
        ground__epochs=1,
        ground__batch_size=4,
        ground__width=4,
        **{**TINY, "threads": 2},
    )
    built = pipeline.vision_pairs.built(cfg, show_progress=False)
    pairs = built.value
    assert not built.cached and pairs.n_episodes == 12 and pairs.index.shape == (12, 2)
    runs = []

    def run_here(jobs, desc, **kwargs):  # what a worker runs, on one torch thread as a worker has
        runs.append((desc, kwargs["processes"]))
        torch.set_num_threads(1)
        return [fn(*args) for fn, args in jobs]

    monkeypatch.setattr(workers, "run", run_here)
    assert pipeline.train_vision_encoders(cfg, show_progress=False) == [1, 2]
    assert runs == [("contrastive training (2 encoders, 2 at once)", 2)]
    assert pipeline.train_vision_encoders(cfg, show_progress=False) == [] and len(runs) == 1
    torch.set_num_threads(2)
    encoders = pipeline.vision_encoders(cfg, show_progress=False)
    assert list(encoders) == [1, 2] and pipeline.checkpoint_paths(cfg, 2, "vision")[0].exists()
    here, here_history = train_encoder(cfg, pairs, 2)
    assert torch.get_num_threads() == 2  # train_encoder gave back the thread count the pairs' stage set
    loaded, history, cached = pipeline.trained_vision_encoder(cfg, 2, show_progress=False)
    assert cached and history.epoch == [1] and history.train_loss == here_history.train_loss
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), here.state_dict().values()))
    texts = ["go to the red ball", "grab the blue key"]
    assert np.array_equal(encoders[2].embed(texts), here.embed(texts))
    assert pipeline.vision_pairs.built(cfg, show_progress=False).cached
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
    built = pipeline.robustness.built(cfg, reps, pooled)
    first = built.value
    assert not built.cached and len(first) == 2 * 4 * 2  # normalisations x metrics x layer choices
    again = pipeline.robustness.built(cfg, reps, pooled)
    assert again.cached
    pd.testing.assert_frame_equal(first, again.value, check_dtype=False)
    pooled["lm"]["mean"][1, 0, 0] += 1.0  # one number changed: recomputed
    assert not pipeline.robustness.built(cfg, reps, pooled).cached


def test_evaluation_is_rolled_out_once_then_read(tmp_path, monkeypatch):
    cfg = get_config(
        "fast",
        cache_dir=tmp_path,
        demos__episodes_per_task=6,
        train__epochs=1,
        train__monitor_episodes_per_task=2,
        checks__eval_episodes_per_task=3,
        threads=1,
    )
    built = pipeline.evaluation.built(cfg)
    first = built.value
    assert not built.cached and len(first) == 3 * 3 and set(first["success"]) <= {True, False, 0, 1}
    monkeypatch.setattr(pipeline, "evaluate", lambda *a, **k: pytest.fail("rolled out twice"))
    again = pipeline.evaluation.built(cfg)
    assert again.cached
    pd.testing.assert_frame_equal(first, again.value, check_dtype=False)
    assert set(pipeline.trained_success(cfg)) == {"GO-TO", "PICK-UP", "ESCAPE-FROM", "training s"}


def _chapter6_inputs(cfg):
    """Small chapter-6 inputs: two agents, two vision encoders, a language model with two layers,
    a control and the referent control (one row per instruction)."""
    from lva.instructions import all_instructions
    from lva.triangle import REFERENT

    n = len(all_instructions())
    rng = np.random.default_rng(0)
    z = rng.standard_normal((n, 4))
    names = ("agent-seed0", "agent-seed1", "vision-seed0", "vision-seed1", "minilm", "bag-of-words")
    reps = {name: z @ rng.standard_normal((4, 6)) + rng.standard_normal((n, 6)) for name in names}
    family = {
        "agent-seed0": "agent",
        "agent-seed1": "agent",
        "vision-seed0": "vision-grounded",
        "vision-seed1": "vision-grounded",
        "minilm": "encoder",
        "bag-of-words": "control",
        REFERENT: "control",
    }
    pooled = {"minilm": {"mean": np.stack([rng.standard_normal((n, 6)), reps["minilm"]])}}
    return reps, {**reps, REFERENT: rng.standard_normal((n, 5))}, family, pooled


SMALL = {"align__n_perm": 10, "align__n_perm_retrieval": 3, "align__n_boot": 0}


def test_chapter6_tables_are_cached_under_a_hash_of_their_inputs(tmp_path):
    """The headline, the triangle's headline and pairs and the layer table: built once, then read;
    one number of one input or one size changed: recomputed."""
    cfg = get_config("fast", cache_dir=tmp_path, **SMALL)
    reps, spaces, family, pooled = _chapter6_inputs(cfg)
    tables = {
        "alignment": lambda c: pipeline.alignment.built(c, reps),
        "triangle": lambda c: pipeline.triangle.built(c, spaces, family),
        "triangle_pairs": lambda c: pipeline.triangle_pairs.built(c, spaces, family),
        "layer_choice": lambda c: pipeline.layer_choice.built(c, reps, pooled),
    }
    for name, table in tables.items():
        first = table(cfg)
        assert not first.cached, name
        again = table(cfg)
        assert again.cached, name
        pd.testing.assert_frame_equal(first.value, again.value, check_dtype=False)
        assert not table(get_config("fast", cache_dir=tmp_path, **{**SMALL, "align__n_perm": 11})).cached, name
    reps["agent-seed0"][0, 0] += 1.0  # the anchor and an agent of the triangle: every table recomputed
    for name, table in tables.items():
        assert not table(cfg).cached, name
    assert {p.name.split("-")[0] for p in (tmp_path / "triangle").glob("*.json")} == {"headline", "pairs"}


def test_triangle_reads_the_headline_rows_it_shares(tmp_path, monkeypatch):
    """The triangle's action side is the headline table's rows (read from its cache); only the
    referent control and the vision side are computed, and the result is what lva.triangle
    computes alone."""
    from lva import alignment as al
    from lva import triangle as tri

    cfg = get_config("fast", cache_dir=tmp_path, **SMALL)
    reps, spaces, family, _ = _chapter6_inputs(cfg)
    headline = pipeline.alignment(cfg, reps)
    computed = []
    real = al.headline_for

    def counting(sub, anchor, align):
        computed.append((anchor, sorted(set(sub) - {anchor})))
        return real(sub, anchor, align)

    monkeypatch.setattr(al, "headline_for", counting)
    rows = pipeline.triangle(cfg, spaces, family)
    assert computed == [
        ("agent-seed0", [tri.REFERENT]),
        ("vision-seed0", sorted(["vision-seed1", "minilm", "bag-of-words", tri.REFERENT])),
    ]
    alone = tri.headline(spaces, family, cfg.align)
    pd.testing.assert_frame_equal(rows, alone, check_dtype=False)
    shared = rows[(rows["anchor"] == "agent-seed0") & (rows["model"] == "minilm")].set_index("metric")["score"]
    assert shared.equals(headline[headline["model"] == "minilm"].set_index("metric")["score"])


def test_layer_choice_reads_the_curves_cross_validated_rows(tmp_path, monkeypatch):
    """The layer table's cross-validated columns come from the cached curve (cv_layer is not run
    again) and equal lva.robustness.layer_summary's own."""
    from lva import robustness as rb

    cfg = get_config("fast", cache_dir=tmp_path, **SMALL)
    reps, _, _, pooled = _chapter6_inputs(cfg)
    alone = rb.layer_summary(
        reps["agent-seed0"], pooled, "mutual_knn", cfg.align.k, rb.meaning_halves(seed=cfg.align.seed)
    )
    pipeline.robustness(cfg, reps, pooled)
    monkeypatch.setattr(rb, "cv_layer", lambda *a, **k: pytest.fail("cv_layer recomputed"))
    pd.testing.assert_frame_equal(pipeline.layer_choice(cfg, reps, pooled), alone, check_dtype=False)
