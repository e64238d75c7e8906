"""A vision-grounded text encoder trained here: CLIP-style contrastive learning in the agent's world.

The paper compares the agent's action-grounded $E_L$ with vision-language models (CLIP, BLIP); none
can be installed offline, so this module trains a small one on the same world, the same sentences
and the same text architecture, changing only the grounding:

* **text tower**: the agent's own :class:`lva.agent.LanguageEncoder`, built from the same
  ``cfg.agent`` section (100-d tokens, one transformer block, 128-d output, same ``token_init``);
  its output for a sentence is this encoder's "E_L" (:meth:`GroundedEncoder.embed`).
* **image tower**: the frozen per-cell ImageNet features the ``imagenet`` agent reads
  (:func:`lva.vision.imagenet_features`: EfficientNet-Lite0's stride-8 map, one 40-d vector per
  cell of the 7 x 7 view), computed once per distinct view, and a small trained head to 128-d.

**Pairs.** Each expert demonstration gives one pair: its instruction, and two views of its episode,
both fed to the image tower: the *first* view (what the agent saw when it was told) and the
*final* view (what it saw when the episode ended). One view alone is not enough: the final view
of an ESCAPE-FROM episode usually shows no trace of the object escaped from (the agent walked
away from it), so only the first view can show what the instruction refers to; the final view
shows the outcome, the named object in the cell in front (GO-TO) or carried (PICK-UP: MiniGrid
draws a carried object in the agent's own cell). The demonstrations store the view *before*
each action, so the final view is recovered by replaying the episode in the environment
(:func:`episode_views`); the encoder sees views only.

**No actions.** The encoder learns from passive observation: :class:`Pairs` holds instruction
ids and view features, nothing else, and :func:`train_encoder` reads nothing but a
:class:`Pairs` (the tests check both).

**Loss.** Symmetric InfoNCE over a batch (text -> image and image -> text) with a learned
temperature (``cfg.ground``). False negatives are handled: two pairs of a batch with the same
meaning (task, colour, type; a synonym or a repeated instruction) are not negatives of each
other. They are masked out of both softmax denominators (:func:`contrastive_loss`), so the
loss of a row is exactly its loss in a batch without that other row as a negative.

**What it stands in for, and what not.** It is a *controlled* vision-language encoder: it
shares the agent's world, vocabulary and text architecture, and learns which sentence goes with
which pictures of that world. It is not CLIP or BLIP: no web-scale image-text corpus, no
pretrained language knowledge, no other images than 7 x 7 grid views; its images are only
partly natural (ImageNet features of rendered tiles). Training is deterministic for a seed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .agent import LanguageEncoder, Tokenizer
from .config import AgentConfig, Config, EnvConfig, GroundConfig
from .instructions import ALL_TYPES, COLORS, TASKS, all_instructions
from .io import atomic_path, progress
from .workers import one_torch_thread

#: The views of an episode the image tower can read: ``first`` (before any action), ``final``
#: (after the last one, replayed).
VIEWS = ("first", "final")
#: The text tower's initial weights come from ``SeedSequence([seed, _INIT_STREAM])``: a stream the
#: agents never use, so ``vision-seed<N>`` and ``agent-seed<N>`` share no initial weights.
_INIT_STREAM = 7919


def meanings() -> np.ndarray:
    """``(396,)`` meaning id (task, colour, type) of every instruction, in ``all_instructions`` order."""
    table = {m: i for i, m in enumerate(sorted({ins.meaning for ins in all_instructions()}))}
    return np.array([table[ins.meaning] for ins in all_instructions()], dtype=np.int64)


# ------------------------------------------------------------------------------------------ data
@dataclass
class Pairs:
    """Instruction-views pairs, one per episode: the whole input of training (no actions).

    ``views[index[e, v]]`` is view ``v`` (of :attr:`view_names`) of episode ``e`` (symbolic, for
    pictures) and ``features[index[e, v]]`` its frozen ImageNet features.
    """

    instruction: np.ndarray  # (E,) int index into all_instructions()
    index: np.ndarray  # (E, V) int rows of the distinct-view tables
    features: np.ndarray  # (U, 40, 7, 7) float16 frozen ImageNet features of each distinct view
    views: np.ndarray  # (U, 7, 7, 3) uint8 the distinct symbolic views
    view_names: tuple[str, ...] = VIEWS

    @property
    def n_episodes(self) -> int:
        return len(self.instruction)

    @property
    def task(self) -> np.ndarray:
        """(E,) index into ``TASKS`` of each episode."""
        table = np.array([TASKS.index(i.task) for i in all_instructions()])
        return table[self.instruction]

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "view_names"},
            "view_names": np.array(self.view_names),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Pairs:
        return cls(**{**arrays, "view_names": tuple(str(v) for v in arrays["view_names"])})


def chosen_episodes(task: np.ndarray, per_task: int) -> np.ndarray:
    """The first ``per_task`` episodes of each task (demonstrations cycle evenly through each
    task's instructions, so any prefix is balanced)."""
    return np.sort(np.concatenate([np.flatnonzero(task == t)[:per_task] for t in range(len(TASKS))]))


def episode_views(
    demos: Any, env_cfg: EnvConfig, episodes: np.ndarray, views: tuple[str, ...] = VIEWS, show_progress: bool = False
) -> np.ndarray:
    """``(E, V, 7, 7, 3)`` symbolic views of the chosen episodes: ``first`` from the demonstrations,
    ``final`` by replaying the episode (seed, instruction, expert actions) to its end.

    This is data preparation, like rendering a video: the encoder gets only the views.
    """
    from .env import make_env

    bad = [v for v in views if v not in VIEWS]
    if bad or not views:
        raise ValueError(f"unknown views {bad}; valid views: {', '.join(VIEWS)}")
    instructions = all_instructions()
    envs: dict[str, Any] = {}
    out = np.empty((len(episodes), len(views), *demos.image.shape[1:]), dtype=np.uint8)
    with progress(len(episodes), "episode views", unit="ep", enabled=show_progress) as bar:
        for row, e in enumerate(episodes):
            ep = demos.episode(int(e))
            final = None
            if "final" in views:
                ins = instructions[int(demos.instruction[e])]
                if ins.task not in envs:  # one environment per task, made once (reset reseeds it)
                    envs[ins.task] = make_env(env_cfg, task=ins.task)
                env = envs[ins.task]
                obs, _ = env.reset(seed=int(demos.seed[e]), options={"instruction": ins})
                for a in ep["action"]:
                    obs, *_ = env.step(int(a))
                final = obs["image"]
            out[row] = [ep["image"][0] if v == "first" else final for v in views]
            bar.update()
    return out


def make_pairs(
    instruction: np.ndarray,
    views: np.ndarray,
    tile: int = 8,
    view_names: tuple[str, ...] = VIEWS,
    show_progress: bool = False,
) -> Pairs:
    """Pairs from instruction ids and ``(E, V, 7, 7, 3)`` views: ImageNet features of each distinct view."""
    from .vision import imagenet_features, view_table

    e, v = views.shape[:2]
    uniq, inverse = view_table(views.reshape(e * v, *views.shape[2:]))
    feats = imagenet_features(uniq, tile, show_progress=show_progress)
    return Pairs(
        np.asarray(instruction, dtype=np.int64), inverse.reshape(e, v).astype(np.int64), feats, uniq, view_names
    )


def split(n: int, cfg: GroundConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Episode rows for training and held out (validation loss and the retrieval pool), seeded."""
    perm = np.random.default_rng([seed, 17]).permutation(n)
    n_out = max(2, int(round(n * cfg.holdout_fraction)))
    return np.sort(perm[n_out:]), np.sort(perm[:n_out])


# ---------------------------------------------------------------------------------------- model
class ImageTower(nn.Module):
    """Frozen per-cell features ``(B, V, 40, 7, 7)`` -> ``(B, embed_dim)``: per view, a per-sample
    normalisation, a 1x1 and a 3x3 convolution; the views' maps flattened (where things are
    matters: in front of the agent or carried) and joined by one linear map."""

    def __init__(self, n_views: int, width: int, embed_dim: int, cells: int = 49) -> None:
        super().__init__()
        from .vision import FEATURE_CHANNELS

        self.norm = nn.GroupNorm(1, FEATURE_CHANNELS)
        self.conv = nn.Sequential(
            nn.Conv2d(FEATURE_CHANNELS, width, 1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU()
        )
        self.out = nn.Linear(n_views * width * cells, embed_dim)

    def forward(self, features: Tensor) -> Tensor:
        b, v = features.shape[:2]
        x = self.conv(self.norm(features.flatten(0, 1).float()))
        return self.out(x.reshape(b, -1))


class GroundedEncoder(nn.Module):
    """The two towers and the temperature; :meth:`embed` reads the text tower like ``Agent.embed``."""

    def __init__(self, agent_cfg: AgentConfig, cfg: GroundConfig, tokenizer: Tokenizer | None = None) -> None:
        super().__init__()
        self.agent_cfg, self.cfg = agent_cfg, cfg
        self.tokenizer = tokenizer or Tokenizer()
        self.text = LanguageEncoder(agent_cfg, len(self.tokenizer))
        self.image = ImageTower(len(cfg.views), cfg.width, agent_cfg.embed_dim)
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / cfg.temperature)), requires_grad=cfg.learn_temperature
        )

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.log_scale.detach()))

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Eval mode without gradients for the block, the previous mode restored after it."""
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was)

    def embed(self, texts: list[str]) -> np.ndarray:
        """The text tower's output for each text, ``(n, embed_dim)`` float32, in eval mode."""
        with self._evaluating():
            return self.text(*self.tokenizer.encode(list(texts))).float().numpy().astype(np.float32)

    def embed_images(self, features: np.ndarray, batch: int = 1024) -> np.ndarray:
        """The image tower's output for ``(n, V, 40, 7, 7)`` view features, float32, in eval mode."""
        with self._evaluating():
            parts = [
                self.image(torch.from_numpy(features[i : i + batch].astype(np.float32)))
                for i in range(0, len(features), batch)
            ]
            return (
                torch.cat(parts).numpy().astype(np.float32)
                if parts
                else np.zeros((0, self.agent_cfg.embed_dim), np.float32)
            )


