"""The agent: tokenizer, E_L properties, shapes, learning, determinism and checkpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from lva.agent import N_ACTIONS, Agent, Tokenizer, build_agent, load_checkpoint, save_checkpoint
from lva.config import AgentConfig, EnvConfig, get_config
from lva.demos import Demos, generate
from lva.env import ACTION_NAMES
from lva.instructions import all_instructions

TEXTS = [i.text for i in all_instructions()]


@pytest.fixture(scope="module")
def demos() -> Demos:
    return generate(EnvConfig(), 3, 0, show_progress=False)


@pytest.fixture
def one_thread_deterministic() -> Iterator[None]:
    threads, det = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(det)


def batch(demos: Demos, rows: np.ndarray, agent: Agent) -> tuple[torch.Tensor, ...]:
    """Tensors for the transitions ``rows``: ids, mask, image, direction, action."""
    episode = np.searchsorted(demos.offsets, rows, side="right") - 1
    ids, mask = agent.tokenizer.encode([TEXTS[i] for i in demos.instruction[episode]])
    image = torch.from_numpy(demos.image[rows])
    direction = torch.from_numpy(demos.direction[rows].astype(np.int64))
    action = torch.from_numpy(demos.action[rows].astype(np.int64))
    return ids, mask, image, direction, action


def test_tokenizer_unknown_and_padding() -> None:
    tok = Tokenizer()
    assert tok.vocab[:2] == ("<pad>", "<unk>")
    ids, mask = tok.encode(["go to the zebra", "run away from the blue door"])
    assert ids.shape == (2, 6) and ids.dtype == torch.long and mask.dtype == torch.bool
    assert ids[0, 3] == 1  # "zebra" is unknown
    assert (ids[0, 4:] == 0).all() and not mask[0, 4:].any() and mask[1].all()
    assert ids[0, 0] == tok.index["go"]


def test_embed_shape_dtype_and_order() -> None:
    agent = build_agent(get_config(), 0)
    texts = TEXTS[:7]
    e = agent.embed(texts)
    assert e.shape == (7, 128) and e.dtype == np.float32
    np.testing.assert_allclose(agent.embed(texts[::-1]), e[::-1], atol=1e-6)
    assert agent.training  # embed restores the mode


def test_padding_does_not_change_vector() -> None:
    agent = build_agent(get_config(), 0)
    short, long = "reach the red key", "run away from the blue door"
    alone = agent.embed([short])[0]
    np.testing.assert_allclose(agent.embed([short, long])[0], alone, atol=1e-5)
    np.testing.assert_allclose(agent.embed([long, short, long])[1], alone, atol=1e-5)


def test_seed_determinism() -> None:
    cfg = get_config()
    a, b, c = build_agent(cfg, 3), build_agent(cfg, 3), build_agent(cfg, 4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert np.array_equal(a.embed(TEXTS), b.embed(TEXTS))
    assert not np.allclose(a.embed(TEXTS), c.embed(TEXTS))


def test_identical_token_init() -> None:
    agent = build_agent(get_config(agent__token_init="identical"), 0)
    w = agent.language_encoder.tokens.weight
    assert torch.equal(w, w[:1].expand_as(w))
    e = agent.embed(["take the red ball", "grab the blue key", "go to the grey door"])
    np.testing.assert_allclose(e[0], e[1], atol=1e-6)  # same length: same E_L at init
    assert not np.allclose(e[0], e[2])  # different length differs
    random = build_agent(get_config(), 0).embed(["take the red ball", "grab the blue key"])
    assert not np.allclose(random[0], random[1])
    with pytest.raises(ValueError, match="identical"):
        Agent(dataclasses.replace(AgentConfig(), token_init="zeros"))


def test_forward_on_real_batch(demos: Demos) -> None:
    torch.manual_seed(0)
    agent = build_agent(get_config(), 0)
    rows = np.arange(min(40, demos.n_transitions))
    ids, mask, image, direction, _ = batch(demos, rows, agent)
    hidden = agent.initial_state(len(rows))
    assert hidden.shape == (len(rows), 128) and not hidden.any()
    logits, new_hidden = agent(ids, mask, image, direction, hidden)
    assert logits.shape == (len(rows), N_ACTIONS) and new_hidden.shape == (len(rows), 128)
    assert torch.isfinite(logits).all() and torch.isfinite(new_hidden).all()
    reactive = build_agent(get_config(agent__memory=False), 0)
    assert reactive.memory is None and reactive.parameter_counts()["memory"] == 0
    logits, h = reactive(ids, mask, image, direction, reactive.initial_state(len(rows)))
    assert logits.shape == (len(rows), N_ACTIONS) and h.shape == (len(rows), 128)


def test_overfits_tiny_dataset(demos: Demos, one_thread_deterministic: None) -> None:
    torch.manual_seed(0)
    agent = build_agent(get_config(), 0)
    rows = np.random.default_rng(0).choice(demos.n_transitions, size=32, replace=False)
    ids, mask, image, direction, action = batch(demos, rows, agent)
    opt = torch.optim.Adam(agent.parameters(), lr=1e-2)
    h0 = agent.initial_state(len(rows))
    for _ in range(300):
        logits, _ = agent(ids, mask, image, direction, h0)
        loss = torch.nn.functional.cross_entropy(logits, action)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05


def _one_step(demos: Demos) -> dict[str, torch.Tensor]:
    agent = build_agent(get_config(), 7)
    ids, mask, image, direction, action = batch(demos, np.arange(16), agent)
    opt = torch.optim.Adam(agent.parameters(), lr=1e-3)
    logits, _ = agent(ids, mask, image, direction, agent.initial_state(16))
    torch.nn.functional.cross_entropy(logits, action).backward()
    opt.step()
    return {k: v.clone() for k, v in agent.state_dict().items()}


def test_training_step_deterministic(demos: Demos, one_thread_deterministic: None) -> None:
    first, second = _one_step(demos), _one_step(demos)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(first["policy.2.weight"], build_agent(get_config(), 7).state_dict()["policy.2.weight"])


def test_checkpoint_roundtrip(demos: Demos, tmp_path) -> None:
    agent = build_agent(get_config(), 1)
    agent.eval()
    path = save_checkpoint(agent, tmp_path / "sub" / "agent.pt")
    assert [p.name for p in path.parent.iterdir()] == ["agent.pt"]  # no temp file left
    loaded = load_checkpoint(path)
    assert loaded.cfg == agent.cfg and loaded.tokenizer.vocab == agent.tokenizer.vocab
    np.testing.assert_array_equal(loaded.embed(TEXTS), agent.embed(TEXTS))
    ids, mask, image, direction, _ = batch(demos, np.arange(30), agent)
    with torch.no_grad():
        a, _ = agent(ids, mask, image, direction, agent.initial_state(30))
        b, _ = loaded(ids, mask, image, direction, loaded.initial_state(30))
    assert torch.equal(a.argmax(1), b.argmax(1)) and torch.equal(a, b)


def test_unknown_vision_is_rejected_and_imagenet_head_takes_features() -> None:
    with pytest.raises(ValueError, match="valid choices: grid, imagenet"):
        build_agent(get_config(agent__vision="pixels"), 0)
    agent = build_agent(get_config(agent__vision="imagenet"), 0)
    ids, mask = agent.tokenizer.encode(["go to the red ball", "grab the blue key"])
    features = torch.randn(2, 40, 7, 7)
    logits, _ = agent(ids, mask, features, torch.tensor([0, 3]), agent.initial_state(2))
    assert logits.shape == (2, 6) and torch.isfinite(logits).all()


def test_parameter_counts() -> None:
    counts = build_agent(get_config(), 0).parameter_counts()
    assert set(counts) == {"language", "vision", "fusion", "memory", "policy", "total"}
    assert sum(v for k, v in counts.items() if k != "total") == counts["total"]
    assert 300_000 < counts["total"] < 1_000_000


def test_match_map_reads_the_named_cell(demos: Demos) -> None:
    """With the query set to pick one colour and one type, the cell holding that object scores highest."""
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

    from lva.agent import CODE_SIZES

    agent = build_agent(get_config(), 0)
    image = np.zeros((1, 7, 7, 3), dtype=np.uint8)
    image[..., 0] = OBJECT_TO_IDX["empty"]
    image[0, 2, 4] = (OBJECT_TO_IDX["ball"], COLOR_TO_IDX["red"], 0)
    image[0, 5, 1] = (OBJECT_TO_IDX["ball"], COLOR_TO_IDX["blue"], 0)  # same type, other colour
    image[0, 1, 1] = (OBJECT_TO_IDX["key"], COLOR_TO_IDX["red"], 0)  # same colour, other type
    cells = agent.vision.cells(torch.from_numpy(image))
    assert cells.shape == (1, CODE_SIZES[0] + CODE_SIZES[1], 7, 7) and torch.all(cells.sum(1) == 2)
    with torch.no_grad():
        agent.fusion.query.weight.zero_()
        agent.fusion.query.bias.zero_()
        agent.fusion.query.bias[OBJECT_TO_IDX["ball"]] = 1.0
        agent.fusion.query.bias[CODE_SIZES[0] + COLOR_TO_IDX["red"]] = 1.0
        scores = agent.fusion.match_map(torch.zeros(1, 128), cells)[0]
    assert scores.shape == (7, 7)
    assert scores[2, 4] == 2 and scores[5, 1] == 1 and scores[1, 1] == 1 and int((scores == 2).sum()) == 1


def test_agent_without_match_map() -> None:
    with_map, without = build_agent(get_config(), 0), build_agent(get_config(agent__match=False), 0)
    assert hasattr(with_map.fusion, "query") and not hasattr(without.fusion, "query")
    ids, mask = without.tokenizer.encode(["go to the red ball"])
    image = torch.zeros(1, 7, 7, 3, dtype=torch.uint8)
    logits, _ = without(ids, mask, image, torch.tensor([0]), without.initial_state(1))
    assert logits.shape == (1, N_ACTIONS)
    with pytest.raises(ValueError, match="match map"):
        without.fusion.match_map(torch.zeros(1, 128), without.vision.cells(image))
    with pytest.raises(ValueError, match="per-cell inputs"):
        with_map.fusion(torch.zeros(1, 128), with_map.vision(image), torch.tensor([0]))


def test_view_size_flows_from_the_env_config_to_the_agent() -> None:
    """``env__view_size=5``: demonstrations hold 5 x 5 views and the agent built from that config
    takes them (its flattened map has 5 x 5 cells); one definition of the view size."""
    cfg = get_config("fast", env__view_size=5)
    small = generate(cfg.env, 1, 0, show_progress=False)
    assert small.image.shape[1:] == (5, 5, 3)
    agent = build_agent(cfg, 0)
    assert agent.fusion.out.in_features == cfg.agent.channels * 25 + cfg.agent.direction_dim
    rows = np.arange(min(4, small.n_transitions))
    ids, mask, image, direction, _ = batch(small, rows, agent)
    logits, _ = agent(ids, mask, image, direction, agent.initial_state(len(rows)))
    assert logits.shape == (len(rows), N_ACTIONS)
    assert N_ACTIONS == len(ACTION_NAMES)


def test_checkpoint_keeps_the_view_size(tmp_path) -> None:
    agent = build_agent(get_config("fast", env__view_size=5), 0)
    back = load_checkpoint(save_checkpoint(agent, tmp_path / "a.pt"))
    assert back.view_size == 5
    for name, value in agent.state_dict().items():
        assert torch.equal(value, back.state_dict()[name])


def test_checkpoints_from_before_the_view_size_moved_still_load(tmp_path) -> None:
    """Older checkpoints carry ``view_cells`` in their AgentConfig and no view size."""
    import json

    agent = build_agent(get_config("fast"), 0)
    payload = torch.load(save_checkpoint(agent, tmp_path / "a.pt"), weights_only=True)
    payload["config"] = json.dumps({**json.loads(payload.pop("config")), "view_cells": 49})
    del payload["view_size"]
    torch.save(payload, tmp_path / "old.pt")
    back = load_checkpoint(tmp_path / "old.pt")
    assert back.view_size == 7 and np.array_equal(back.embed(TEXTS[:3]), agent.embed(TEXTS[:3]))
