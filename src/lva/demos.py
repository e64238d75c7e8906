"""Expert demonstrations: seeded episodes, replayed from the expert's plan, stored compactly.

A demonstration set is a handful of flat arrays (one row per transition, plus per-episode
metadata and offsets), saved as one compressed ``.npz``: ~150 bytes per transition before
compression. RGB views are not stored: they are re-rendered from (seed, actions) when needed.
Where a set is cached, and loading it instead of generating it, is :func:`lva.pipeline.demonstrations`'s job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .config import EXPERT_MODES, EnvConfig
from .env import episode_seeds, make_env
from .expert import Expert
from .instructions import TASKS, all_instructions, check_task, instructions_for
from .io import load_npz, progress, save_npz
from .workers import run


@dataclass
class Demos:
    """Demonstrations as flat arrays; episode ``e`` spans rows ``offsets[e]:offsets[e+1]``."""

    instruction: np.ndarray  # (E,) int16 index into all_instructions()
    seed: np.ndarray  # (E,) int64 episode seed
    offsets: np.ndarray  # (E + 1,) int64
    image: np.ndarray  # (T, view, view, 3) uint8 symbolic egocentric view before each action
    direction: np.ndarray  # (T,) uint8 agent direction before each action
    action: np.ndarray  # (T,) uint8 expert action

    @property
    def n_episodes(self) -> int:
        return len(self.seed)

    @property
    def n_transitions(self) -> int:
        return len(self.action)

    @property
    def lengths(self) -> np.ndarray:
        """Episode lengths in steps."""
        return np.diff(self.offsets)

    @property
    def task(self) -> np.ndarray:
        """(E,) index into ``TASKS`` of each episode."""
        table = np.array([TASKS.index(i.task) for i in all_instructions()])
        return table[self.instruction]

    def episode(self, e: int) -> dict[str, np.ndarray]:
        """The arrays of one episode."""
        sl = slice(self.offsets[e], self.offsets[e + 1])
        return {"image": self.image[sl], "direction": self.direction[sl], "action": self.action[sl]}

    def save(self, path: str | Path) -> Path:
        """Write atomically as one compressed ``.npz``."""
        return save_npz(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: str | Path) -> Demos:
        """Read a set written by :meth:`save`."""
        return cls(**load_npz(path))


def generate(
    env_config: EnvConfig,
    episodes_per_task: int,
    seed: int = 0,
    tasks: tuple[str, ...] = TASKS,
    stream: str = "train",
    show_progress: bool = True,
    expert: str = "look-first",
    workers: int = 1,
    chunk: int = 500,
) -> Demos:
    """Run the expert on seeded episodes, cycling through each task's instructions evenly.

    Episode ``i`` of a task uses seed ``episode_seeds(seed, task, n, stream)[i]`` and the
    instruction at position ``i`` of a seeded shuffle of the task's instructions (repeated), so
    every instruction appears ``episodes_per_task / n_instructions`` times, give or take one.
    ``expert`` is a mode of :class:`lva.expert.Expert`, which chooses every action.
    With ``workers > 1``, ``workers`` spawned processes generate contiguous slices of ``chunk``
    episodes (every episode has its own seed, so the set is byte-identical to a sequential one);
    a script that calls it so needs the usual ``if __name__ == "__main__":`` guard (spawn).
    """
    for task in tasks:
        check_task(task)
    if expert not in EXPERT_MODES:
        raise ValueError(f"unknown expert mode {expert!r}; valid modes: {', '.join(EXPERT_MODES)}")
    if workers < 1 or chunk < 1:
        raise ValueError(f"workers and chunk must be >= 1 (got workers={workers}, chunk={chunk})")
    job = _Job(env_config, episodes_per_task, seed, tuple(tasks), stream, expert)
    total = episodes_per_task * len(tasks)
    slices = [(a, min(a + chunk, total)) for a in range(0, total, chunk)]
    if workers == 1 or len(slices) < 2:
        with progress(total, "expert demonstrations", unit="ep", enabled=show_progress) as bar:
            return _episodes(job, 0, total, bar.update)
    parts = run(
        [(_slice, (job, a, b)) for a, b in slices],
        "expert demonstrations",
        unit="ep",
        show_progress=show_progress,
        processes=workers,
        total=total,
    )
    lengths = np.concatenate([p.lengths for p in parts])
    return Demos(
        instruction=np.concatenate([p.instruction for p in parts]),
        seed=np.concatenate([p.seed for p in parts]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        image=np.concatenate([p.image for p in parts]),
        direction=np.concatenate([p.direction for p in parts]),
        action=np.concatenate([p.action for p in parts]),
    )


@dataclass(frozen=True)
class _Job:
    """What :func:`generate` was asked for: episode ``g`` is episode ``g % episodes_per_task`` of
    task ``tasks[g // episodes_per_task]``."""

    env_config: EnvConfig
    episodes_per_task: int
    seed: int
    tasks: tuple[str, ...]
    stream: str
    expert: str


def _episodes(job: _Job, start: int, stop: int, done: Callable[[], Any] = lambda: None) -> Demos:
    """Episodes ``start:stop`` of ``job`` (``done()`` after each): what one process generates."""
    index = {ins: k for k, ins in enumerate(all_instructions())}
    instr_ids, seeds, lengths = [], [], []
    images, dirs, actions = [], [], []
    per_task = job.episodes_per_task
    for t in range(start // per_task, -(-stop // per_task)) if stop > start else ():
        task = job.tasks[t]
        env = make_env(job.env_config, task=task)
        policy = Expert(env, job.expert)
        pool = instructions_for(task)
        rng = np.random.default_rng([job.seed, TASKS.index(task)])
        order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-per_task // len(pool)))])
        task_seeds = episode_seeds(job.seed, task, per_task, job.stream)
        for i in range(max(start - t * per_task, 0), min(stop - t * per_task, per_task)):
            ins, ep_seed = pool[int(order[i])], task_seeds[i]
            obs, _ = env.reset(seed=int(ep_seed), options={"instruction": ins})
            n, finished, info = 0, False, {"success": False}
            while not finished:
                a = policy.act()
                images.append(obs["image"])
                dirs.append(obs["direction"])
                actions.append(a)
                obs, _, term, trunc, info = env.step(a)
                n, finished = n + 1, term or trunc
            if not info["success"]:
                raise RuntimeError(f"expert failed: seed {ep_seed}, {ins.text!r}")
            instr_ids.append(index[ins])
            seeds.append(ep_seed)
            lengths.append(n)
            done()
    return Demos(
        instruction=np.asarray(instr_ids, dtype=np.int16),
        seed=np.asarray(seeds, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        image=np.asarray(images, dtype=np.uint8),
        direction=np.asarray(dirs, dtype=np.uint8),
        action=np.asarray(actions, dtype=np.uint8),
    )


def _slice(job: _Job, start: int, stop: int) -> Demos:
    """One worker job of :func:`generate`: episodes ``start:stop``, counted on the parent's bar."""
    with progress(stop - start, "expert demonstrations", unit="ep") as bar:
        return _episodes(job, start, stop, bar.update)
