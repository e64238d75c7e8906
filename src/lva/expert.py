"""The expert: breadth-first search over (x, y, direction) on the full state (:mod:`lva.planner`).

Because the planner sees the whole room and searches the agent's own state space, its plans are
shortest in number of actions for GO-TO and PICK-UP (and for reaching the ESCAPE-FROM distance),
and it solves every generated episode (the generator rejects layouts it cannot solve). This module
adds how the expert behaves (:data:`EXPERT_MODES`, :class:`Expert`) and its checks against
MiniGrid's BabyAI bot and on fresh episodes.
"""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from minigrid.core.actions import Actions

from .config import EXPERT_MODES, EnvConfig
from .env import InstructionRoomEnv, episode_seeds, make_env
from .instructions import TASKS
from .planner import plan, plan_to_face, search

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXPERT_MODES",
    "BotComparison",
    "Expert",
    "check_expert",
    "compare_with_babyai_bot",
    "next_actions",
    "plan",
    "plan_to_face",
    "search",
]  # the planner's functions, re-exported: the expert's plans

#: How the expert behaves: ``shortest`` walks the shortest path at once (it sees the whole room);
#: ``look-first`` first turns left until the named object is in the agent's view (at most a full
#: turn: from a corner, an object in the opposite corner stays out of the 7 x 7 view), then follows
#: the shortest path, so that demonstrated actions can be inferred from what the agent sees.
#: (``EXPERT_MODES`` is defined in :mod:`lva.config`, which checks ``DemoConfig.expert`` against it.)


def next_actions(env: InstructionRoomEnv, mode: str = "shortest", turns: int = 0) -> list[int]:
    """The expert's next action(s): a whole shortest plan, or one left turn while the target is unseen.

    ``turns`` is how many look-first turns were already made this episode (after three, every
    heading has been seen and the expert walks its shortest plan).
    """
    if mode not in EXPERT_MODES:
        raise ValueError(f"unknown expert mode {mode!r}; valid modes: {', '.join(EXPERT_MODES)}")
    assert env.target is not None
    if mode == "look-first" and turns < 3 and not env.agent_sees(*env.target.cur_pos):
        return [int(Actions.left)]
    solution = plan(env)
    if not solution:
        raise RuntimeError(f"the expert has no plan for {env.instruction.text!r} in this state")
    return solution


class Expert:
    """The expert as a policy, one action per call (a mode of :data:`EXPERT_MODES`).

    It replays the actions of :func:`next_actions` one by one while the environment follows them
    (the world is deterministic, so a plan stays shortest), and plans again from the current state
    when anything else moved the environment since its last action (another policy acted) or a
    new episode began. The demonstrations (:func:`lva.demos.generate`) and closed-loop uses share it.
    """

    def __init__(self, env: InstructionRoomEnv, mode: str = "shortest") -> None:
        if mode not in EXPERT_MODES:
            raise ValueError(f"unknown expert mode {mode!r}; valid modes: {', '.join(EXPERT_MODES)}")
        self.env = env
        self.mode = mode
        self.turns = 0  # look-first turns made this episode
        self._pending: list[int] = []  # the rest of the current plan
        self._next_step = -1  # env.step_count at which the first pending action applies

    def act(self) -> int:
        """The expert's next action from the environment's current state (take it before calling again)."""
        env = self.env
        if env.step_count == 0:  # a new episode
            self.turns, self._pending = 0, []
        if env.step_count != self._next_step:  # someone else acted: the plan no longer applies
            self._pending = []
        if not self._pending:
            self._pending = next_actions(env, self.mode, self.turns)
            self.turns += int(self._pending == [int(Actions.left)])
        self._next_step = env.step_count + 1
        return self._pending.pop(0)


@dataclass(frozen=True)
class BotComparison:
    """Our expert against minigrid's BabyAI bot on the same BabyAI episodes."""

    level: str
    episodes: int
    expert_success: float
    bot_success: float
    expert_mean_steps: float
    bot_mean_steps: float
    expert_shorter_or_equal: float
    bot_moved_object_when_shorter: float  # of the episodes where the bot was shorter, share where it dropped an object
    expert_eps_per_s: float
    bot_eps_per_s: float

    @property
    def speed_ratio(self) -> float:
        """How many times faster our expert is than the BabyAI bot."""
        return self.expert_eps_per_s / self.bot_eps_per_s


