"""The vision-grounded encoder (lva.grounding): its loss on known cases, the false-negative mask,
determinism, that it never reads actions, retrieval accuracy, views and the referent control."""

import dataclasses
import inspect
import math

import numpy as np
import pytest
import torch

from lva import grounding as G
from lva.config import get_config
from lva.instructions import all_instructions, parse

TINY = dict(
    agent__token_dim=8,
    agent__heads=2,
    agent__embed_dim=12,
    agent__mlp_dim=16,
    ground__width=4,
    ground__epochs=2,
    ground__batch_size=8,
    ground__pool_size=10,
    threads=1,
)


def tiny_pairs(n: int = 40, seed: int = 0) -> G.Pairs:
    rng = np.random.default_rng(seed)
    u = 12
    return G.Pairs(
        instruction=rng.integers(0, 396, n),
        index=rng.integers(0, u, (n, 2)),
        features=rng.standard_normal((u, 40, 7, 7)).astype(np.float16),
        views=rng.integers(0, 6, (u, 7, 7, 3)).astype(np.uint8),
    )


def test_contrastive_loss_on_a_hand_computed_case():
    eye = torch.eye(2)
    # cosines 1 on the diagonal, 0 off it, temperature 1: each row is -log(e / (e + 1))
    loss = G.contrastive_loss(eye, eye, torch.tensor([0, 1]), 0.0)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    # temperature 0.5 (log_scale = log 2) doubles the logits
    loss = G.contrastive_loss(eye, eye, torch.tensor([0, 1]), math.log(2.0))
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    # the same meaning twice: no negative left, the loss is zero
    assert float(G.contrastive_loss(eye, eye, torch.tensor([4, 4]), 0.0)) == pytest.approx(0.0, abs=1e-7)


def reference_loss(text, image, meaning, scale):
    """Row by row, each denominator without the other rows of the same meaning."""
    t = torch.nn.functional.normalize(text, dim=1)
    v = torch.nn.functional.normalize(image, dim=1)
    sim = scale * t @ v.T
    total = 0.0
    for logits in (sim, sim.T):
        for i in range(len(t)):
            keep = [j for j in range(len(t)) if j == i or meaning[j] != meaning[i]]
            total += -float(torch.log_softmax(logits[i, keep], 0)[keep.index(i)])
    return total / (2 * len(t))


def test_a_synonym_in_the_batch_is_not_a_negative():
    torch.manual_seed(0)
    text, image = torch.randn(4, 5), torch.randn(4, 5)
    # rows 0 and 2: "go to the red ball" and its synonym "walk to the red ball"
    meaning = torch.tensor(
        G.meanings()[
            [
                all_instructions().index(parse(s))
                for s in ("go to the red ball", "grab the blue key", "walk to the red ball", "flee from the grey door")
            ]
        ]
    )
    assert meaning[0] == meaning[2] and len(set(meaning.tolist())) == 3
    masked = float(G.contrastive_loss(text, image, meaning, math.log(3.0)))
    assert masked == pytest.approx(reference_loss(text, image, meaning.tolist(), 3.0), abs=1e-5)
    # the rows of a batch without the synonym as a negative: rows 1 and 3 keep every column
    unmasked = float(G.contrastive_loss(text, image, torch.arange(4), math.log(3.0)))
    assert unmasked > masked


def test_training_is_deterministic_for_a_seed_and_differs_across_seeds():
    cfg = get_config("fast", **TINY)
    pairs = tiny_pairs()
    a, ha = G.train_encoder(cfg, pairs, 3)
    b, hb = G.train_encoder(cfg, pairs, 3)
    c, _ = G.train_encoder(cfg, pairs, 4)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert ha.train_loss == hb.train_loss and len(ha.epoch) == 2
    assert not torch.equal(a.text.out.weight, c.text.out.weight)
    texts = ["go to the red ball", "grab the blue key"]
    assert np.array_equal(a.embed(texts), b.embed(texts)) and a.embed(texts).shape == (2, 12)


