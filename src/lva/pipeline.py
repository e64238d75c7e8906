"""The study's pipeline, stage by stage: each stage is a function of the config that loads its
artifact from the cache, or builds it and caches it.

::

    demonstrations(cfg) ──► visual_features(cfg) ──► agents(cfg) ──► vision_encoders(cfg) ──►
       chapter 1             chapter 2 (imagenet      chapter 3       chapter 4
       lva.demos             vision only)             lva.train       lva.grounding
                             lva.vision

    ──► embeddings(cfg) ──► alignment(cfg, reps)
        chapter 5            chapter 6
        lva.embeddings       lva.alignment
               │
               └──► robustness(cfg, reps)
                    chapter 6, lva.robustness

Each arrow means "needs": agents are cloned from the demonstrations (through their ImageNet
features when ``cfg.agent.vision == "imagenet"``); the vision-grounded encoders learn from the
same demonstrations' views (never their actions) with the agent's text architecture; the
embeddings include every agent's and every encoder's E_L, and the alignment compares them. The
stage modules named under each stage only compute; this module decides where artifacts live
(``cfg.artifact`` / ``cfg.stage_dir``, keyed by the config sections each stage depends on) and
writes them atomically (:mod:`lva.io`). Torch runs on ``cfg.threads`` threads in every stage
that computes with it. Language-model embeddings have their own cache (:mod:`lva.embeddings`);
chapter 6's headline statistics are recomputed, and its specification curve (the slowest of
them) is cached under a hash of everything it reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .agent import Agent, load_checkpoint, save_checkpoint
from .config import Config
from .demos import Demos, generate
from .evaluate import evaluate, success_table
from .grounding import (GroundedEncoder, GroundHistory, Pairs, chosen_episodes, episode_views, load_encoder,
                        make_pairs, save_encoder, train_encoder)
from .instructions import TASK_NAMES
from .io import load_json, load_npz, save_json, save_npz
from .train import History, train

T = TypeVar("T")

#: The stages in order (the functions of this module).
STAGES = ("demonstrations", "visual_features", "agents", "vision_encoders", "embeddings", "alignment", "robustness")


def _load_or_build(path: Path, load: Callable[[Path], T], build: Callable[[], T], save: Callable[[T, Path], Any],
                   info: dict[str, Any] | None) -> T:
    """``load(path)`` if the artifact exists, else ``build()`` then ``save``; fills ``info`` with
    ``cached`` and ``seconds`` (load or build time, saving excluded)."""
    start = time.perf_counter()
    cached = path.exists()
    value = load(path) if cached else build()
    seconds = time.perf_counter() - start
    if not cached:
        save(value, path)
    if info is not None:
        info.update(cached=cached, seconds=seconds)
    return value


def _save_table(table: Any, path: Path) -> None:
    """A DataFrame as JSON (its columns in order, then its rows), written atomically."""
    save_json(path, {"columns": list(table.columns), "rows": table.to_dict(orient="records")})


def _load_table(path: Path) -> Any:
    """The DataFrame :func:`_save_table` wrote, columns in their original order."""
    import pandas as pd

    stored = load_json(path)
    return pd.DataFrame(stored["rows"], columns=stored["columns"])


def _use_threads(cfg: Config) -> None:
    import torch

    torch.set_num_threads(cfg.threads)


def demonstrations(cfg: Config, show_progress: bool = True, info: dict[str, Any] | None = None) -> Demos:
    """Stage 1: the expert demonstrations of ``cfg`` (``env`` and ``demos`` sections).

    ``info``, if given, receives ``cached``, ``seconds`` and, when generated now, ``episodes_per_s``.
    """
    info = {} if info is None else info
    demos = _load_or_build(
        cfg.artifact("demos", "demos.npz"),
        Demos.load,
        lambda: generate(cfg.env, cfg.demos.episodes_per_task, cfg.demos.seed, show_progress=show_progress, expert=cfg.demos.expert),
        lambda d, path: d.save(path),
        info,
    )
    if not info["cached"]:
        info["episodes_per_s"] = demos.n_episodes / info["seconds"]
    return demos


def visual_features(cfg: Config, show_progress: bool = True, info: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 (``vision="imagenet"`` only): frozen ImageNet features of the demonstrations' distinct
    views, ``(features, index)`` with ``features[index[t]]`` the map of transition ``t``.

    ``info``, if given, receives ``cached``, ``seconds`` and, when computed now, ``views``,
    ``distinct`` and ``views_per_s``.
    """
    from .vision import imagenet_features, view_table

    info = {} if info is None else info

    def build() -> tuple[np.ndarray, np.ndarray]:
        _use_threads(cfg)
        uniq, index = view_table(demonstrations(cfg, show_progress).image)
        return imagenet_features(uniq, cfg.env.rgb_tile, show_progress=show_progress), index.astype(np.int64)

    def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        data = load_npz(path)
        return data["features"], data["index"]

    features, index = _load_or_build(
        cfg.artifact("features", "imagenet-stride8.npz"), load, build,
        lambda fi, path: save_npz(path, features=fi[0], index=fi[1]), info,
    )
    if not info["cached"]:
        info.update(views=len(index), distinct=len(features), views_per_s=len(features) / info["seconds"])
    return features, index


