# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The world: instructions, room, expert and demonstrations
#
# ## Overview
#
# The agent of Milano & Nolfi learns what instructions *mean* by acting on them. Before any
# learning, we need the world it acts in: a small BabyAI-style room, a language of instructions
# with synonyms, and an expert that shows the right way to act on every one of them. This chapter
# builds these three pieces from the `lva` package and checks them:
#
# 1. the instruction language (three tasks, six verb phrases each, colours, object types);
# 2. the room: a MiniGrid environment with a partial, egocentric view;
# 3. the expert: a planner that sees the whole room and solves every episode, cross-checked
#    against MiniGrid's own BabyAI bot;
# 4. the demonstrations that [chapter 3](03_training.ipynb) will imitate.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | a grid world, breadth-first search, what a demonstration is |
# | Chapters | none: this is the first |
# | Time to run | seconds (longer when the demonstrations are not cached yet); measured times per profile and processor: [Reproducing the study](../reproduce.md) |
#
# Everything here runs offline on a laptop CPU.

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup
#
# Every knob of the pipeline lives in one config, selected by a profile. This chapter uses its
# `env`, `demos` and `checks` sections.

# %%
import warnings

import numpy as np
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from lva import pipeline, viz
from lva.config import get_config
from lva.display import config_table, styled
from lva.env import ACTION_NAMES, ENV_ID, make_env, rules_markdown
from lva.expert import bot_table, check_expert, compare_with_babyai_bot
from lva.instructions import (
    COLORS,
    OBJECT_TYPES,
    TASK_NAMES,
    TASKS,
    VERBS,
    all_instructions,
    instructions_for,
    vocabulary,
)

warnings.filterwarnings("ignore", module="gymnasium")
pd.set_option("display.max_colwidth", None)
viz.setup_charts()
cfg = get_config(profile)
config_table(cfg, "env")

# %% [markdown]
# ## 2. The instruction language
#
# An instruction is `<verb phrase> the <colour> <object type>`. Each task has six synonymous verb
# phrases, so the same meaning can be said six ways; the paper adds synonyms for the same reason,
# to give the language some variation the agent must see through.

# %%
pd.DataFrame(
    {
        TASK_NAMES[t]: {
            "verb phrases": ", ".join(VERBS[t]),
            "object types": ", ".join(OBJECT_TYPES[t]),
            "instructions": len(instructions_for(t)),
        }
        for t in TASKS
    }
).T

# %% [markdown]
# With six colours ({glue:text}`n_colors` is the number MiniGrid defines), the full list has one
# instruction per (task, verb, colour, type) combination. Doors can be reached or escaped from but
# not picked up, which is why PICK-UP has fewer instructions.

# %%
instructions = all_instructions()
print(f"{len(instructions)} instructions, {len(vocabulary())} distinct words")
print("colours:", ", ".join(COLORS))
print("first and last:", instructions[0].text, "|", instructions[-1].text)
print(
    "distinct meanings (task, colour, type):",
    len({i.meaning for i in instructions}),
)

# %%
viz.vocabulary_chart()

# %% [markdown]
# ## 3. The room
#
# `lva.env.InstructionRoomEnv` (registered with gymnasium as `LVA/InstructionRoom-v0`) is a
# single room with a target object, a few distractors on the floor and doors in the walls. No
# distractor shares the target's colour and type, so every instruction names exactly one object.
# The agent sees a 7 x 7 window in front of it (walls block the view), both as MiniGrid's symbolic
# grid and as an RGB image. The default (`fast`) agent of [chapter 2](02_agent.ipynb) reads the
# symbolic grid; the `full` profile's agent looks at the image through an ImageNet CNN.

# %%
print(ENV_ID)
print(
    "actions:", ", ".join(f"{i} {name}" for i, name in enumerate(ACTION_NAMES))
)
env = make_env(cfg.env, rgb_obs=True)
obs, info = env.reset(seed=0)
print("mission:", obs["mission"])
for key, value in obs.items():
    if key != "mission":
        print(
            f"{key}:",
            (value.shape, value.dtype) if hasattr(value, "shape") else value,
        )