def build_encoder(cfg: Config, seed: int) -> GroundedEncoder:
    """A freshly initialised encoder, identical for a seed (global RNG left untouched); its text
    tower starts from a stream no agent uses (see ``_INIT_STREAM``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence([seed, _INIT_STREAM]).generate_state(1)[0]))
        return GroundedEncoder(cfg.agent, cfg.ground)


def contrastive_loss(text: Tensor, image: Tensor, meaning: Tensor, log_scale: Tensor | float) -> Tensor:
    """Symmetric InfoNCE of a batch of ``(B, d)`` text and image embeddings (row i matches row i).

    Cosine similarities times ``exp(log_scale)`` (1 / temperature) are the logits; an off-diagonal
    pair with the same ``meaning`` is removed from both softmax denominators (a synonym or a
    repeated instruction is not a negative). The mean of the text -> image and image -> text
    cross-entropies.
    """
    scale = torch.exp(torch.as_tensor(log_scale, dtype=text.dtype))
    logits = scale * F.normalize(text, dim=1) @ F.normalize(image, dim=1).T
    eye = torch.eye(len(text), dtype=torch.bool)
    logits = logits.masked_fill((meaning[:, None] == meaning[None, :]) & ~eye, float("-inf"))
    target = torch.arange(len(text))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


# ------------------------------------------------------------------------------------- training
@dataclass
class GroundHistory:
    """Training of one encoder, epoch by epoch."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_top1: list[float] = field(default_factory=list)  # text -> image retrieval on the held-out pool
    temperature: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # cumulative training time (validation excluded)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _batch_loss(
    enc: GroundedEncoder, ids: Tensor, mask: Tensor, pairs: Pairs, rows: np.ndarray, meaning: np.ndarray
) -> Tensor:
    instr = pairs.instruction[rows]
    feats = torch.from_numpy(pairs.features[pairs.index[rows]].astype(np.float32))
    return contrastive_loss(
        enc.text(ids[instr], mask[instr]), enc.image(feats), torch.from_numpy(meaning[instr]), enc.log_scale
    )


