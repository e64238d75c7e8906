"""Expert demonstrations: seeded episodes, replayed from the expert's plan, stored compactly.

A demonstration set is a handful of flat arrays (one row per transition, plus per-episode
metadata and offsets), saved as one compressed ``.npz``: ~150 bytes per transition before
compression. RGB views are not stored: they are re-rendered from (seed, actions) when needed.
Where a set is cached, and loading it instead of generating it, is :func:`lva.pipeline.demonstrations`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from .config import EnvConfig
from .env import episode_seeds, make_env
from .expert import Expert
from .instructions import TASKS, all_instructions, check_task, instructions_for
from .io import load_npz, progress, save_npz

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
) -> Demos:
    """Run the expert on seeded episodes, cycling through each task's instructions evenly.

    Episode ``i`` of a task uses seed ``episode_seeds(seed, task, n, stream)[i]`` and the
    instruction at position ``i`` of a seeded shuffle of the task's instructions (repeated), so
    every instruction appears ``episodes_per_task / n_instructions`` times, give or take one.
    ``expert`` is a mode of :class:`lva.expert.Expert`, which chooses every action.
    """
    index = {ins: k for k, ins in enumerate(all_instructions())}
    instr_ids, seeds, lengths = [], [], []
    images, dirs, actions = [], [], []
    total = episodes_per_task * len(tasks)
    with progress(total, "expert demonstrations", unit="ep", enabled=show_progress) as bar:
        for task in tasks:
            check_task(task)
            env = make_env(env_config, task=task)
            policy = Expert(env, expert)
            pool = instructions_for(task)
            rng = np.random.default_rng([seed, TASKS.index(task)])
            order = np.concatenate([rng.permutation(len(pool)) for _ in range(-(-episodes_per_task // len(pool)))])
            for i, ep_seed in enumerate(episode_seeds(seed, task, episodes_per_task, stream)):
                ins = pool[int(order[i])]
                obs, _ = env.reset(seed=int(ep_seed), options={"instruction": ins})
                n, done, info = 0, False, {"success": False}
                while not done:
                    a = policy.act()
                    images.append(obs["image"])
                    dirs.append(obs["direction"])
                    actions.append(a)
                    obs, _, term, trunc, info = env.step(a)
                    n, done = n + 1, term or trunc
                if not info["success"]:
                    raise RuntimeError(f"expert failed: seed {ep_seed}, {ins.text!r}")
                instr_ids.append(index[ins])
                seeds.append(ep_seed)
                lengths.append(n)
                bar.update()
    return Demos(
        instruction=np.asarray(instr_ids, dtype=np.int16),
        seed=np.asarray(seeds, dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        image=np.asarray(images, dtype=np.uint8),
        direction=np.asarray(dirs, dtype=np.uint8),
        action=np.asarray(actions, dtype=np.uint8),
    )
