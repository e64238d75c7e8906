"""The expert's planner: breadth-first search over (x, y, direction) on the full state.

It sits below :mod:`lva.env` (which asks it whether a generated layout is solvable) and
:mod:`lva.expert` (the expert's behaviour and its checks): it reads an environment's grid, agent,
target and rules through their attributes and imports neither.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from minigrid.core.actions import Actions
from minigrid.minigrid_env import MiniGridEnv

#: Offsets of the four directions, in MiniGrid's order (0 = east, 1 = south, 2 = west, 3 = north).
DIR_VECS: tuple[tuple[int, int], ...] = ((1, 0), (0, 1), (-1, 0), (0, -1))

#: Path distance of a cell no path reaches.
UNREACHED = np.iinfo(np.int32).max


def _passable(env: MiniGridEnv) -> list[bool]:
    """Flat ``ok[y * width + x]``: the agent can stand in (x, y) (plain lists: numpy scalar indexing
    made these searches the demonstrations' hot spot)."""
    return [cell is None or cell.can_overlap() for cell in env.grid.grid]


def path_distances(env: MiniGridEnv, sources: list[tuple[int, int]]) -> np.ndarray:
    """Breadth-first path steps from ``sources`` through cells the agent can stand in."""
    h, w = env.height, env.width
    ok = _passable(env)
    dist = [UNREACHED] * (h * w)
    queue: deque[tuple[int, int]] = deque()
    for x, y in ((int(x), int(y)) for x, y in sources):
        dist[y * w + x] = 0
        queue.append((x, y))
    while queue:
        x, y = queue.popleft()
        step = dist[y * w + x] + 1
        for dx, dy in DIR_VECS:
            nx, ny = x + dx, y + dy
            if 0 <= nx < w and 0 <= ny < h and dist[ny * w + nx] == UNREACHED and ok[ny * w + nx]:
                dist[ny * w + nx] = step
                queue.append((nx, ny))
    return np.array(dist, dtype=np.int64).reshape(h, w)


State = tuple[int, int, int]
_LEFT, _RIGHT, _FORWARD = int(Actions.left), int(Actions.right), int(Actions.forward)
_MOVES = (_LEFT, _RIGHT, _FORWARD)


def search(env: MiniGridEnv, goal: Callable[[State], bool]) -> list[int] | None:
    """Shortest sequence of left/right/forward actions reaching a state where ``goal`` holds.

    Ties between equally short plans are broken by the action order left, right, forward.
    Returns ``None`` when no reachable state satisfies ``goal``.
    """
    ok = _passable(env)
    h, w = env.height, env.width
    start: State = (int(env.agent_pos[0]), int(env.agent_pos[1]), int(env.agent_dir))
    if goal(start):
        return []
    parent: dict[State, tuple[State, int] | None] = {start: None}
    queue: deque[State] = deque([start])
    while queue:
        state = queue.popleft()
        x, y, d = state
        for action in _MOVES:
            if action == _LEFT:
                nxt = (x, y, (d - 1) % 4)
            elif action == _RIGHT:
                nxt = (x, y, (d + 1) % 4)
            else:
                dx, dy = DIR_VECS[d]
                nx, ny = x + dx, y + dy
                if not (0 <= nx < w and 0 <= ny < h and ok[ny * w + nx]):
                    continue
                nxt = (nx, ny, d)
            if nxt in parent:
                continue
            parent[nxt] = (state, action)
            if goal(nxt):
                actions: list[int] = []
                node: State = nxt
                while (link := parent[node]) is not None:
                    node, act = link
                    actions.append(act)
                return actions[::-1]
            queue.append(nxt)
    return None


def plan_to_face(env: MiniGridEnv, targets: Iterable[tuple[int, int]], pickup: bool = False) -> list[int] | None:
    """Shortest plan to face any of ``targets`` (then pick it up if ``pickup``)."""
    facing = {(int(x) - dx, int(y) - dy, d) for x, y in targets for d, (dx, dy) in enumerate(DIR_VECS)}
    actions = search(env, facing.__contains__)  # the states facing a target
    if actions is None:
        return None
    return actions + [int(Actions.pickup)] if pickup else actions


def plan(env: Any) -> list[int] | None:
    """The expert's shortest plan for the current state of an :class:`lva.env.InstructionRoomEnv`."""
    assert env.target is not None
    task = env.instruction.task
    if task in ("goto", "pickup"):
        return plan_to_face(env, [tuple(env.target.cur_pos)], pickup=task == "pickup")
    escaped = env.escaped_cells().tolist()
    return search(env, lambda s: escaped[s[1]][s[0]])
