"""Behavioural cloning: cross-entropy on the expert's actions, whole episodes at a time.

Vision and FiLM fusion do not depend on the memory, so each batch runs them once over all its
transitions; only the small GRU steps through time. The split into training and validation is by
episode, and training is deterministic for a seed and a thread count. Where checkpoints live, and
loading them instead of training, is :func:`lva.pipeline.trained_agent`'s job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .agent import Agent, build_agent
from .config import Config
from .demos import Demos
from .evaluate import evaluate
from .instructions import all_instructions
from .io import progress
from .workers import one_torch_thread


@dataclass
class Batch:
    """Episodes sorted by decreasing length, flattened time-major so step ``t`` is a prefix."""

    e_l_index: Tensor  # (E,) instruction index of each episode
    image: Tensor  # (N, 7, 7, 3) uint8, time-major
    direction: Tensor  # (N,)
    action: Tensor  # (N,)
    active: list[int]  # number of episodes still running at each step t
    order: Tensor  # (N,) episode (row of the batch) of each flattened transition


def make_batch(demos: Demos, episodes: np.ndarray, features: tuple[np.ndarray, np.ndarray] | None = None) -> Batch:
    """Gather episodes into one time-major batch (longest first, so active episodes form a prefix).

    With ``features = (table, index)`` the batch carries cached ImageNet features
    ``table[index[t]]`` instead of the symbolic views.
    """
    lengths = demos.lengths[episodes]
    episodes = episodes[np.argsort(-lengths, kind="stable")]
    lengths = demos.lengths[episodes]
    rows, owner, active = [], [], []
    for t in range(int(lengths.max())):
        live = int((lengths > t).sum())
        active.append(live)
        rows.append(demos.offsets[episodes[:live]] + t)
        owner.append(np.arange(live))
    idx = np.concatenate(rows)
    return Batch(
        e_l_index=torch.from_numpy(demos.instruction[episodes].astype(np.int64)),
        image=torch.from_numpy(
            demos.image[idx] if features is None else features[0][features[1][idx]].astype(np.float32)
        ),
        direction=torch.from_numpy(demos.direction[idx].astype(np.int64)),
        action=torch.from_numpy(demos.action[idx].astype(np.int64)),
        active=active,
        order=torch.from_numpy(np.concatenate(owner)),
    )


class Instructions:
    """Tokenized instruction list, so E_L of any subset is one indexing away."""

    def __init__(self, agent: Agent) -> None:
        self.ids, self.mask = agent.tokenizer.encode([i.text for i in all_instructions()])


def batch_logits(agent: Agent, instr: Instructions, batch: Batch) -> Tensor:
    """Logits ``(N, 6)`` for every transition of a batch, memory carried through each episode."""
    e_l = agent.language(instr.ids[batch.e_l_index], instr.mask[batch.e_l_index])
    x = agent.fuse(e_l[batch.order], batch.image, batch.direction)
    if agent.memory is None:
        return agent.policy(x)
    hidden = agent.initial_state(len(batch.e_l_index))
    outs, start = [], 0
    for live in batch.active:
        hidden = agent.memory(x[start : start + live], hidden[:live])
        outs.append(hidden)
        start += live
    return agent.policy(torch.cat(outs))


@dataclass
class History:
    """What happened during training, epoch by epoch."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    success: list[dict[str, float]] = field(default_factory=list)  # per task, at evaluation epochs (else {})
    seconds: list[float] = field(default_factory=list)  # cumulative training time (evaluation excluded)
    transitions_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def split_episodes(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode indices for training and validation (a seeded split by episode, never by step)."""
    perm = np.random.default_rng([seed, 7]).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@torch.no_grad()
def _validate(
    agent: Agent,
    instr: Instructions,
    demos: Demos,
    episodes: np.ndarray,
    batch_size: int,
    features: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[float, float]:
    agent.eval()
    loss, correct, total = 0.0, 0, 0
    for start in range(0, len(episodes), batch_size):
        batch = make_batch(demos, episodes[start : start + batch_size], features)
        logits = batch_logits(agent, instr, batch)
        loss += float(F.cross_entropy(logits, batch.action, reduction="sum"))
        correct += int((logits.argmax(1) == batch.action).sum())
        total += len(batch.action)
    agent.train()
    return loss / total, correct / total


def train(
    cfg: Config,
    demos: Demos,
    seed: int | None = None,
    show_progress: bool = True,
    features: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Agent, History]:
    """Train an agent by behavioural cloning on ``demos``, deterministic for a seed.

    It runs on one torch thread whatever ``cfg.threads`` says, so an agent is the same bit for bit
    trained alone or beside others, on any machine: several agents train at once in worker
    processes instead (:func:`lva.pipeline.train_agents`), which uses two cores better than two
    threads on one agent. ``vision="imagenet"`` needs ``features``, the cached ImageNet features
    of the demonstrations (:func:`lva.pipeline.visual_features`). Loading or caching agents is
    :mod:`lva.pipeline`'s job.
    """
    with one_torch_thread():
        return _train(cfg, demos, seed, show_progress, features)


def _train(
    cfg: Config, demos: Demos, seed: int | None, show_progress: bool, features: tuple[np.ndarray, np.ndarray] | None
) -> tuple[Agent, History]:
    if (cfg.agent.vision == "imagenet") != (features is not None):
        raise ValueError("pass cached ImageNet features exactly when cfg.agent.vision == 'imagenet'")
    seed = cfg.seed if seed is None else seed
    tc = cfg.train
    torch.manual_seed(seed)
    agent = build_agent(cfg, seed)
    agent.train()
    instr = Instructions(agent)
    opt = torch.optim.Adam(agent.parameters(), lr=tc.lr)
    train_eps, val_eps = split_episodes(demos.n_episodes, tc.val_fraction, seed)
    rng = np.random.default_rng([seed, 11])
    history = History()
    elapsed, seen = 0.0, 0
    n_batches = -(-len(train_eps) // tc.batch_episodes)
    with progress(
        tc.epochs * n_batches, f"behavioural cloning (seed {seed})", unit="batch", enabled=show_progress
    ) as bar:
        for epoch in range(1, tc.epochs + 1):
            start = time.perf_counter()
            order = rng.permutation(train_eps)
            total_loss, total_n = 0.0, 0
            for b in range(n_batches):
                batch = make_batch(demos, order[b * tc.batch_episodes : (b + 1) * tc.batch_episodes], features)
                loss = F.cross_entropy(batch_logits(agent, instr, batch), batch.action)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(agent.parameters(), tc.grad_clip)
                opt.step()
                total_loss += float(loss.detach()) * len(batch.action)
                total_n += len(batch.action)
                bar.update()
            elapsed += time.perf_counter() - start
            seen += total_n
            val_loss, val_acc = _validate(agent, instr, demos, val_eps, 4 * tc.batch_episodes, features)
            success: dict[str, float] = {}
            if epoch % tc.eval_every == 0 or epoch == tc.epochs:
                table = evaluate(agent, cfg, tc.monitor_episodes_per_task, seed=seed + 10_000)
                success = {k: float(v) for k, v in table.groupby("task")["success"].mean().items()}
            history.epoch.append(epoch)
            history.train_loss.append(total_loss / total_n)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
            history.success.append(success)
            history.seconds.append(elapsed)
            bar.set_postfix(
                loss=f"{total_loss / total_n:.3f}",
                val_acc=f"{val_acc:.3f}",
                **{k[:4]: f"{v:.2f}" for k, v in success.items()},
            )
    history.transitions_per_s = seen / elapsed
    agent.eval()
    return agent, history
