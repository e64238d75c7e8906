"""One answer check per exercise, chapter by chapter, each registered under its id with
:func:`lva.checks.common._exercise`: it recomputes the reference from the library and raises a
hint (:class:`lva.checks.common._Wrong`) when the answer does not match."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .common import (
    _changed,
    _close,
    _close_frame,
    _close_mapping,
    _exercise,
    _frame,
    _kind,
    _mapping,
    _number,
    _same_keys,
    _table,
    _Wrong,
)


# ----------------------------------------------------------------------------- chapter 1
@_exercise("1.1", "a dict {meaning (task, colour, type): number of instructions with that meaning}")
def _meanings(answer: Any) -> str:
    from collections import Counter

    from ..instructions import all_instructions

    ref = Counter(i.meaning for i in all_instructions())
    mine = _mapping(answer, "a dict {meaning: number of instructions}")
    _same_keys(mine, ref, "the meanings (task, colour, type) of `i.meaning`")
    for meaning, n in ref.items():
        if _number(mine[meaning], f"the count of {meaning}") != n:
            raise _Wrong(f"{meaning} has {n} instructions, not {mine[meaning]}.")
    return f"{len(ref)} meanings, {sorted(set(ref.values()))} instructions each."


@_exercise("1.2", "a dict {task: the expert's mean episode length with escape_distance=6}")
def _escape(answer: Any, cfg: Any, episodes: int = 100, seed: int = 1) -> None:
    from ..expert import check_expert

    harder = _changed(cfg, "env", escape_distance=6).env
    ref = {row["task"]: float(row["mean_steps"]) for row in check_expert(harder, episodes, seed=seed)}
    mine = _mapping(answer, "a dict {task: mean steps}")
    _same_keys(mine, ref, "the tasks")
    escape = _number(mine["escape"], "the mean steps of 'escape'")
    if not np.isclose(escape, ref["escape"], rtol=1e-4):
        default = {row["task"]: row["mean_steps"] for row in check_expert(cfg.env, episodes, seed=seed)}["escape"]
        if np.isclose(escape, default, rtol=1e-4):
            raise _Wrong("that is the mean with the default escape distance: use the `harder` config's env.")
        raise _Wrong(f"'escape' is {escape:.4g}: use check_expert(harder.env, {episodes}, seed={seed}).")
    _close_mapping(mine, ref, "mean steps")


# ----------------------------------------------------------------------------- chapter 2
_PAIR = ["go to the red ball", "go to the blue ball"]


@_exercise("2.1", "the two sentence vectors of the identical-start agent, an array of shape (2, embed_dim)")
def _identical(answer: Any, cfg: Any, seed: int = 0) -> None:
    from ..agent import build_agent

    ref = build_agent(_changed(cfg, "agent", token_init="identical"), seed=seed).embed(_PAIR)
    if not isinstance(answer, (np.ndarray, list, tuple)) and type(answer).__name__ != "Tensor":
        raise _Wrong(
            f"`answer` should be an array of shape {ref.shape} (`same.embed([...])`); it is a {_kind(answer)}."
        )
    try:
        mine = np.asarray(answer, dtype=float)
    except Exception:  # a ragged list, strings, a tensor that needs .detach()
        raise _Wrong(f"`answer` should be an array of numbers of shape {ref.shape}.") from None
    if mine.shape != ref.shape:
        raise _Wrong(f"`answer` has shape {mine.shape}; embed both sentences at once: shape {ref.shape}.")
    if not np.allclose(mine[0], mine[1], atol=1e-6):
        raise _Wrong("your two vectors differ: build the agent with token_init='identical'.")
    if not np.allclose(mine, ref, atol=1e-5):
        raise _Wrong(f"these are not the vectors of build_agent(..., seed={seed}) with token_init='identical'.")


@_exercise("2.2", "a dict {part: parameter count} of the half-channel agent (`parameter_counts()`)")
def _params(answer: Any, cfg: Any, seed: int = 0) -> None:
    from ..agent import build_agent

    ref = build_agent(_changed(cfg, "agent", channels=cfg.agent.channels // 2), seed=seed).parameter_counts()
    if isinstance(_table(answer), pd.DataFrame):
        raise _Wrong("bind the half-channel agent's counts only (`small.parameter_counts()`), not the table.")
    mine = _mapping(answer, "a dict {part: parameter count}")
    _same_keys(mine, ref, "the parts")
    mine = {part: _number(n, f"the count of {part!r}") for part, n in mine.items()}
    if mine == build_agent(cfg, seed=seed).parameter_counts():
        raise _Wrong("these are the default agent's counts: halve `agent__channels`.")
    wrong = [part for part, n in ref.items() if mine[part] != n]
    if wrong:
        raise _Wrong(f"the count of {wrong[0]!r} is {mine[wrong[0]]}, which does not match the half-channel agent.")


# ----------------------------------------------------------------------------- chapter 3
@_exercise("3.1", "a dict {task: the verb phrase with the lowest success rate in that task}")
def _hardest(answer: Any, results: pd.DataFrame) -> None:
    from ..evaluate import success_table

    rates = success_table(results, ["task", "verb"])["success"]
    ref = {task: rates.loc[task] for task in rates.index.get_level_values("task").unique()}
    mine = _mapping(answer, "a dict {task: verb phrase}")
    _same_keys(mine, ref, "the tasks (as in results['task'])")
    for task, by_verb in ref.items():
        verb = mine[task]
        if not isinstance(verb, str) or verb not in by_verb.index:
            raise _Wrong(f"{verb!r} is not a verb phrase of {task!r}; its verb phrases: {', '.join(by_verb.index)}.")
        if by_verb[verb] > by_verb.min():
            raise _Wrong(
                f"in {task!r}, {verb!r} succeeds in {by_verb[verb]:.0%} of its episodes; another verb phrase "
                f"does worse."
            )


@_exercise("3.2", "the PICK-UP success rate with the unknown verb 'snatch', a fraction between 0 and 1")
def _unknown(answer: Any, agent: Any, cfg: Any, episodes_per_task: int = 40) -> str:
    from ..evaluate import eval_episodes, rollout

    mine = _number(answer, "a success rate")
    pickups = [p for p in eval_episodes(episodes_per_task, cfg.seed + 7) if p[1].task == "pickup"]
    texts = [f"snatch the {ins.color} {ins.obj_type}" for _, ins in pickups]
    ref = float(np.mean([r["success"] for r in rollout(agent, cfg.env, pickups, texts=texts)]))
    if not np.isclose(mine, ref, atol=1e-9):
        normal = float(np.mean([r["success"] for r in rollout(agent, cfg.env, pickups)]))
        if np.isclose(mine, normal, atol=1e-9):
            raise _Wrong("that is the success with the real verbs: pass `texts=` with the unknown verb.")
    _close(
        mine,
        ref,
        "the success rate",
        atol=1e-9,
        percent_hint=True,
        tip=f"Use the PICK-UP episodes of eval_episodes({episodes_per_task}, cfg.seed + 7), each verb "
        f"replaced by 'snatch'.",
    )
    return f"{len(pickups)} PICK-UP episodes."


# ----------------------------------------------------------------------------- chapter 4
_COSINES = ["synonyms", "different meanings"]


@_exercise(
    "4.1",
    "a DataFrame with rows 'trained' and 'untrained' and columns 'synonyms' and 'different meanings' (mean cosines)",
)
def _synonym_cosines(answer: Any, enc: Any, cfg: Any) -> None:
    from ..grounding import build_encoder, meanings
    from ..instructions import all_instructions

    meaning = meanings()
    same = meaning[:, None] == meaning[None, :]
    off = ~np.eye(len(meaning), dtype=bool)
    texts = [i.text for i in all_instructions()]
    ref = {}
    for name, model in {"trained": enc, "untrained": build_encoder(cfg, cfg.agent_seeds[0])}.items():
        x = model.embed(texts)
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        cos = x @ x.T
        ref[name] = {
            "synonyms": cos[same & off].mean(),
            "different meanings": cos[~same].mean(),
            "with itself": cos[same].mean(),
        }
    mine = _frame(answer, ["trained", "untrained"], _COSINES, "a table of mean cosines (rows trained, untrained)")
    for name, row in ref.items():
        if np.isclose(mine.loc[name, "synonyms"], row["with itself"], atol=2e-3):
            raise _Wrong(
                f"the {name} encoder's synonym cosine counts each sentence with itself: leave the diagonal out."
            )
        for column in _COSINES:
            _close(
                mine.loc[name, column],
                row[column],
                f"the {name} encoder's {column!r} cosine",
                atol=2e-3,
                tip="Scale each vector to unit length, then average the cosines of distinct synonyms "
                "(off the diagonal) and of instructions with different meanings.",
            )


_VIEW_COLUMNS = ["final view only", "first and final"]


@_exercise(
    "4.2",
    "a DataFrame of top-1 retrieval, one row per task (and 'all'), columns 'final view only' and 'first and final'",
)
def _views(answer: Any, cfg: Any, pairs: Any, pool: np.ndarray, epochs: int = 4) -> None:
    from .. import grounding as G

    final_only = G.Pairs(
        pairs.instruction, pairs.index[:, [pairs.view_names.index("final")]], pairs.features, pairs.views, ("final",)
    )
    short = _changed(cfg, "ground", epochs=epochs)
    one, _ = G.train_encoder(_changed(short, "ground", views=("final",)), final_only, cfg.agent_seeds[0])
    two, _ = G.train_encoder(short, pairs, cfg.agent_seeds[0])
    ref = pd.DataFrame(
        {
            _VIEW_COLUMNS[0]: G.retrieval(one, final_only, pool)["top-1"],
            _VIEW_COLUMNS[1]: G.retrieval(two, pairs, pool)["top-1"],
        }
    )
    mine = _frame(answer, list(ref.index), _VIEW_COLUMNS, "a table of top-1 retrieval (one row per task)")
    _close_frame(
        mine,
        ref,
        lambda task, column: f"{column!r}, {task}",
        atol=1e-6,
        percent_hint=True,
        tip=f"Train both encoders for {epochs} epochs with seed cfg.agent_seeds[0] and score them on `pool`.",
    )


# ----------------------------------------------------------------------------- chapter 5
@_exercise("5.1", "a DataFrame with one row per layer and columns 'raw' and 'centred' (anisotropy)")
def _layers(answer: Any, layers: np.ndarray | None = None, model: str = "qwen2.5-coder-0.5b") -> str:
    from ..embeddings import layerwise
    from ..geometry import anisotropy

    layers = layerwise(model) if layers is None else layers
    ref = pd.DataFrame(
        {"raw": [anisotropy(x) for x in layers], "centred": [anisotropy(x, center=True) for x in layers]}
    )
    table = _table(answer)
    if isinstance(table, pd.DataFrame) and len(table) != len(ref) and len(table.columns) == len(ref):
        table = table.T
    if isinstance(table, pd.DataFrame) and len(table) == len(ref):
        table = table.set_axis(ref.index)  # rows in layer order, whatever their labels
    mine = _frame(table, list(ref.index), ["raw", "centred"], f"a table of {len(ref)} layers x (raw, centred)")
    _close_frame(
        mine,
        ref,
        lambda layer, column: f"layer {layer}, {column}",
        atol=1e-4,
        tip="Use E.anisotropy(x) and E.anisotropy(x, center=True) of each layer x, layer 0 first.",
    )
    return f"{len(ref)} layers."


@_exercise("5.2", "a dict (or Series) {representation: share of same-meaning sentences among the 5 nearest}")
def _synonym_neighbours(answer: Any, reps: Mapping[str, np.ndarray], k: int = 5) -> None:
    from ..geometry import unit_rows
    from ..instructions import all_instructions

    instructions = all_instructions()
    meanings = sorted({i.meaning for i in instructions})
    meaning = np.array([meanings.index(i.meaning) for i in instructions])
    same = meaning[:, None] == meaning[None, :]
    ref = {}
    for name, x in reps.items():
        u = unit_rows(x, center=True)
        sim = u @ u.T
        np.fill_diagonal(sim, -np.inf)
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        ref[name] = float(same[np.arange(len(x))[:, None], top].mean())
    _close_mapping(
        _mapping(answer, "a dict {representation: share}"),
        ref,
        "the share",
        atol=1e-4,
        tip=f"Centre each representation (E.unit_rows(x, center=True)), leave each sentence out of its "
        f"own neighbours, and count the same-meaning ones among its {k} nearest.",
    )


# ----------------------------------------------------------------------------- chapter 6
def _decoders(reps: Mapping[str, np.ndarray]) -> list[str]:
    from ..catalogue import family_of
    from ..names import DECODER

    return [n for n in reps if family_of(n) == DECODER]


@_exercise("6.1", "a dict (or Series) {decoder: uncentred mutual k-NN precision@k against the action space}")
def _uncentred(answer: Any, reps: Mapping[str, np.ndarray], cfg: Any) -> None:
    from .. import alignment as al
    from ..pipeline import anchor

    a, k = reps[anchor(cfg)], cfg.align.k
    table = _table(answer)
    if isinstance(table, pd.DataFrame) and "uncentred" in table.columns:
        table = table["uncentred"]
    mine = _mapping(table, "a dict {decoder: uncentred score}")
    ref = {n: al.measure("mutual_knn", a, reps[n], k=k, center=False) for n in _decoders(reps)}
    _same_keys(mine, ref, "the decoders")
    for name, value in ref.items():
        score = _number(mine[name], f"the score of {name!r}")
        if not np.isclose(score, value, atol=1e-6):
            centred = al.measure("mutual_knn", a, reps[name], k=k)
            if np.isclose(score, centred, atol=1e-6) and not np.isclose(centred, value, atol=1e-6):
                raise _Wrong(f"{name!r}: that is the centred score; pass center=False.")
            _close(score, value, f"{name!r}", atol=1e-6, tip=f"Score each decoder against the action space with k={k}.")


@_exercise("6.2", "a tuple (in-sample score, cross-validated score) of the Procrustes retrieval")
def _insample(
    answer: Any,
    reps: Mapping[str, np.ndarray],
    cfg: Any,
    source: str = "qwen2.5-coder-0.5b",
    target: str = "gemma-3-270m",
) -> str:
    from .. import alignment as al

    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise _Wrong(
            f"`answer` should be a tuple of two numbers (in_sample, held_out); it is a {_kind(answer)}"
            + (f" of length {len(answer)}." if isinstance(answer, (tuple, list)) else ".")
        )
    mine = [_number(x, "a score") for x in answer]
    n, k = len(reps[source]), cfg.align.k
    shuffled = reps[target][np.random.default_rng(0).permutation(n)]
    ref = [
        al.measure("procrustes_retrieval", reps[source], shuffled, k=k, in_sample=in_sample, n_components=None)
        for in_sample in (True, False)
    ]
    if np.isclose(mine[0], ref[1], atol=1e-6) and np.isclose(mine[1], ref[0], atol=1e-6) and ref[0] != ref[1]:
        raise _Wrong("the two scores are swapped: (in-sample, cross-validated).")
    tip = f"Use Qwen against the shuffled copy of Gemma, with k={k} and n_components=None."
    _close(mine[0], ref[0], "the in-sample score", atol=1e-6, tip=tip)
    _close(mine[1], ref[1], "the cross-validated score", atol=1e-6, tip=tip)
    return f"chance is {al.chance('procrustes_retrieval', n, k):.3f}."


@_exercise(
    "6.3", "the share of qwen2.5-coder-0.5b's specifications above the encoder with k = 10, a fraction between 0 and 1"
)
def _k10(
    answer: Any,
    reps: Mapping[str, np.ndarray],
    cfg: Any,
    pooled: Mapping[str, Mapping[str, np.ndarray]],
    k: int = 10,
    decoder: str = "qwen2.5-coder-0.5b",
    encoder: str = "minilm",
) -> None:
    from .. import robustness as rb
    from ..catalogue import family_of
    from ..pipeline import anchor

    mine = _number(answer, "a share of specifications")
    subset = {decoder: {p: pooled[decoder][p] for p in ("last", "echo")}, encoder: pooled[encoder]}
    # the scores do not depend on the number of permutations, only the p-values (unused here)
    curve = rb.specification_curve(
        reps[anchor(cfg)],
        subset,
        metrics=("mutual_knn",),
        k=k,
        n_perm=1,
        seed=cfg.align.seed,
        halves=rb.meaning_halves(seed=cfg.align.seed),
    )
    table = rb.decoder_vs_encoder(curve, {n: family_of(n) for n in subset})
    _close(
        mine,
        float(table["share above the encoder"].iloc[0]),
        "the share",
        atol=1e-9,
        percent_hint=True,
        tip=f"Score Qwen's 'last' and 'echo' poolings and every pooling of {encoder} with k={k}, then read "
        f"'share above the encoder' of rb.decoder_vs_encoder.",
    )