def checkpoint_paths(cfg: Config, seed: int) -> tuple[Path, Path]:
    """Where the checkpoint and the training history of one agent seed live (keyed by config)."""
    return cfg.artifact("agent", f"seed{seed}.pt"), cfg.artifact("agent", f"seed{seed}-history.json")


def trained_agent(cfg: Config, seed: int | None = None, show_progress: bool = True) -> tuple[Agent, History, bool]:
    """Stage 3 for one seed (``cfg.seed`` by default): ``(agent, history, cached)``, from its
    checkpoint if present, else trained by behavioural cloning on :func:`demonstrations` (and
    :func:`visual_features`) and saved."""
    seed = cfg.seed if seed is None else seed
    ckpt, hist_path = checkpoint_paths(cfg, seed)
    if ckpt.exists() and hist_path.exists():
        return load_checkpoint(ckpt), History(**load_json(hist_path)), True
    demos = demonstrations(cfg, show_progress)
    features = visual_features(cfg, show_progress) if cfg.agent.vision == "imagenet" else None
    agent, history = train(cfg, demos, seed, show_progress=show_progress, features=features)
    save_json(hist_path, history.to_dict())
    save_checkpoint(agent, ckpt)
    return agent, history, False


def agents(cfg: Config, show_progress: bool = True) -> dict[int, Agent]:
    """Stage 3: the trained agent of every seed in ``cfg.agent_seeds`` (trained once, then cached)."""
    return {seed: trained_agent(cfg, seed, show_progress)[0] for seed in cfg.agent_seeds}


def evaluation(cfg: Config, seed: int | None = None, info: dict[str, Any] | None = None) -> Any:
    """The trained agent of ``seed`` (``cfg.seed`` by default) on ``checks.eval_episodes_per_task``
    fresh episodes per task (:func:`lva.evaluate.evaluate`, the ``eval`` stream of ``cfg.seed``):
    one row per episode, cached beside the agent's checkpoint, so chapter 3's tables and its
    comparison of seeds roll each agent out once per machine, not once per table."""
    seed = cfg.seed if seed is None else seed
    n = cfg.checks.eval_episodes_per_task
    path = cfg.artifact("agent", f"seed{seed}-eval{n}-stream{cfg.seed}.json")
    return _load_or_build(path, _load_table, lambda: evaluate(trained_agent(cfg, seed)[0], cfg), _save_table, info)


def trained_success(cfg: Config, seed: int | None = None) -> dict[str, float]:
    """The trained agent of ``cfg`` and ``seed`` evaluated on ``checks.eval_episodes_per_task`` fresh
    episodes per task: success rate per task (keyed by display name) and its training seconds."""
    _, history, _ = trained_agent(cfg, seed)
    table = success_table(evaluation(cfg, seed), "task")["success"]
    return {**{TASK_NAMES[k]: float(v) for k, v in table.items()}, "training s": history.seconds[-1]}


def vision_pairs(cfg: Config, show_progress: bool = True, info: dict[str, Any] | None = None) -> Pairs:
    """Stage 4's data: the first and final views of ``ground.episodes_per_task`` demonstrations
    per task with their frozen ImageNet features and instructions (:func:`lva.grounding.make_pairs`),
    cached under the ``vision-pairs`` stage (``env``, ``demos``) in a file named after the two
    ``ground`` fields it depends on. ``info`` receives ``cached`` and ``seconds``."""
    gc = cfg.ground

    def build() -> Pairs:
        _use_threads(cfg)
        demos = demonstrations(cfg, show_progress)
        episodes = chosen_episodes(demos.task, gc.episodes_per_task)
        views = episode_views(demos, cfg.env, episodes, gc.views, show_progress)
        return make_pairs(demos.instruction[episodes], views, cfg.env.rgb_tile, gc.views, show_progress)

    path = cfg.artifact("vision-pairs", f"pairs-{gc.episodes_per_task}-{'-'.join(gc.views)}.npz")
    return _load_or_build(path, lambda p: Pairs.from_arrays(load_npz(p)), build, lambda v, p: save_npz(p, **v.to_arrays()), info)


