"""The study's pipeline, stage by stage: each stage is a function of the config that loads its
artifact from the cache, or builds it and caches it.

::

    demonstrations(cfg) ──► visual_features(cfg) ──► agents(cfg) ──► vision_encoders(cfg) ──►
       chapter 1             chapter 2 (imagenet      chapter 3       chapter 4
       lva.demos             vision only)             lva.train       lva.grounding
                             lva.vision

    ──► embeddings(cfg) ──► alignment(cfg, reps) ──► triangle(cfg, spaces, family)
        chapter 5            chapter 6                chapter 6, lva.triangle (its action
        lva.embeddings       lva.alignment            side read from the headline table)
               │
               └──► robustness(cfg, reps) ──► layer_choice(cfg, reps)
                    chapter 6, lva.robustness   (its cross-validated columns read from the curve)

Each arrow means "needs": agents are cloned from the demonstrations (through their ImageNet
features when ``cfg.agent.vision == "imagenet"``); the vision-grounded encoders learn from their
views (never their actions) with the agent's text architecture; the embeddings include every
agent's and encoder's E_L. The stage modules only compute; this module decides what each
artifact is built from (``cfg.artifact``: the config sections its stage depends on, plus a seed
or a size), which makes its path, and writes it atomically (:mod:`lva.io`) with a manifest that
every load checks (:mod:`lva.cache`): a damaged artifact is rebuilt after a one-line notice, except an agent, which
is not retrained unasked: the error names the command (``python -m lva train --profile <p>
--seed <n>``). Torch runs on ``cfg.threads`` threads, except in training: agents and encoders
train on one thread each, side by side (:func:`lva.workers.side_by_side`). Language-model
embeddings (:mod:`lva.embeddings`) and chapter 6's tables (:mod:`lva.pipeline_tables`,
re-exported here) are cached the same way. A stage called gives its artifact; ``.built(...)``
gives it with whether it came from the cache and in how many seconds (:class:`lva.cache.Built`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import cache, catalogue, representations, workers
from . import names as N
from .agent import Agent, load_checkpoint, save_checkpoint
from .cache import Artifact, Built
from .config import Config, get_config
from .demos import Demos, generate
from .errors import CacheError
from .evaluate import evaluate, success_table
from .grounding import (
    GroundedEncoder,
    GroundHistory,
    Pairs,
    chosen_episodes,
    episode_views,
    load_encoder,
    make_pairs,
    save_encoder,
    train_encoder,
)
from .instructions import TASK_NAMES, TASKS
from .io import load_json, load_npz, save_json, save_npz, save_npz_mappable
from .pipeline_tables import alignment as alignment
from .pipeline_tables import anchor as anchor
from .pipeline_tables import language_model_poolings as language_model_poolings
from .pipeline_tables import layer_choice as layer_choice
from .pipeline_tables import load_table, save_table
from .pipeline_tables import robustness as robustness
from .pipeline_tables import triangle as triangle
from .pipeline_tables import triangle_pairs as triangle_pairs
from .train import History, train

if TYPE_CHECKING:
    import pandas as pd

#: The stages in order (the functions of this module; the last two from :mod:`lva.pipeline_tables`).
STAGES = ("demonstrations", "visual_features", "agents", "vision_encoders", "embeddings", "alignment", "robustness")


def _demos_counts(demos: Demos) -> dict[str, Any]:
    per_task = np.bincount(demos.task, minlength=len(TASKS))
    return {
        "episodes": demos.n_episodes,
        "transitions": demos.n_transitions,
        "episodes_per_task": {task: int(n) for task, n in zip(TASKS, per_task)},
    }


def _use_threads(cfg: Config) -> None:
    import torch

    torch.set_num_threads(cfg.threads)


@cache.stage
def demonstrations(cfg: Config, show_progress: bool = True) -> Built[Demos]:
    """Stage 1: the expert demonstrations of ``cfg`` (``env`` and ``demos`` sections)."""
    return cache.load_or_build(
        cfg.artifact("demos", "demos.npz"),
        Demos.load,
        lambda: generate(
            cfg.env,
            cfg.demos.episodes_per_task,
            cfg.demos.seed,
            show_progress=show_progress,
            expert=cfg.demos.expert,
            workers=cfg.threads,
        ),
        lambda d, path: d.save(path),
        counts=_demos_counts,
        expect={"episodes_per_task": {task: cfg.demos.episodes_per_task for task in TASKS}},
    )


@cache.stage
def visual_features(cfg: Config, show_progress: bool = True) -> Built[tuple[np.ndarray, np.ndarray]]:
    """Stage 2 (``vision="imagenet"`` only): frozen ImageNet features of the demonstrations' distinct
    views, ``(features, index)`` with ``features[index[t]]`` the map of transition ``t``."""
    from .vision import imagenet_features, view_table

    def build() -> tuple[np.ndarray, np.ndarray]:
        _use_threads(cfg)
        uniq, index = view_table(demonstrations(cfg, show_progress).image)
        return imagenet_features(uniq, cfg.env.rgb_tile, show_progress=show_progress), index.astype(np.int64)

    def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
        # mapped, not read: the agents training side by side share one copy of the file's pages
        # instead of each worker holding its own
        data = load_npz(path, mmap=True)
        return data["features"], data["index"]

    return cache.load_or_build(
        cfg.artifact("features", "imagenet-stride8.npz"),
        load,
        build,
        lambda fi, path: save_npz_mappable(path, features=fi[0], index=fi[1]),
        counts=lambda fi: {"features": list(fi[0].shape), "views": len(fi[1]), "index_max": int(fi[1].max(initial=-1))},
    )


#: What a trained network's files are built from besides its stage's config and seed: vision
#: encoders train on one thread each (:func:`lva.grounding.train_encoder`), and one trained on
#: ``cfg.threads`` before that gives another encoder for a seed.
_TRAINED_EXTRA: dict[str, dict[str, Any]] = {"agent": {}, "vision": {"torch_threads": 1}}


def checkpoint_artifacts(cfg: Config, seed: int, stage: str = "agent") -> tuple[Artifact, Artifact]:
    """The checkpoint and the training history of one agent seed (keyed by config and seed);
    ``stage="vision"``: of one vision-grounded encoder seed."""
    extra = {"seed": seed, **_TRAINED_EXTRA[stage]}
    return cfg.artifact(stage, f"seed{seed}.pt", **extra), cfg.artifact(stage, f"seed{seed}-history.json", **extra)


def checkpoint_paths(cfg: Config, seed: int, stage: str = "agent") -> tuple[Path, Path]:
    """Where the checkpoint and the training history of one seed live (:func:`checkpoint_artifacts`)."""
    ckpt, hist = checkpoint_artifacts(cfg, seed, stage)
    return ckpt.path, hist.path


def _agent_counts(agent: Agent) -> dict[str, Any]:
    return {
        "config": dataclasses.asdict(agent.cfg),
        "view_size": agent.view_size,
        "parameters": sum(p.numel() for p in agent.state_dict().values()),
    }


def _history_counts(history: History) -> dict[str, Any]:
    return {"epochs": len(history.epoch)}


def retrain_command(cfg: Config, seed: int) -> str:
    """How to rebuild the agent of ``cfg`` and ``seed``: the command line when ``cfg`` is its
    profile's own, else deleting its files (it is retrained on next use)."""
    ckpt, hist_path = checkpoint_paths(cfg, seed)
    delete = f"delete {ckpt.name} and {hist_path.name} in {ckpt.parent} to retrain it on next use"
    if cfg.key("env", "demos", "agent", "train") != get_config(cfg.profile).key("env", "demos", "agent", "train"):
        return delete
    return f"retrain it with `python -m lva train --profile {cfg.profile} --seed {seed}` (or {delete})"