# %% [markdown]
# One seeded episode of each task. Left: the whole room, the agent's field of view highlighted;
# right: what the agent actually sees, the red triangle being the agent itself at the bottom centre.

# %% mystnb={"image": {"alt": "One room per task, whole and as the agent's 7 x 7 view"}}
viz.task_examples(cfg.env, seed=0)

# %% [markdown]
# The rules that decide success, from the class docstring:

# %%
Markdown(rules_markdown())

# %% [markdown]
# The rule that needed a choice is ESCAPE-FROM, which the paper does not define. Here an ESCAPE-FROM episode starts with the agent
# at most {glue:text}`escape_start` step from the named object and succeeds once the agent is at
# least {glue:text}`escape_distance` path steps away from it (steps through free cells, so walls
# and objects in between count).

# %% tags=["remove-input"]
glue("n_colors", len(COLORS), display=False)
glue("escape_start", cfg.env.escape_start_max, display=False)
glue("escape_distance", cfg.env.escape_distance, display=False)
n_objects = cfg.env.num_distractors + 1  # the named object and the distractors
glue("n_objects", n_objects, display=False)
glue("pickup_chance", f"{1 / n_objects:.0%}", display=False)

# %% [markdown]
# ## 4. The expert
#
# The expert sees the whole room and searches the agent's own state space (position x direction)
# breadth-first, so its plans are the shortest possible for GO-TO and PICK-UP, and the shortest way
# out to the escape distance for ESCAPE-FROM. Here is its plan for one instruction.

# %% mystnb={"image": {"alt": "The expert's path to the blue key, with the start and end views"}}
viz.expert_path(cfg.env, "pick up the blue key", seed=11)

# %% mystnb={"image": {"alt": "The expert's path away from the purple box, with the start and end views"}}
viz.expert_path(cfg.env, "run away from the purple box", seed=4)

# %% [markdown]
# ### 4.1 Does it solve every episode?
#
# On fresh evaluation seeds (never used for demonstrations), per task:

# %%
n_check = cfg.checks.expert_episodes_per_task
checks = pd.DataFrame(check_expert(cfg.env, n_check, seed=cfg.seed))
styled(
    checks,
    percent=["success"],
    decimals={"mean_steps": 2, "episodes_per_s": 0},
    hide_index=True,
)

# %% [markdown]
# ### 4.2 Cross-check against MiniGrid's BabyAI bot
#
# MiniGrid ships `BabyAIBot`, the expert that generated BabyAI's own demonstrations. We run our
# planner and the bot on the *same* seeded episodes of two BabyAI levels, with success judged by
# the BabyAI level itself, an independent check of our planner. The bot explores what it has not
# yet seen and may move a blocking object; our planner sees the whole room but never moves objects.

# %%
levels = ("BabyAI-GoToLocal-v0", "BabyAI-PickupLoc-v0")
bots = [compare_with_babyai_bot(level, cfg.checks.bot_episodes, seed=cfg.seed)
        for level in levels]
bot_table(bots)  # lva.expert.bot_table: one column per level

# %% [markdown]
# Our expert is never longer than the bot except in the rare episodes where the bot picks up an
# object that blocks the way and drops it aside (the "moved an object" row counts how often that
# explains it); our expert walks around obstacles instead, which is always possible in the rooms
# we generate.

# %% [markdown]
# ## 5. Demonstrations
#
# Chapter 3 trains the agent to imitate the expert. Each demonstration is an episode: a seeded
# room, an instruction, and the expert's actions with the agent's view before each of them. Each
# task's instructions are cycled through evenly, and the set is cached under a folder keyed by a
# hash of the `env` and `demos` config sections, written atomically.
#
# **Which expert to imitate.** The shortest-path expert above sees the whole room: it walks
# straight towards an object the agent may not see yet. No policy that only has the 7 x 7 view can
# copy that, and in our first trials an agent cloned from it learned "walk to the nearest object
# and pick it up" (PICK-UP near {glue:text}`pickup_chance` success, the chance of picking the
# right one of {glue:text}`n_objects` objects). The
# demonstrations therefore use the expert's **look-first** mode (`lva.expert.next_actions`): it
# turns left until the named object is in view (at most three turns), then follows the shortest
# plan. Every action is then something the agent can infer from what it sees, at the price of a
# few extra turns.

