"""The single-room BabyAI-style world of the paper, as a MiniGrid environment.

One class, :class:`InstructionRoomEnv`, registered with gymnasium as ``LVA/InstructionRoom-v0``.
All randomness flows through ``self.np_random``, so a seed fixes the whole episode.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.actions import Actions
from minigrid.core.constants import OBJECT_TO_IDX
from minigrid.core.grid import Grid
from minigrid.core.mission import MissionSpace
from minigrid.core.world_object import Ball, Box, Door, Key, Wall, WorldObj
from minigrid.minigrid_env import MiniGridEnv

from .config import EnvConfig
from .instructions import COLORS, TASKS, Instruction, all_instructions, check_task, instructions_for, parse
from .planner import UNREACHED, path_distances, plan

ENV_ID = "LVA/InstructionRoom-v0"

#: The six actions of the paper, with MiniGrid's indices (MiniGrid's seventh, ``done``, is dropped).
ACTION_NAMES: tuple[str, ...] = ("left", "right", "forward", "pickup", "drop", "toggle")

_MAKERS = {"ball": Ball, "box": Box, "key": Key}


class InstructionRoomEnv(MiniGridEnv):
    """
    ## Description
    A single room (``room_size`` x ``room_size`` cells including walls) holding one target object
    and a few distractors: balls, boxes and keys on the floor, doors in the walls, in six colours.
    The mission names one task and one object: GO-TO (``go to the red ball``, any type, doors
    included), PICK-UP (``pick up the blue key``, balls, boxes and keys) or ESCAPE-FROM
    (``escape from the green door``, any type). Each task is phrased with six synonymous verbs.
    No other object shares the target's colour and type, so every instruction names one object.

    ## Mission Space
    ``"<verb> the <colour> <type>"``, one of the 396 strings of
    :func:`lva.instructions.all_instructions`.

    ## Action Space
    | Num | Name    | Action                                    |
    |-----|---------|-------------------------------------------|
    | 0   | left    | turn left                                 |
    | 1   | right   | turn right                                |
    | 2   | forward | move forward                              |
    | 3   | pickup  | pick up the object in front               |
    | 4   | drop    | drop the carried object in front          |
    | 5   | toggle  | open / close a door, open (destroy) a box |

    ## Observation
    A dict: ``image`` (the egocentric ``view_size`` x ``view_size`` x 3 symbolic view, MiniGrid's
    (type, colour, state) encoding, occlusion applied), ``direction`` (0-3), ``mission`` (the
    instruction) and, with ``rgb_obs=True``, ``rgb``: the same egocentric view rendered as an RGB
    image of ``view_size * rgb_tile`` pixels a side.

    ## Rewards
    ``1 - 0.9 * (step_count / max_steps)`` on success, ``0`` otherwise (MiniGrid's convention).

    ## Termination
    The episode ends with **success** when
    - GO-TO: the agent faces the target (it is in the cell in front of the agent);
    - PICK-UP: the agent is carrying the target;
    - ESCAPE-FROM: the agent stands at least ``escape_distance`` path steps from the target, where
      path steps count moves through free cells (the cells next to the object are 1 step away).
      ESCAPE-FROM episodes start with the agent at most ``escape_start_max`` steps from the target.

    It ends with **failure** when PICK-UP picks up another object, when any task picks up a
    target it must not carry (GO-TO, ESCAPE-FROM) or destroys it (toggling a box), and it is
    truncated after ``max_steps`` steps. Interacting with the outside of the grid (walking through
    an opened outer door) is a no-op.

    ## Registered Configurations
    - ``LVA/InstructionRoom-v0`` (keyword arguments: ``task``, ``rgb_obs`` and every field of
      :class:`lva.config.EnvConfig`).
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        task: str | None = None,
        rgb_obs: bool = False,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        cfg = config or EnvConfig()
        if overrides:
            import dataclasses

            valid = {f.name for f in dataclasses.fields(EnvConfig)}
            bad = sorted(set(overrides) - valid)
            if bad:
                raise ValueError(f"unknown environment option(s) {bad}; valid: {', '.join(sorted(valid))}")
            cfg = dataclasses.replace(cfg, **overrides)
        if cfg.room_size < 5:
            raise ValueError(f"room_size must be >= 5 (got {cfg.room_size})")
        if not 1 <= cfg.num_doors <= len(COLORS):
            raise ValueError(f"num_doors must be in 1..{len(COLORS)} (got {cfg.num_doors})")
        if cfg.escape_start_max >= cfg.escape_distance:
            raise ValueError("escape_start_max must be smaller than escape_distance")
        self.cfg = cfg
        self.task = check_task(task) if task is not None else None
        self.rgb_obs = rgb_obs
        self.pool: tuple[Instruction, ...] = instructions_for(task) if task else all_instructions()
        texts = [i.text for i in all_instructions()]
        mission_space = MissionSpace(mission_func=lambda instruction: instruction, ordered_placeholders=[texts])
        super().__init__(
            mission_space=mission_space,
            grid_size=cfg.room_size,
            max_steps=cfg.max_steps,
            agent_view_size=cfg.view_size,
            see_through_walls=False,
            render_mode=render_mode,
        )
        self.action_space = spaces.Discrete(len(ACTION_NAMES))
        if rgb_obs:
            side = cfg.view_size * cfg.rgb_tile
            self.observation_space = spaces.Dict(
                {**self.observation_space.spaces, "rgb": spaces.Box(0, 255, (side, side, 3), dtype=np.uint8)}
            )
        self.instruction: Instruction = self.pool[0]
        self.target: WorldObj | None = None
        self._forced: Instruction | None = None

    # ------------------------------------------------------------------ episode generation
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Start an episode; ``options={"instruction": "go to the red ball"}`` fixes the mission."""
        self._forced = None
        if options and "instruction" in options:
            ins = options["instruction"]
            ins = parse(ins) if isinstance(ins, str) else ins
            if self.task is not None and ins.task != self.task:
                raise ValueError(f"instruction {ins.text!r} is not a {self.task} instruction")
            self._forced = ins
        obs, info = super().reset(seed=seed)
        info = {**info, "instruction": self.instruction.text, "task": self.instruction.task}
        return obs, info

    def _gen_grid(self, width: int, height: int) -> None:
        ins = self._forced or self.pool[int(self.np_random.integers(len(self.pool)))]
        self.instruction = ins
        self.mission = ins.text
        while True:  # rejection sampling until the episode is solvable (rare: a boxed-in target)
            if self._try_layout(width, height, ins):
                return

    def _try_layout(self, width: int, height: int, ins: Instruction) -> bool:
        cfg = self.cfg
        self.grid = Grid(width, height)
        self.grid.wall_rect(0, 0, width, height)
        self.carrying = None
        rng = self.np_random

        # Doors: distinct colours, the target's first when the target is a door.
        others = [c for c in COLORS if c != ins.color]
        rng.shuffle(others)
        door_colors = ([ins.color] if ins.obj_type == "door" else []) + others
        door_colors = door_colors[: cfg.num_doors]
        spots = _wall_spots(width, height)
        chosen = rng.choice(len(spots), size=len(door_colors), replace=False)
        doors = []
        for color, idx in zip(door_colors, chosen):
            x, y = spots[int(idx)]
            door = Door(color, is_open=False, is_locked=False)
            self.grid.set(x, y, door)
            door.cur_pos = np.array((x, y))
            doors.append(door)

        if ins.obj_type == "door":
            self.target = doors[0]
        else:
            self.target = _MAKERS[ins.obj_type](ins.color)
            self.place_obj(self.target)

        # Distractors: never the target's twin.
        placed = 0
        while placed < cfg.num_distractors:
            obj_type = ("ball", "box", "key")[int(rng.integers(3))]
            color = COLORS[int(rng.integers(len(COLORS)))]
            if (obj_type, color) == (ins.obj_type, ins.color):
                continue
            self.place_obj(_MAKERS[obj_type](color))
            placed += 1

        if ins.task == "escape":
            dist = self.path_distances()
            near = [
                (x, y)
                for y in range(1, height - 1)
                for x in range(1, width - 1)
                if self.grid.get(x, y) is None and 1 <= dist[y, x] <= cfg.escape_start_max
            ]
            if not near or not self.escaped_cells(dist).any():
                return False
            self.agent_pos = near[int(rng.integers(len(near)))]
            self.agent_dir = int(rng.integers(4))
        else:
            self.place_agent()

        solution = plan(self)
        return bool(solution)  # None: unsolvable; []: already solved at the start

    # ------------------------------------------------------------------ dynamics
    def step(self, action: Any) -> tuple[dict, SupportsFloat, bool, bool, dict]:
        """One step; success and failure follow the rules of the class docstring."""
        if not self.action_space.contains(action):
            raise ValueError(
                f"invalid action {action!r}; valid actions: 0..{len(ACTION_NAMES) - 1} = {', '.join(ACTION_NAMES)}"
            )
        action = int(action)
        was_carrying = self.carrying
        if self._in_grid(self.front_pos):
            obs, _, _, truncated, info = super().step(action)
        else:  # on an opened outer door, facing out: only turning does anything
            self.step_count += 1
            if action == Actions.left:
                self.agent_dir = (self.agent_dir - 1) % 4
            elif action == Actions.right:
                self.agent_dir = (self.agent_dir + 1) % 4
            obs, truncated, info = self.gen_obs(), self.step_count >= self.max_steps, {}
        status = self.status(picked=self.carrying is not None and was_carrying is None)
        reward = self._reward() if status == "success" else 0.0
        info = {**info, "status": status, "success": status == "success"}
        return obs, reward, status != "running", truncated and status == "running", info

    def status(self, picked: bool = False) -> str:
        """``"success"``, ``"failure"`` or ``"running"`` for the current state (see Termination)."""
        task, target = self.instruction.task, self.target
        assert target is not None
        if self.carrying is target:
            return "success" if task == "pickup" else "failure"
        if picked and task == "pickup":
            return "failure"  # grabbed the wrong object
        pos = tuple(target.cur_pos)
        if self.grid.get(*pos) is not target:
            return "failure"  # the target was destroyed (a toggled box)
        if task in ("goto", "pickup"):
            front = self.front_pos
            if task == "goto" and self._in_grid(front) and tuple(front) == pos:
                return "success"
            return "running"
        x, y = self.agent_pos
        return "success" if self.escaped_cells()[y, x] else "running"

    def gen_obs(self) -> dict:
        """MiniGrid's observation (built by :meth:`view_image`), plus the RGB agent view when ``rgb_obs`` is set."""
        obs = {"image": self.view_image(), "direction": self.agent_dir, "mission": self.mission}
        if self.rgb_obs:
            obs["rgb"] = self.agent_view_rgb()
        return obs

    def view_image(self) -> np.ndarray:
        """MiniGrid's symbolic egocentric view, equal to ``MiniGridEnv.gen_obs()["image"]`` (a test
        checks) but much faster: it reads the view's cells straight from the grid instead of
        building sliced and rotated ``Grid`` copies (most of the demonstrations' time)."""
        view, width, height, cells = self.agent_view_size, self.width, self.height, self.grid.grid
        ax, ay = int(self.agent_pos[0]), int(self.agent_pos[1])
        seen = [
            cells[(ay + dy) * width + ax + dx] if 0 <= ax + dx < width and 0 <= ay + dy < height else _WALL
            for dx, dy in _view_offsets(view, int(self.agent_dir))
        ]  # seen[i * view + j]: view cell (i, j), as Grid.slice + rotate_left give it
        mask = _visible(view, [cell is not None and not cell.see_behind() for cell in seen])
        seen[(view // 2) * view + view - 1] = self.carrying  # the agent sees what it carries
        codes = [(c.encode() if c is not None else _EMPTY) if m else _UNSEEN for c, m in zip(seen, mask)]
        return np.frombuffer(bytearray(itertools.chain.from_iterable(codes)), dtype=np.uint8).reshape(view, view, 3)

    def agent_sees(self, x: int, y: int) -> bool:
        """MiniGrid's ``agent_sees`` (a non-empty cell is in view and not occluded), from :meth:`view_image`."""
        coords = self.relative_coords(x, y)
        if coords is None:
            return False
        world = self.grid.get(x, y)
        assert world is not None
        vx, vy = coords
        return int(self.view_image()[vx, vy, 0]) == OBJECT_TO_IDX[world.type]

    # ------------------------------------------------------------------ helpers
    def agent_view_rgb(self, tile_size: int | None = None) -> np.ndarray:
        """The egocentric view as an RGB image (what the ImageNet CNN of chapter 2 sees)."""
        return self.get_pov_render(tile_size or self.cfg.rgb_tile)

    def full_rgb(self, tile_size: int = 32, highlight: bool = True) -> np.ndarray:
        """The whole room as an RGB image, the agent's field of view highlighted."""
        return self.get_full_render(highlight, tile_size)

    def passable(self, x: int, y: int) -> bool:
        """Whether the agent can stand in cell (x, y)."""
        if not self._in_grid((x, y)):
            return False
        cell = self.grid.get(x, y)
        return cell is None or cell.can_overlap()

    def path_distances(self) -> np.ndarray:
        """Path steps from the target to every cell (``height x width``; unreachable = int32 max)."""
        assert self.target is not None
        return path_distances(self, [tuple(self.target.cur_pos)])

    def escaped_cells(self, dist: np.ndarray | None = None) -> np.ndarray:
        """``mask[y, x]``: standing in (x, y) completes ESCAPE-FROM (reachable, >= ``escape_distance`` steps away)."""
        dist = self.path_distances() if dist is None else dist
        return (dist >= self.cfg.escape_distance) & (dist < UNREACHED)

    def _in_grid(self, pos: Iterable[int]) -> bool:
        x, y = pos
        return 0 <= x < self.width and 0 <= y < self.height


#: Streams of episode seeds: training demonstrations and fresh evaluation episodes never share one.
STREAMS = ("train", "eval")


def episode_seeds(seed: int, task: str, n: int, stream: str = "train") -> np.ndarray:
    """``n`` distinct episode seeds for one task and stream, derived from ``seed`` (deterministic)."""
    check_task(task)
    if stream not in STREAMS:
        raise ValueError(f"unknown seed stream {stream!r}; valid streams: {', '.join(STREAMS)}")
    state = np.random.SeedSequence([seed, TASKS.index(task), STREAMS.index(stream)]).generate_state(2 * n + 16)
    _, first = np.unique(state, return_index=True)
    return state[np.sort(first)][:n].astype(np.int64)


_WALL = Wall()  # what the view shows beyond the grid's edge
_EMPTY = (OBJECT_TO_IDX["empty"], 0, 0)
_UNSEEN = (OBJECT_TO_IDX["unseen"], 0, 0)


@functools.lru_cache(maxsize=None)
def _view_offsets(view: int, direction: int) -> tuple[tuple[int, int], ...]:
    """Offsets from the agent of the view's cells (cell (i, j) at ``i * view + j``), computed as
    MiniGrid's ``gen_obs_grid`` places them: ``Grid.slice`` at ``get_view_exts``, then
    ``direction + 1`` times ``Grid.rotate_left``."""
    half = view // 2
    top = ((0, -half), (-half, 0), (1 - view, -half), (-half, 1 - view))[direction]
    grid = [[(top[0] + i, top[1] + j) for j in range(view)] for i in range(view)]  # grid[i][j]: cell (i, j)
    for _ in range(direction + 1):
        turned: list[list[tuple[int, int]]] = [[(0, 0)] * view for _ in range(view)]
        for i in range(view):
            for j in range(view):
                turned[j][view - 1 - i] = grid[i][j]
        grid = turned
    return tuple(cell for column in grid for cell in column)


def _visible(view: int, opaque: list[bool]) -> list[bool]:
    """MiniGrid's ``Grid.process_vis`` on flat lists (cell (i, j) at ``i * view + j``): which
    cells the agent, at the bottom centre, sees past the opaque ones."""
    mask = [False] * (view * view)
    mask[(view // 2) * view + view - 1] = True
    for j in reversed(range(view)):
        for i in range(view - 1):
            k = i * view + j
            if mask[k] and not opaque[k]:
                mask[k + view] = True
                if j > 0:
                    mask[k + view - 1] = mask[k - 1] = True
        for i in reversed(range(1, view)):
            k = i * view + j
            if mask[k] and not opaque[k]:
                mask[k - view] = True
                if j > 0:
                    mask[k - view - 1] = mask[k - 1] = True
    return mask


def _wall_spots(width: int, height: int) -> list[tuple[int, int]]:
    """Wall cells a door can occupy (not corners)."""
    top = [(x, 0) for x in range(1, width - 1)]
    bottom = [(x, height - 1) for x in range(1, width - 1)]
    left = [(0, y) for y in range(1, height - 1)]
    right = [(width - 1, y) for y in range(1, height - 1)]
    return top + bottom + left + right


def rules_markdown() -> str:
    """The Rewards and Termination rules of :class:`InstructionRoomEnv`, as Markdown for the book."""
    import inspect

    doc = inspect.cleandoc(InstructionRoomEnv.__doc__ or "")
    section = doc[doc.index("## Rewards") : doc.index("## Registered")]
    return re.sub(r"^## (\w+)\n", r"**\1.** ", section, flags=re.MULTILINE).replace("``", "`")


def make_env(
    config: EnvConfig | None = None, task: str | None = None, rgb_obs: bool = False, **kw: Any
) -> InstructionRoomEnv:
    """A fresh, unwrapped environment (what the expert and the demo generator use)."""
    return InstructionRoomEnv(config=config, task=task, rgb_obs=rgb_obs, **kw)


def register() -> None:
    """Register ``LVA/InstructionRoom-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="lva.env:InstructionRoomEnv")


register()