def trained_agent(
    cfg: Config, seed: int | None = None, show_progress: bool = True, retrain: bool = False
) -> tuple[Agent, History, bool]:
    """Stage 3 for one seed (``cfg.seed`` by default): ``(agent, history, cached)``, from its
    checkpoint if present, else trained by behavioural cloning on :func:`demonstrations` (and
    :func:`visual_features`) and saved.

    A checkpoint or history that fails its manifest's checks raises :class:`CacheError` naming
    :func:`retrain_command` (training takes minutes to hours: never started unasked), unless
    ``retrain`` (``python -m lva train`` passes it): then it is retrained after a one-line notice."""
    seed = cfg.seed if seed is None else seed

    def damaged(err: CacheError) -> None:
        if not retrain:
            raise CacheError(f"{err}; {retrain_command(cfg, seed)}") from None
        cache.notice(f"{err}; retraining it")

    def build() -> tuple[Agent, History]:
        demos = demonstrations(cfg, show_progress)
        features = visual_features(cfg, show_progress) if cfg.agent.vision == "imagenet" else None
        return train(cfg, demos, seed, show_progress=show_progress, features=features)

    return _trained(
        *checkpoint_artifacts(cfg, seed),
        build,
        damaged,
        load=load_checkpoint,
        save=save_checkpoint,
        counts=_agent_counts,
        expect={"config": dataclasses.asdict(cfg.agent), "view_size": cfg.env.view_size},
        history=History,
        history_counts=_history_counts,
        history_expect={"epochs": cfg.train.epochs},
    )