def compare_with_babyai_bot(level: str = "BabyAI-GoToLocal-v0", episodes: int = 200, seed: int = 0) -> BotComparison:
    """Run our planner and ``minigrid``'s ``BabyAIBot`` on the same seeded BabyAI episodes.

    Success is judged by the BabyAI level itself (its reward), so this checks our planner against
    an independent verifier as well as against the bot; speed is episodes per second for each.
    """
    import gymnasium as gym
    from minigrid.utils.baby_ai_bot import BabyAIBot

    env = gym.make(level).unwrapped
    results = {}
    for who in ("expert", "bot"):
        steps, wins, moved = [], [], []
        start = time.perf_counter()
        for i in range(episodes):
            with contextlib.redirect_stdout(io.StringIO()):  # BabyAI prints rejected samples
                env.reset(seed=seed + i)
            if who == "expert":
                desc = env.instrs.desc
                actions = plan_to_face(env, desc.obj_poss, pickup=type(env.instrs).__name__ == "PickupInstr")
                policy = iter(actions or [])
                bot = None
            else:
                bot = BabyAIBot(env)
            reward, done, n, dropped = 0.0, False, 0, False
            while not done:
                action = bot.replan() if bot is not None else next(policy, int(Actions.done))
                _, reward, term, trunc, _ = env.step(action)
                done, n, dropped = term or trunc, n + 1, dropped or action == Actions.drop
            steps.append(n)
            moved.append(dropped)
            wins.append(reward > 0)
        elapsed = time.perf_counter() - start
        results[who] = (np.array(steps), np.array(wins), episodes / elapsed, np.array(moved))
    (es, ew, espeed, _), (bs, bw, bspeed, bmoved) = results["expert"], results["bot"]
    shorter = bs < es
    return BotComparison(
        level=level,
        episodes=episodes,
        expert_success=float(ew.mean()),
        bot_success=float(bw.mean()),
        expert_mean_steps=float(es.mean()),
        bot_mean_steps=float(bs.mean()),
        expert_shorter_or_equal=float((es <= bs).mean()),
        bot_moved_object_when_shorter=float(bmoved[shorter].mean()) if shorter.any() else float("nan"),
        expert_eps_per_s=espeed,
        bot_eps_per_s=bspeed,
    )


def bot_table(comparisons: list[BotComparison]) -> pd.DataFrame:
    """Chapter 1's cross-check as a table: one column per BabyAI level, one row per measure
    (shares as percentages, steps with two decimals, speeds in episodes per second)."""
    import pandas as pd

    from .display import PERCENT

    def column(b: BotComparison) -> dict[str, str]:
        moved = b.bot_moved_object_when_shorter
        return {
            "episodes": f"{b.episodes}",
            "expert success": PERCENT.format(b.expert_success),
            "bot success": PERCENT.format(b.bot_success),
            "expert mean steps": f"{b.expert_mean_steps:.2f}",
            "bot mean steps": f"{b.bot_mean_steps:.2f}",
            "expert <= bot steps": PERCENT.format(b.expert_shorter_or_equal),
            "bot moved an object, when shorter": "bot never shorter" if np.isnan(moved) else PERCENT.format(moved),
            "expert episodes/s": f"{b.expert_eps_per_s:.0f}",
            "bot episodes/s": f"{b.bot_eps_per_s:.0f}",
            "speed ratio": f"{b.speed_ratio:.1f}",
        }

    return pd.DataFrame({b.level: column(b) for b in comparisons})


def check_expert(env_config: EnvConfig, episodes_per_task: int, seed: int = 0) -> list[dict[str, float | str]]:
    """The expert on fresh evaluation episodes of every task: success rate, mean steps, episodes/s."""
    rows: list[dict[str, float | str]] = []
    for task in TASKS:
        env = make_env(env_config, task=task)
        wins, steps = 0, 0
        start = time.perf_counter()
        for ep_seed in episode_seeds(seed, task, episodes_per_task, "eval"):
            env.reset(seed=int(ep_seed))
            actions = plan(env) or []
            info: dict = {"success": False}
            for action in actions:
                _, _, term, trunc, info = env.step(action)
            wins += bool(info["success"])
            steps += len(actions)
        elapsed = time.perf_counter() - start
        rows.append(
            {
                "task": task,
                "episodes": episodes_per_task,
                "success": wins / episodes_per_task,
                "mean_steps": steps / episodes_per_task,
                "episodes_per_s": episodes_per_task / elapsed,
            }
        )
    return rows
