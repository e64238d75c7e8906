import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from minigrid.core.world_object import Door

from lva.config import EnvConfig, get_config
from lva.env import ACTION_NAMES, ENV_ID, episode_seeds, make_env
from lva.expert import Expert, check_expert, plan
from lva.instructions import TASKS, parse


def rollout(seed: int, n_steps: int = 40):
    env = make_env(rgb_obs=True)
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(seed).integers(0, 6, n_steps)
    trace = [(obs["image"].copy(), obs["rgb"].copy(), obs["mission"])]
    for a in actions:
        obs, r, term, trunc, _ = env.step(int(a))
        trace.append((obs["image"].copy(), obs["rgb"].copy(), r))
        if term or trunc:
            break
    return trace


def test_same_seed_same_rollout_and_different_seed_differs():
    a, b, c = rollout(7), rollout(7), rollout(8)
    assert len(a) == len(b)
    for (ia, ra, xa), (ib, rb, xb) in zip(a, b):
        assert np.array_equal(ia, ib) and np.array_equal(ra, rb) and xa == xb
    assert a[0][2] != c[0][2] or not np.array_equal(a[0][0], c[0][0])


def test_gymnasium_env_checker_passes_on_registered_env():
    env = gym.make(ENV_ID, rgb_obs=True)
    check_env(env.unwrapped, skip_render_check=True)


def test_six_actions_and_invalid_action_is_rejected():
    env = make_env()
    env.reset(seed=0)
    assert env.action_space.n == len(ACTION_NAMES) == 6
    with pytest.raises(ValueError, match="valid actions"):
        env.step(6)


def test_unknown_env_option_names_valid_ones():
    with pytest.raises(ValueError, match="room_size"):
        make_env(rooms=3)


@pytest.fixture(scope="session")
def expert_over_1000_seeds() -> dict[str, dict]:
    """check_expert rolls out every task at once: run it once, not once per task (session scope:
    a module-scoped fixture would be rebuilt if pytest-xdist ran another module's test in between)."""
    return {r["task"]: r for r in check_expert(get_config("fast").env, 1000, seed=123)}


@pytest.mark.parametrize("task", TASKS)
def test_expert_solves_every_episode_over_1000_seeds(task, expert_over_1000_seeds):
    row = expert_over_1000_seeds[task]
    assert row["episodes"] == 1000 and row["success"] == 1.0


def test_expert_plans_are_shortest_against_exhaustive_search():
    """No action sequence shorter than the expert's plan succeeds (checked by brute force)."""
    import itertools

    checked = 0
    for seed in range(60):
        env = make_env(task="goto")
        env.reset(seed=seed)
        best = plan(env)
        if len(best) > 6:
            continue
        checked += 1
        for length in range(len(best)):
            for seq in itertools.product(range(3), repeat=length):  # left/right/forward only matter
                env.reset(seed=seed)
                done = False
                for a in seq:
                    _, _, done, _, info = env.step(a)
                    if done:
                        break
                assert not (done and info["success"]), (seed, seq, best)
    assert checked >= 20


def test_target_is_unique_in_the_room():
    for seed in range(200):
        env = make_env()
        env.reset(seed=seed)
        ins = env.instruction
        twins = [o for o in env.grid.grid if o is not None and o.type == ins.obj_type and o.color == ins.color]
        assert twins == [env.target]


def test_escape_starts_near_and_succeeds_far():
    cfg = EnvConfig()
    env = make_env(cfg, task="escape")
    for seed in range(100):
        env.reset(seed=seed)
        x, y = env.agent_pos
        assert 1 <= env.path_distances()[y, x] <= cfg.escape_start_max
        for a in plan(env):
            _, _, term, _, info = env.step(a)
        x, y = env.agent_pos
        assert info["success"] and env.path_distances()[y, x] >= cfg.escape_distance


def wrong_pickup(env, seeds) -> tuple[int, list[int]] | None:
    """The first seed whose episode lets the agent face a distractor and pick it up, and that plan."""
    from lva.expert import plan_to_face

    for seed in seeds:
        env.reset(seed=seed)
        distractors = [
            o for o in env.grid.grid if o is not None and o.type in ("ball", "box", "key") and o is not env.target
        ]
        steps = plan_to_face(env, [tuple(distractors[0].cur_pos)], pickup=True)
        if steps:
            return seed, steps
    return None


def test_wrong_pickup_fails_and_right_pickup_succeeds():
    env = make_env(task="pickup")
    found = wrong_pickup(env, range(50))
    assert found is not None, "no seed in 0..49 lets the agent pick up a distractor: the check would test nothing"
    seed, steps = found
    env.reset(seed=seed)
    for i, a in enumerate(steps):
        _, reward, term, _, info = env.step(a)
        assert term == (i == len(steps) - 1)  # nothing ends the episode before the wrong pickup
    assert info["status"] == "failure" and reward == 0 and env.carrying is not env.target
    env.reset(seed=0)
    for a in plan(env):
        _, reward, term, _, info = env.step(a)
    assert term and info["success"] and env.carrying is env.target and reward > 0


def test_walking_out_through_an_opened_outer_door_is_a_noop():
    env = make_env(task="goto")
    env.reset(seed=0, options={"instruction": "go to the red door"})
    assert isinstance(env.target, Door)
    # face the door, open it, step into the doorway, then try to walk out and interact
    for a in plan(env):
        env.step(a)
    env.step(ACTION_NAMES.index("toggle"))
    env.step(ACTION_NAMES.index("forward"))
    assert tuple(env.agent_pos) == tuple(env.target.cur_pos)

    def state():
        return tuple(env.agent_pos), env.agent_dir, env.carrying, env.grid.encode().tobytes()

    before = state()
    for name in ("forward", "pickup", "drop", "toggle"):  # facing out of the grid: nothing happens
        count = env.step_count
        obs, _, term, _, info = env.step(ACTION_NAMES.index(name))
        assert state() == before and env.step_count == count + 1, name
        assert not term and info["status"] == "running" and obs["image"].shape == (7, 7, 3)
    env.step(ACTION_NAMES.index("left"))  # turning still works, and turns back
    assert env.agent_dir == (before[1] - 1) % 4 and tuple(env.agent_pos) == before[0]
    env.step(ACTION_NAMES.index("right"))
    assert state() == before