def _trained(
    ckpt: Artifact,
    hist: Artifact,
    build: Callable[[], tuple[Any, Any]],
    damaged: Callable[[CacheError], None],
    *,
    load: Callable[[Path], Any],
    save: Callable[[Any, Path], Any],
    counts: Callable[[Any], dict[str, Any]],
    history: type,
    history_counts: Callable[[Any], dict[str, Any]],
    expect: dict[str, Any] | None = None,
    history_expect: dict[str, Any] | None = None,
) -> tuple[Any, Any, bool]:
    """A trained network and its training history (an instance of ``history``): both read and
    verified against their manifests (``counts`` / ``history_counts``, checked against
    ``expect`` / ``history_expect``), else ``build()`` and both written with theirs;
    ``damaged(err)`` decides what a file that fails its checks means (raise, or notice and rebuild)."""
    if ckpt.path.exists():
        try:
            trained_history = cache.read(hist, lambda p: history(**load_json(p)), history_counts, history_expect)
            return cache.read(ckpt, load, counts, expect), trained_history, True
        except CacheError as err:
            damaged(err)
    network, trained_history = build()
    cache.write(hist, trained_history, lambda h, p: save_json(p, h.to_dict()), history_counts)
    cache.write(ckpt, network, save, counts)
    return network, trained_history, False


def agents(cfg: Config, show_progress: bool = True) -> dict[int, Agent]:
    """Stage 3: the trained agent of every seed in ``cfg.agent_seeds`` (the missing ones by :func:`train_agents`)."""
    train_agents([(cfg, seed) for seed in cfg.agent_seeds], show_progress)
    return {seed: trained_agent(cfg, seed, show_progress)[0] for seed in cfg.agent_seeds}


def variant(cfg: Config, **agent: Any) -> Config:
    """``cfg`` with some ``agent`` fields changed (``vision=...``, ``match=...``): chapter 3's
    comparison encoders and ablation, keeping every other knob of ``cfg``."""
    return dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, **agent))


def agent_jobs(cfg: Config) -> list[tuple[Config, int]]:
    """Every agent chapter 3 shows, as ``(config, seed)``: each seed of ``cfg.agent_seeds``, each
    other vision encoder of ``checks.compare_visions`` and the no-match-map ablation (seed ``cfg.seed``)."""
    others = [variant(cfg, vision=v) for v in cfg.checks.compare_visions if v != cfg.agent.vision]
    return [(cfg, seed) for seed in cfg.agent_seeds] + [(c, cfg.seed) for c in [*others, variant(cfg, match=False)]]


def _train_and_evaluate(cfg: Config, seed: int, show_progress: bool = True) -> None:
    """One job of :func:`train_agents`: train an agent and evaluate it, both cached."""
    trained_agent(cfg, seed, show_progress)
    evaluation(cfg, seed)