def trained_vision_encoder(cfg: Config, seed: int | None = None, show_progress: bool = True) -> tuple[GroundedEncoder, GroundHistory, bool]:
    """Stage 4 for one seed (``cfg.seed`` by default): ``(encoder, history, cached)``, from its
    checkpoint if present, else trained contrastively on :func:`vision_pairs` and saved."""
    seed = cfg.seed if seed is None else seed
    ckpt, hist_path = cfg.artifact("vision", f"seed{seed}.pt"), cfg.artifact("vision", f"seed{seed}-history.json")
    if ckpt.exists() and hist_path.exists():
        return load_encoder(ckpt), GroundHistory(**load_json(hist_path)), True
    encoder, history = train_encoder(cfg, vision_pairs(cfg, show_progress), seed, show_progress=show_progress)
    save_json(hist_path, history.to_dict())
    save_encoder(encoder, ckpt)
    return encoder, history, False


def vision_encoders(cfg: Config, show_progress: bool = True) -> dict[int, GroundedEncoder]:
    """Stage 4: the vision-grounded encoder of every seed in ``cfg.agent_seeds`` (trained once, then cached)."""
    return {seed: trained_vision_encoder(cfg, seed, show_progress)[0] for seed in cfg.agent_seeds}


def referent_control(cfg: Config) -> np.ndarray:
    """Chapter 6's referent-only vision control: ``(396, 40)`` frozen ImageNet features of each
    instruction's object rendered alone, task-blind (:func:`lva.grounding.referent_control`;
    24 views, computed in well under a second, not cached)."""
    from .grounding import referent_control as features

    _use_threads(cfg)
    return features(cfg.env.rgb_tile)


def embeddings(cfg: Config, models: str | Sequence[str] = "offline", show_progress: bool = True) -> dict[str, np.ndarray]:
    """Stage 5: every representation of every instruction (:func:`lva.embeddings.representations`:
    each agent's E_L, the untrained agent, each vision-grounded encoder's text output and its
    untrained twin, the language models of ``models`` and the controls)."""
    from .embeddings import model_names, representations

    names = model_names(cfg, models)  # fail fast, before any training, if a model is missing
    return representations(cfg, agents(cfg, show_progress), models=names, show_progress=show_progress,
                           vision=vision_encoders(cfg, show_progress))


def anchor(cfg: Config) -> str:
    """The name of the action space chapter 6 compares everything with: the first agent's E_L."""
    return f"agent-seed{cfg.agent_seeds[0]}"


def alignment(cfg: Config, reps: dict[str, np.ndarray]) -> Any:
    """Stage 6: the headline table, :func:`anchor` against every other representation under every
    metric, with the sizes of ``cfg.align`` (permutations, resamples, k) (:func:`lva.alignment.headline_for`)."""
    from .alignment import headline_for, threads

    with threads(cfg.threads):
        return headline_for(reps, anchor(cfg), cfg.align)


def language_model_poolings(reps: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Every pooling (all layers) of each decoder and encoder among ``reps``, from chapter 5's
    cache (:func:`lva.embeddings.all_poolings`)."""
    from .embeddings import all_poolings, family_of

    return {name: all_poolings(name) for name in reps if family_of(name) in ("decoder", "encoder")}


def robustness(cfg: Config, reps: dict[str, np.ndarray], pooled: dict[str, dict[str, np.ndarray]] | None = None,
               info: dict[str, Any] | None = None) -> Any:
    """Stage 7: the specification curve of every language model against :func:`anchor`
    (:func:`lva.robustness.specification_curve` with the sizes of ``cfg.align``), cached under
    ``<cache>/robustness/curve-<hash>.json``, the hash covering ``cfg.align`` and the bytes of
    every vector it reads, so any change to an agent or an embedding recomputes it."""
    import hashlib
    import json

    from .robustness import meaning_halves, specification_curve

    pooled = language_model_poolings(reps) if pooled is None else pooled
    name = anchor(cfg)
    h = hashlib.sha256(json.dumps({"align": cfg.to_dict()["align"], "anchor": name}, sort_keys=True).encode())
    h.update(np.ascontiguousarray(reps[name]).tobytes())
    for model in sorted(pooled):
        for pooling in sorted(pooled[model]):
            h.update(f"{model}/{pooling}".encode())
            h.update(np.ascontiguousarray(pooled[model][pooling]).tobytes())
    path = Path(cfg.cache_dir) / "robustness" / f"curve-{h.hexdigest()[:12]}.json"
    align = cfg.align

    def build() -> Any:
        from .alignment import threads

        with threads(cfg.threads):
            return specification_curve(reps[name], pooled, k=align.k, n_perm=align.n_perm,
                                       n_perm_retrieval=align.n_perm_retrieval, seed=align.seed,
                                       halves=meaning_halves(seed=align.seed))

    return _load_or_build(path, _load_table, build, _save_table, info)