@torch.no_grad()
def _validate(
    enc: GroundedEncoder, ids: Tensor, mask: Tensor, pairs: Pairs, held: np.ndarray, meaning: np.ndarray, batch: int
) -> tuple[float, float]:
    enc.eval()
    losses = [
        float(_batch_loss(enc, ids, mask, pairs, held[i : i + batch], meaning))
        for i in range(0, len(held), batch)
        if len(held[i : i + batch]) > 1
    ]
    top1 = float(retrieval(enc, pairs, held[: enc.cfg.pool_size], ks=(1,)).loc["all", "top-1"])
    enc.train()
    return float(np.mean(losses)), top1


def train_encoder(
    cfg: Config, pairs: Pairs, seed: int, show_progress: bool = False
) -> tuple[GroundedEncoder, GroundHistory]:
    """Train one encoder on ``pairs``: Adam on the symmetric InfoNCE of :func:`contrastive_loss`,
    held-out episodes (``split``) for validation. It runs on one torch thread whatever
    ``cfg.threads`` says, so a seed gives the same encoder bit for bit trained alone or beside
    others (:func:`lva.pipeline.train_vision_encoders` trains the seeds side by side)."""
    with one_torch_thread():
        return _train_encoder(cfg, pairs, seed, show_progress)


def _train_encoder(cfg: Config, pairs: Pairs, seed: int, show_progress: bool) -> tuple[GroundedEncoder, GroundHistory]:
    gc = cfg.ground
    enc = build_encoder(cfg, seed)
    enc.train()
    ids, mask = enc.tokenizer.encode([i.text for i in all_instructions()])
    meaning = meanings()
    train_rows, held = split(pairs.n_episodes, gc, cfg.demos.seed)
    opt = torch.optim.Adam([p for p in enc.parameters() if p.requires_grad], lr=gc.lr)
    rng = np.random.default_rng([seed, 23])
    history, elapsed = GroundHistory(), 0.0
    n_batches = max(1, len(train_rows) // gc.batch_size)  # full batches only: every batch has its negatives
    with progress(
        gc.epochs * n_batches, f"contrastive training (seed {seed})", unit="batch", enabled=show_progress
    ) as bar:
        for epoch in range(1, gc.epochs + 1):
            start, total = time.perf_counter(), 0.0
            order = rng.permutation(train_rows)
            for b in range(n_batches):
                loss = _batch_loss(enc, ids, mask, pairs, order[b * gc.batch_size : (b + 1) * gc.batch_size], meaning)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(enc.parameters(), gc.grad_clip)
                opt.step()
                with torch.no_grad():
                    enc.log_scale.clamp_(max=math.log(100.0))  # CLIP's cap on 1 / temperature
                total += float(loss.detach())
                bar.update()
            elapsed += time.perf_counter() - start
            val_loss, top1 = _validate(enc, ids, mask, pairs, held, meaning, gc.batch_size)
            for name, value in (
                ("epoch", epoch),
                ("train_loss", total / n_batches),
                ("val_loss", val_loss),
                ("val_top1", top1),
                ("temperature", enc.temperature),
                ("seconds", elapsed),
            ):
                getattr(history, name).append(value)
    enc.eval()
    return enc, history


# ----------------------------------------------------------------------------------- evaluation
def retrieval_hits(similarity: np.ndarray, query_meaning: np.ndarray, pool_meaning: np.ndarray, k: int) -> np.ndarray:
    """``(Q,)`` bool: does any of the ``k`` pool items most similar to each query (ties: lower
    index first) have the query's meaning?"""
    top = np.argsort(-np.asarray(similarity), axis=1, kind="stable")[:, :k]
    return (np.asarray(pool_meaning)[top] == np.asarray(query_meaning)[:, None]).any(axis=1)


def retrieval_chance(query_meaning: np.ndarray, pool_meaning: np.ndarray, k: int) -> np.ndarray:
    """``(Q,)`` probability that ``k`` pool items drawn at random include one of the query's meaning."""
    n = len(pool_meaning)
    same = (np.asarray(pool_meaning)[None, :] == np.asarray(query_meaning)[:, None]).sum(1)
    return 1.0 - np.array([math.comb(n - m, k) / math.comb(n, k) for m in same])


def similarity(enc: GroundedEncoder, texts: list[str], features: np.ndarray) -> np.ndarray:
    """``(len(texts), len(features))`` cosine between each text and each episode's ``(V, 40, 7, 7)`` views."""
    text = F.normalize(torch.from_numpy(enc.embed(texts)), dim=1)
    return (text @ F.normalize(torch.from_numpy(enc.embed_images(features)), dim=1).T).numpy()


def retrieval(enc: GroundedEncoder, pairs: Pairs, pool: np.ndarray, ks: tuple[int, ...] = (1, 5)) -> pd.DataFrame:
    """Text -> image retrieval among the pool's episodes: each pool episode's instruction is a
    query, every pool episode's views a candidate; a hit when a top-k candidate has the query's
    meaning. One row per task and ``all``: ``top-k`` accuracy, ``chance top-k``, ``queries``."""
    from .instructions import TASK_NAMES

    meaning = meanings()[pairs.instruction[pool]]
    names = [i.text for i in all_instructions()]
    sim = similarity(enc, [names[i] for i in pairs.instruction[pool]], pairs.features[pairs.index[pool]])
    cols = {f"top-{k}": retrieval_hits(sim, meaning, meaning, k) for k in ks}
    cols.update({f"chance top-{k}": retrieval_chance(meaning, meaning, k) for k in ks})
    df = pd.DataFrame(cols).assign(task=[TASK_NAMES[TASKS[t]] for t in pairs.task[pool]])
    table = pd.concat(
        [df.groupby("task", sort=False).mean(), df.drop(columns="task").mean().rename("all").to_frame().T]
    )
    return table.assign(queries=[*df.groupby("task", sort=False).size(), len(df)])


def target_visible(pairs: Pairs) -> pd.DataFrame:
    """Share of episodes, per task, whose each view shows the named object (its colour and type
    anywhere in the symbolic view, carried included): what each view can tell the encoder."""
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

    from .instructions import TASK_NAMES

    ins = all_instructions()
    target = np.array([(OBJECT_TO_IDX[ins[i].obj_type], COLOR_TO_IDX[ins[i].color]) for i in pairs.instruction])
    seen = {}
    for v, name in enumerate(pairs.view_names):
        cells = pairs.views[pairs.index[:, v]][..., :2]  # (episodes, 7, 7, (type, colour))
        seen[f"{name} view shows it"] = (cells == target[:, None, None, :]).all(-1).any((1, 2))
    return pd.DataFrame(seen).assign(task=[TASK_NAMES[TASKS[t]] for t in pairs.task]).groupby("task", sort=False).mean()


# ---------------------------------------------------------------------------- referent control
def referent_views() -> tuple[np.ndarray, list[tuple[str, str]]]:
    """One symbolic view per object (colour x type): the object alone in the middle of an empty,
    fully visible floor, and the (colour, type) of each view."""
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

    objects = [(c, t) for c in COLORS for t in ALL_TYPES]
    views = np.zeros((len(objects), 7, 7, 3), dtype=np.uint8)
    views[..., 0] = OBJECT_TO_IDX["empty"]
    for row, (color, kind) in enumerate(objects):
        state = STATE_TO_IDX["closed"] if kind == "door" else 0
        views[row, 3, 3] = (OBJECT_TO_IDX[kind], COLOR_TO_IDX[color], state)
    return views, objects


def referent_control(tile: int = 8) -> np.ndarray:
    """``(396, 40)`` float32: the ImageNet features of the cell holding each instruction's object
    rendered alone (:func:`referent_views`). Task-blind: every verb and every task naming one
    object share one vector, so it shows how much alignment what the object looks like carries."""
    from .vision import imagenet_features

    views, objects = referent_views()
    cell = imagenet_features(views, tile)[:, :, 3, 3].astype(np.float32)
    row = {obj: i for i, obj in enumerate(objects)}
    return cell[[row[(ins.color, ins.obj_type)] for ins in all_instructions()]]


# ------------------------------------------------------------------------------ checkpoints
def save_encoder(enc: GroundedEncoder, path: Any) -> None:
    """The state dict, both config sections and the vocabulary in one file, written atomically."""
    payload = {
        "agent": json.dumps(dataclasses.asdict(enc.agent_cfg)),
        "ground": json.dumps(dataclasses.asdict(enc.cfg)),
        "vocab": list(enc.tokenizer.vocab),
        "state_dict": {k: v.detach().cpu() for k, v in enc.state_dict().items()},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_encoder(path: Any) -> GroundedEncoder:
    """Rebuild an encoder written by :func:`save_encoder`, in eval mode."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    ground = json.loads(payload["ground"])
    ground["views"] = tuple(ground["views"])
    enc = GroundedEncoder(
        AgentConfig(**json.loads(payload["agent"])), GroundConfig(**ground), Tokenizer(payload["vocab"])
    )
    enc.load_state_dict(payload["state_dict"])
    return enc.eval()