def train_agents(jobs: Sequence[tuple[Config, int]], show_progress: bool = True) -> list[tuple[Config, int]]:
    """Train and evaluate every agent of ``jobs`` whose checkpoint is missing, side by side
    (:func:`lva.workers.side_by_side`, ``threads + 1`` at once: more throughput than one agent
    after another on two threads); returns the ``(config, seed)`` trained now. What they all
    read (demonstrations, ImageNet features) is built first, once. A damaged checkpoint is not
    missing: loading it raises, naming the command that retrains it."""
    missing = [(c, seed) for c, seed in dict.fromkeys(jobs) if not checkpoint_paths(c, seed)[0].exists()]
    for c in {c.key("env", "demos", "agent"): c for c, _ in missing}.values():
        demonstrations(c, show_progress)
        if c.agent.vision == "imagenet":
            visual_features(c, show_progress)
    # threads + 1 at once, a memory bound more than a speed one: more workers add little
    # throughput and much memory (figures in benchmarks/README.md)
    workers.side_by_side(
        _train_and_evaluate,
        missing,
        "behavioural cloning",
        "agents",
        max((c.threads for c, _ in missing), default=1) + 1,
        show_progress,
    )
    return missing


def evaluation_artifact(cfg: Config, seed: int) -> Artifact:
    """Where :func:`evaluation` caches the evaluation of one agent seed (beside its checkpoint)."""
    n = cfg.checks.eval_episodes_per_task
    return cfg.artifact("agent", f"seed{seed}-eval.json", seed=seed, episodes_per_task=n, stream=cfg.seed)


@cache.stage
def evaluation(cfg: Config, seed: int | None = None) -> Built[pd.DataFrame]:
    """The trained agent of ``seed`` (``cfg.seed`` by default) on ``checks.eval_episodes_per_task``
    fresh episodes per task (:func:`lva.evaluate.evaluate`, the ``eval`` stream of ``cfg.seed``):
    one row per episode, cached beside the agent's checkpoint, so chapter 3's tables and its
    comparison of seeds roll each agent out once per machine, not once per table."""
    seed = cfg.seed if seed is None else seed
    n = cfg.checks.eval_episodes_per_task
    return cache.load_or_build(
        evaluation_artifact(cfg, seed),
        load_table,
        lambda: evaluate(trained_agent(cfg, seed)[0], cfg),
        save_table,
        counts=lambda table: {"episodes": len(table)},
        expect={"episodes": n * len(TASKS)},
    )


def trained_success(cfg: Config, seed: int | None = None, retrain: bool = False) -> dict[str, float]:
    """The trained agent of ``cfg`` and ``seed`` evaluated on ``checks.eval_episodes_per_task`` fresh
    episodes per task: success rate per task (keyed by display name) and its training seconds
    (``retrain``: see :func:`trained_agent`)."""
    _, history, _ = trained_agent(cfg, seed, retrain=retrain)
    table = success_table(evaluation(cfg, seed), "task")["success"]
    return {**{TASK_NAMES[k]: float(v) for k, v in table.items()}, "training s": history.seconds[-1]}


@cache.stage
def vision_pairs(cfg: Config, show_progress: bool = True) -> Built[Pairs]:
    """Stage 4's data: the first and final views of ``ground.episodes_per_task`` demonstrations
    per task with their frozen ImageNet features and instructions (:func:`lva.grounding.make_pairs`),
    cached under the ``vision-pairs`` stage (``env``, ``demos``) and the two ``ground`` fields it
    depends on."""
    gc = cfg.ground

    def build() -> Pairs:
        _use_threads(cfg)
        demos = demonstrations(cfg, show_progress)
        episodes = chosen_episodes(demos.task, gc.episodes_per_task)
        views = episode_views(demos, cfg.env, episodes, gc.views, show_progress)
        return make_pairs(demos.instruction[episodes], views, cfg.env.rgb_tile, gc.views, show_progress)

    return cache.load_or_build(
        cfg.artifact("vision-pairs", "pairs.npz", episodes_per_task=gc.episodes_per_task, views=list(gc.views)),
        lambda p: Pairs.from_arrays(load_npz(p)),
        build,
        lambda v, p: save_npz(p, **v.to_arrays()),
        counts=lambda v: {k: list(a.shape) for k, a in sorted(v.to_arrays().items())},
    )


