"""Evaluation of an agent on fresh episodes: success per task, per verb synonym and per object type.

Episodes run in parallel (one batched forward pass per time step); the agent acts greedily. Seeds
come from the ``eval`` stream, which never overlaps the demonstrations' ``train`` stream.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .agent import Agent
from .config import Config, EnvConfig
from .env import InstructionRoomEnv, episode_seeds, make_env
from .expert import plan
from .instructions import TASKS, instructions_for
from .workers import trim_heap


def eval_episodes(episodes_per_task: int, seed: int) -> list[tuple[int, Any]]:
    """(episode seed, instruction) pairs: each task's instructions cycled evenly over fresh seeds."""
    pairs = []
    for task in TASKS:
        pool = instructions_for(task)
        for i, ep_seed in enumerate(episode_seeds(seed, task, episodes_per_task, "eval")):
            pairs.append((int(ep_seed), pool[i % len(pool)]))
    return pairs


@torch.no_grad()
def rollout(
    agent: Agent,
    env_config: EnvConfig,
    episodes: list[tuple[int, Any]],
    record: bool = False,
    texts: list[str] | None = None,
    envs: list[InstructionRoomEnv] | None = None,
) -> list[dict[str, Any]]:
    """Run the agent greedily on each (seed, instruction); one record per episode (frames if ``record``).

    ``texts`` replaces what the agent reads (the environment still checks the real instruction):
    for paraphrase and unknown-word probes. ``envs``: environments of ``env_config`` to reuse, at
    least one per episode (each is reset with its episode's seed, so reuse changes nothing).
    """
    agent.eval()
    if envs is not None and len(envs) < len(episodes):
        raise ValueError(f"{len(episodes)} episodes need as many environments, not {len(envs)}")
    envs = list(envs[: len(episodes)]) if envs is not None else [make_env(env_config) for _ in episodes]
    obs = [env.reset(seed=s, options={"instruction": ins})[0] for env, (s, ins) in zip(envs, episodes)]
    expert_steps = [len(plan(env) or []) for env in envs]
    ids, mask = agent.tokenizer.encode(texts if texts is not None else [ins.text for _, ins in episodes])
    e_l = agent.language(ids, mask)
    hidden = agent.initial_state(len(envs))
    live = np.arange(len(envs))
    steps = np.zeros(len(envs), dtype=int)
    success = np.zeros(len(envs), dtype=bool)
    frames: list[list[np.ndarray]] = [[env.full_rgb(tile_size=16)] if record else [] for env in envs]
    actions: list[list[int]] = [[] for _ in envs]
    while len(live):
        image = agent.view_input(np.stack([obs[i]["image"] for i in live]))
        direction = torch.tensor([obs[i]["direction"] for i in live])
        rows = torch.from_numpy(live)
        logits, h = agent.step(e_l[rows], image, direction, hidden[rows])
        hidden[rows] = h
        chosen = logits.argmax(1).tolist()
        still = []
        for i, a in zip(live, chosen):
            obs[i], _, term, trunc, info = envs[i].step(a)
            steps[i] += 1
            actions[i].append(a)
            if record:
                frames[i].append(envs[i].full_rgb(tile_size=16))
            if term or trunc:
                success[i] = bool(info["success"])
            else:
                still.append(i)
        live = np.array(still, dtype=int)
    return [
        {
            "seed": s,
            "instruction": ins.text,
            "task": ins.task,
            "verb": ins.verb,
            "color": ins.color,
            "obj_type": ins.obj_type,
            "success": bool(success[k]),
            "steps": int(steps[k]),
            "expert_steps": expert_steps[k],
            **({"frames": frames[k], "actions": actions[k]} if record else {}),
        }
        for k, (s, ins) in enumerate(episodes)
    ]


def evaluate(
    agent: Agent, cfg: Config, episodes_per_task: int | None = None, seed: int | None = None, batch: int = 256
) -> pd.DataFrame:
    """One row per fresh evaluation episode (task, verb, colour, type, success, steps, expert steps)."""
    n = cfg.checks.eval_episodes_per_task if episodes_per_task is None else episodes_per_task
    pairs = eval_episodes(n, cfg.seed if seed is None else seed)
    envs = [make_env(cfg.env) for _ in range(min(batch, len(pairs)))]  # made once, reused by every batch
    rows: list[dict[str, Any]] = []
    for start in range(0, len(pairs), batch):
        rows += rollout(agent, cfg.env, pairs[start : start + batch], envs=envs)
    trim_heap()  # what the rollouts freed (their environments' states, the networks' activations) goes back now
    return pd.DataFrame(rows)


def success_table(results: pd.DataFrame, by: str | list[str]) -> pd.DataFrame:
    """Success rate and episode count grouped by a column (``task``, ``verb``, ``obj_type``, ...)."""
    grouped = results.groupby(by, sort=False)
    return pd.DataFrame({"success": grouped["success"].mean(), "episodes": grouped.size()})