def test_the_encoder_never_reads_actions():
    assert not any("action" in f.name for f in dataclasses.fields(G.Pairs))
    assert list(inspect.signature(G.train_encoder).parameters) == ["cfg", "pairs", "seed", "show_progress"]

    read: set[str] = set()

    class Watched(G.Pairs):
        def __getattribute__(self, name):
            if not name.startswith("__"):
                read.add(name)
            return super().__getattribute__(name)

    pairs = tiny_pairs()
    G.train_encoder(
        get_config("fast", **TINY), Watched(**{f.name: getattr(pairs, f.name) for f in dataclasses.fields(pairs)}), 0
    )
    assert read <= {"instruction", "index", "features", "n_episodes", "task"}, read


def test_untrained_twin_is_seeded_and_not_the_agents_init():
    from lva.agent import build_agent

    cfg = get_config("fast", **TINY)
    texts = ["go to the red ball"]
    assert np.array_equal(G.build_encoder(cfg, 0).embed(texts), G.build_encoder(cfg, 0).embed(texts))
    assert not np.allclose(G.build_encoder(cfg, 0).embed(texts), build_agent(cfg, 0).embed(texts))


def test_retrieval_hits_and_chance_on_a_tiny_case():
    sim = np.array([[0.9, 0.8, 0.1, 0.0], [0.9, 0.1, 0.5, 0.0], [0.5, 0.5, 0.0, 0.1]])
    pool = np.array([0, 0, 1, 2])
    query = np.array([0, 1, 2])
    assert G.retrieval_hits(sim, query, pool, 1).tolist() == [True, False, False]
    assert G.retrieval_hits(sim, query, pool, 2).tolist() == [True, True, False]  # ties: lower index first
    assert G.retrieval_chance(query, pool, 1) == pytest.approx([0.5, 0.25, 0.25])
    assert G.retrieval_chance(query, pool, 2) == pytest.approx([1 - 1 / 6, 0.5, 0.5])


def test_retrieval_table_has_every_task_and_all(tmp_path):
    cfg = get_config("fast", **TINY)
    pairs = tiny_pairs(60)
    enc = G.build_encoder(cfg, 0)
    table = G.retrieval(enc, pairs, np.arange(30))
    assert list(table.index)[-1] == "all" and table.loc["all", "queries"] == 30
    assert set(table.columns) >= {"top-1", "top-5", "chance top-1", "chance top-5"}
    assert (table["top-5"] >= table["top-1"]).all()
    path = tmp_path / "enc.pt"
    G.save_encoder(enc, path)
    assert np.array_equal(G.load_encoder(path).embed(["grab the blue key"]), enc.embed(["grab the blue key"]))


def test_final_views_show_the_outcome_and_first_views_come_from_the_demos():
    from lva.demos import generate

    cfg = get_config("fast")
    demos = generate(cfg.env, 2, seed=0, show_progress=False)
    episodes = G.chosen_episodes(demos.task, 1)
    views = G.episode_views(demos, cfg.env, episodes)
    assert views.shape == (3, 2, 7, 7, 3)
    for row, e in enumerate(episodes):
        assert np.array_equal(views[row, 0], demos.image[demos.offsets[e]])
        ins = all_instructions()[demos.instruction[e]]
        if ins.task == "pickup":  # the carried object is drawn in the agent's own cell
            from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

            assert tuple(views[row, 1, 3, 6, :2]) == (OBJECT_TO_IDX[ins.obj_type], COLOR_TO_IDX[ins.color])
    with pytest.raises(ValueError, match="valid views"):
        G.episode_views(demos, cfg.env, episodes, ("middle",))


def test_referent_control_is_task_blind():
    x = G.referent_control()
    index = {ins.text: i for i, ins in enumerate(all_instructions())}
    assert x.shape == (396, 40) and x.dtype == np.float32
    assert np.array_equal(x[index["go to the red ball"]], x[index["pick up the red ball"]])
    assert np.array_equal(x[index["go to the red ball"]], x[index["flee from the red ball"]])
    assert not np.array_equal(x[index["go to the red ball"]], x[index["go to the blue ball"]])
    assert len(np.unique(x, axis=0)) == 24