def trained_vision_encoder(
    cfg: Config, seed: int | None = None, show_progress: bool = True
) -> tuple[GroundedEncoder, GroundHistory, bool]:
    """Stage 4 for one seed (``cfg.seed`` by default): ``(encoder, history, cached)``, from its
    checkpoint if present, else trained contrastively on :func:`vision_pairs` and saved."""
    seed = cfg.seed if seed is None else seed
    # a damaged encoder is rebuilt after a notice
    return _trained(
        *checkpoint_artifacts(cfg, seed, "vision"),
        lambda: train_encoder(cfg, vision_pairs(cfg, show_progress), seed, show_progress=show_progress),
        lambda err: cache.notice(f"{err}; retraining it"),
        load=load_encoder,
        save=save_encoder,
        counts=_encoder_counts,
        history=GroundHistory,
        history_counts=_ground_counts,
    )


def _ground_counts(history: GroundHistory) -> dict[str, Any]:
    return {"epochs": len(history.epoch)}


def _encoder_counts(encoder: GroundedEncoder) -> dict[str, Any]:
    return {"parameters": sum(p.numel() for p in encoder.state_dict().values())}


def _train_vision_encoder(cfg: Config, seed: int, show_progress: bool = True) -> None:
    trained_vision_encoder(cfg, seed, show_progress)  # one job of train_vision_encoders (returns nothing to pickle)


def train_vision_encoders(cfg: Config, show_progress: bool = True) -> list[int]:
    """Train the vision-grounded encoder of every seed of ``cfg.agent_seeds`` whose checkpoint is
    missing, side by side as :func:`train_agents` does (shorter than one after the other on two
    threads), after building their pairs once; returns their seeds."""
    missing = [seed for seed in dict.fromkeys(cfg.agent_seeds) if not checkpoint_paths(cfg, seed, "vision")[0].exists()]
    if missing:
        vision_pairs(cfg, show_progress)
    workers.side_by_side(
        _train_vision_encoder,
        [(cfg, seed) for seed in missing],
        "contrastive training",
        "encoders",
        cfg.threads + 1,
        show_progress,
    )
    return missing


def vision_encoders(cfg: Config, show_progress: bool = True) -> dict[int, GroundedEncoder]:
    """Stage 4: the vision-grounded encoder of every seed in ``cfg.agent_seeds`` (the missing ones by
    :func:`train_vision_encoders`)."""
    train_vision_encoders(cfg, show_progress)
    return {seed: trained_vision_encoder(cfg, seed, show_progress)[0] for seed in cfg.agent_seeds}


def referent_control(cfg: Config) -> np.ndarray:
    """Chapter 6's referent-only vision control: ``(396, 40)`` frozen ImageNet features of each
    instruction's object rendered alone, task-blind (:func:`lva.grounding.referent_control`;
    24 views, computed in well under a second, not cached)."""
    from .grounding import referent_control as features

    _use_threads(cfg)
    return features(cfg.env.rgb_tile)


def embeddings(
    cfg: Config, models: str | Sequence[str] = "offline", show_progress: bool = True
) -> dict[str, np.ndarray]:
    """Stage 5: every representation of every instruction (:func:`lva.representations.representations`:
    each agent's and vision-grounded encoder's E_L, their untrained twins, the language models of
    ``models``, the controls). Each language model's every pooling is computed while it is loaded
    (:func:`language_model_poolings` reads them), the next GGUF decoder converting meanwhile in a
    background process (:func:`lva.models.converting_ahead`)."""
    from .embeddings import all_poolings, poolings_on_disk
    from .models import converting_ahead

    names = catalogue.model_names(cfg, models)  # fail fast, before any training, if a model is missing
    trained, encoders = agents(cfg, show_progress), vision_encoders(cfg, show_progress)
    with converting_ahead(names):
        for name in names:  # a warm run reads them once, in language_model_poolings, not here too
            if catalogue.family_of(name) in N.LANGUAGE_FAMILIES and not poolings_on_disk(name):
                all_poolings(name)
        return representations.representations(cfg, trained, models=names, show_progress=show_progress, vision=encoders)