def test_expert_replays_its_plan_and_replans_after_a_detour():
    env = make_env(task="goto")
    env.reset(seed=5)
    shortest = plan(env)
    expert, taken = Expert(env), []
    for _ in shortest:  # followed, it replays the plan it made at the start
        taken.append(expert.act())
        env.step(taken[-1])
    assert taken == shortest

    env.reset(seed=5)
    env.step(expert.act())
    env.step(ACTION_NAMES.index("left"))
    env.step(ACTION_NAMES.index("left"))  # a detour in the middle of its plan
    info = {"success": False}
    for _ in range(env.cfg.max_steps):
        _, _, term, trunc, info = env.step(expert.act())
        if term or trunc:
            break
    assert info["success"]


def test_forced_instruction_and_task_mismatch():
    env = make_env(task="pickup")
    obs, info = env.reset(seed=1, options={"instruction": "grab the green box"})
    assert obs["mission"] == "grab the green box" and info["task"] == "pickup"
    with pytest.raises(ValueError, match="not a pickup instruction"):
        env.reset(seed=1, options={"instruction": parse("go to the red ball")})


def test_episode_seed_streams_are_distinct_and_deterministic():
    train = episode_seeds(0, "goto", 500, "train")
    again = episode_seeds(0, "goto", 500, "train")
    evals = episode_seeds(0, "goto", 500, "eval")
    assert np.array_equal(train, again) and len(set(train)) == 500
    assert not set(train) & set(evals)
    with pytest.raises(ValueError, match="train, eval"):
        episode_seeds(0, "goto", 5, "test")


@pytest.mark.parametrize("overrides", [{}, {"view_size": 5, "room_size": 6}, {"view_size": 9, "num_doors": 4}])
def test_fast_view_equals_minigrids_observation_over_thousands_of_random_steps(overrides):
    """InstructionRoomEnv.view_image / agent_sees against MiniGrid's own gen_obs / agent_sees."""
    from minigrid.core.grid import Grid
    from minigrid.minigrid_env import MiniGridEnv

    def minigrid_sees(env, seen, x, y):  # MiniGridEnv.agent_sees, over MiniGrid's own observation grid
        coords = env.relative_coords(x, y)
        cell = None if coords is None else seen.get(*coords)
        return cell is not None and cell.type == env.grid.get(x, y).type

    rng = np.random.default_rng(0)
    steps = opened = carried = outside = 0
    for episode in range(40 if not overrides else 35):  # at least 2,000 steps each
        env = make_env(task=TASKS[episode % len(TASKS)], **overrides)
        obs, _ = env.reset(seed=episode)
        for _ in range(60):
            expected = MiniGridEnv.gen_obs(env)
            assert np.array_equal(obs["image"], expected["image"]) and obs["image"].dtype == expected["image"].dtype
            assert obs["direction"] == expected["direction"] and obs["mission"] == expected["mission"]
            seen = Grid.decode(expected["image"])[0]
            for x, y in [(x, y) for x in range(env.width) for y in range(env.height) if env.grid.get(x, y) is not None]:
                if env.grid.get(x, y).type != "wall" or rng.random() < 0.2:
                    assert env.agent_sees(x, y) == minigrid_sees(env, seen, x, y)
            # random actions, biased towards the door-opening, picking and walking that change the view
            action = int(rng.choice(6, p=[0.15, 0.15, 0.35, 0.1, 0.1, 0.15]))
            obs, _, term, trunc, _ = env.step(action)
            steps += 1
            opened += any(isinstance(c, Door) and c.is_open for c in env.grid.grid)
            carried += env.carrying is not None
            outside += not env._in_grid(env.front_pos)
            if term or trunc:
                obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    assert steps >= 2000 and opened and carried and outside  # the views that matter were all seen


def test_path_distances_equal_a_plain_breadth_first_search():
    """planner.path_distances (flat lists) against the textbook BFS over Grid.get, doors open and closed."""
    from collections import deque

    from lva.planner import UNREACHED, path_distances

    def reference(env, sources):
        dist = np.full((env.height, env.width), UNREACHED, dtype=np.int64)
        queue = deque(sources)
        for x, y in sources:
            dist[y, x] = 0
        while queue:
            x, y = queue.popleft()
            for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):
                nx, ny = x + dx, y + dy
                if 0 <= nx < env.width and 0 <= ny < env.height and dist[ny, nx] == UNREACHED:
                    cell = env.grid.get(nx, ny)
                    if cell is None or cell.can_overlap():
                        dist[ny, nx] = dist[y, x] + 1
                        queue.append((nx, ny))
        return dist

    rng = np.random.default_rng(1)
    for seed in range(200):
        env = make_env(task=TASKS[seed % 3], num_distractors=int(rng.integers(1, 8)))
        env.reset(seed=seed)
        for door in (c for c in env.grid.grid if isinstance(c, Door)):
            door.is_open = bool(rng.random() < 0.5)
        sources = [tuple(env.target.cur_pos), (int(rng.integers(env.width)), int(rng.integers(env.height)))][
            : 1 + seed % 2
        ]
        got = path_distances(env, sources)
        assert got.dtype == np.int64 and np.array_equal(got, reference(env, sources))