# %%
built = pipeline.demonstrations.built(cfg)
demos = built.value
print(f"{demos.n_episodes} episodes, {demos.n_transitions} transitions")
if built.cached:
    print("from cache")
else:
    rate = demos.n_episodes / built.seconds
    print(f"generated in {built.seconds:.1f} s ({rate:.0f} episodes/s)")
stored = cfg.artifact("demos", "demos.npz").path
print("stored in <cache>/" + stored.relative_to(cfg.cache_dir).as_posix())

# %%
per_instruction = np.bincount(demos.instruction, minlength=len(instructions))
print(f"episodes per instruction: min {per_instruction.min()}, "
      f"max {per_instruction.max()}")

# %%
viz.length_chart(demos.lengths, demos.task)

# %%
viz.action_chart(demos.action, np.repeat(demos.task, demos.lengths))

# %% [markdown]
# ## Summary
#
# - The instruction language has three tasks, six synonymous verb phrases each, six colours and
#   four object types: {glue:text}`n_instructions` instructions in all.
# - The room is a MiniGrid environment with six actions and a 7 x 7 egocentric view, as a symbolic
#   grid and as an RGB image.
# - The expert plans on the full state by breadth-first search; it solves every episode we
#   generate and agrees with MiniGrid's BabyAI bot while being faster.
# - The demonstrations use a look-first expert whose actions a partial-view agent can infer; they
#   are deterministic for a seed and cached by config.
#
# ## What's next
#
# [Chapter 2](02_agent.ipynb) builds the agent that will imitate these demonstrations: a language pathway that
# turns an instruction into the 128-d embedding $E_L$ whose geometry the rest of the book studies.

# %% tags=["remove-input"]
glue("n_instructions", len(instructions), display=False)

# %% [markdown]
# ## Exercises
#
# ```{exercise} Count the meanings
# :label: ex-01-meanings
#
# Using `lva.instructions`, count how many instructions share each meaning (task, colour, type).
# Why is it the same number for every meaning? Bind `answer` to a dict {meaning: number of
# instructions} (a `collections.Counter` is one).
# ```
#
# ```{solution-start} ex-01-meanings
# :class: dropdown
# ```

# %% tags=["solution"]
from collections import Counter  # noqa: E402

answer = None  # a dict {meaning: number of instructions}
# --- your code below ---
answer = Counter(i.meaning for i in all_instructions())
print(set(answer.values()),
      "instructions per meaning; one per verb phrase of the task")

# %% [markdown]
# ```{solution-end}
# ```

# %%
from lva.checks import check  # noqa: E402

check("1.1", answer);

# %% [markdown]
# ```{exercise} A harder escape
# :label: ex-01-escape
#
# Make ESCAPE-FROM harder by asking for 6 path steps instead of 4
# (`get_config(profile, env__escape_distance=6)`), and measure how the expert's mean episode
# length changes with `lva.expert.check_expert` (100 episodes per task, `seed=1`). Bind `answer`
# to a dict {task: mean episode length} (the `mean_steps` of each row).
# ```
#
# ```{solution-start} ex-01-escape
# :class: dropdown
# ```

# %% tags=["solution"]
harder = get_config(profile, env__escape_distance=6)
answer = None  # a dict {task: mean episode length}
# --- your code below ---
answer = {}
for row in check_expert(harder.env, 100, seed=1):
    print(f"{row['task']:>7}: success {row['success']:.0%}, "
          f"mean steps {row['mean_steps']:.2f}")
    answer[row["task"]] = row["mean_steps"]

# %% [markdown]
# ```{solution-end}
# ```

# %%
check("1.2", answer, cfg=cfg);
