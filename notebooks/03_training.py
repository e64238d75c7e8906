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
# # 3. Behavioural cloning: learning to follow instructions
#
# ## Overview
#
# The agent of [chapter 2](02_agent.ipynb) learns by imitating the expert of [chapter 1](01_environment.ipynb): for every step of every
# demonstration, it is asked to predict the expert's action (cross-entropy). Nothing tells it what
# a word means; whatever structure $E_L$ acquires comes from what the words make the agent *do*.
# This chapter trains the agent and checks, honestly, whether it follows every kind of
# instruction on episodes it has never seen:
#
# 1. training, with loss, validation and success curves;
# 2. success per task, per verb synonym and per object type on fresh episodes;
# 3. episode lengths against the expert's, and filmstrips of successes and failures;
# 4. every training seed side by side (and, in the `full` profile, the two vision encoders);
# 5. an ablation that shows why the agent needs a way to *match* words to objects.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | supervised learning, cross-entropy, train/validation splits |
# | Chapters | 1 (demonstrations), 2 (the agent) |
# | Time to run | longest when no agent is cached (every agent of the chapter is trained), seconds after; measured times per profile and processor: [Reproducing the study](../reproduce.md) |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup

# %%
import numpy as np
import pandas as pd
from myst_nb import glue

from lva import pipeline, viz
from lva.config import get_config
from lva.display import PERCENT, config_table, styled
from lva.evaluate import eval_episodes, rollout, success_table
from lva.instructions import TASK_NAMES

viz.setup_charts()
cfg = get_config(profile)
config_table(cfg, "train")

# %% [markdown]
# ## 2. Training
#
# Episodes, not steps, are split into training and validation sets, so no validation step has a
# near-duplicate neighbour in the training set. The number of epochs is fixed (not a time limit),
# so a seed reproduces the same agent. A trained agent is cached under a folder keyed by the
# config sections it depends on; a second run loads it.
#
# This chapter shows several agents (two seeds, the ablation of section 5); the ones missing from
# the cache are trained first, side by side, and cached.
#
# ```{admonition} How the agents are trained side by side
# :class: dropdown
#
# The agents are small networks, which a second thread speeds up only a little, so each missing
# agent trains in its own process on one thread and is evaluated there too
# (`pipeline.train_agents`: at most `threads + 1` at a time; more would add some speed but much
# more memory). One thread per agent also makes an agent the same, bit for bit, whether it was
# trained alone or beside others on the same machine. Across processors it is not: the agents
# trained on an Intel Xeon and on an AMD EPYC differ in the last bits of their weights, so the
# numbers of this book can move slightly from one machine to another. The
# [reproduce page](../reproduce.md) shows how much.
# ```

# %%
# every agent of this chapter, the missing ones trained side by side
trained_now = pipeline.train_agents(pipeline.agent_jobs(cfg))
agent, history, _ = pipeline.trained_agent(cfg)
print(
    f"{len(trained_now)} agents trained now"
    if trained_now
    else "all from the cache"
)
print(
    f"seed {cfg.seed}: {history.seconds[-1]:.0f} s of training, "
    f"{history.transitions_per_s:,.0f} transitions/s on one thread"
)

# %%
viz.training_curves({f"seed {cfg.seed}": history})

# %% [markdown]
# ## 3. Does it follow instructions?
#
# Fresh episodes come from the `eval` seed stream, which never overlaps the demonstrations; each
# task's instructions are cycled through evenly, and the agent acts greedily (the most probable
# action).

# %%
# lva.evaluate.evaluate, cached beside the checkpoint
results = pipeline.evaluation(cfg)
per_task = success_table(results, "task")
styled(per_task, percent=["success"])

# %% [markdown]
# Per verb phrase: if the agent had learned only some synonyms, it would show here.

# %%
per_verb = success_table(results, ["task", "verb"]).reset_index()
per_verb["task"] = per_verb["task"].map(TASK_NAMES)
per_verb = per_verb.pivot(index="verb", columns="task", values="success")
per_verb.style.format(PERCENT, na_rep="")

# %% [markdown]
# Per object type (doors cannot be picked up, hence the empty cell):

# %%
per_type = success_table(results, ["task", "obj_type"]).reset_index()
per_type["task"] = per_type["task"].map(TASK_NAMES)
per_type = per_type.pivot(index="obj_type", columns="task", values="success")
per_type.index.name = "object type"
per_type.style.format(PERCENT, na_rep="")

# %% [markdown]
# ### 3.1 How efficient is it?
#
# On successful episodes, the agent's number of steps against the expert's shortest plan:

# %%
won = results[results["success"]]
won = won.assign(shortest=won["steps"] == won["expert_steps"])
by_task = won.groupby("task", sort=False)
efficiency = pd.DataFrame(
    {
        "agent mean steps": by_task["steps"].mean(),
        "expert mean steps": by_task["expert_steps"].mean(),
        "share at the expert's length": by_task["shortest"].mean(),
    }
)
styled(efficiency, percent=["share at the expert's length"],
       decimals={"agent mean steps": 2, "expert mean steps": 2})

# %% [markdown]
# ### 3.2 Filmstrips
#
# A few episodes replayed frame by frame: a success for each task, and a failure if there is one.

# %% mystnb={"image": {"alt": "Frames of a successful episode per task, each with its action"}}
pairs = eval_episodes(4, cfg.seed + 99)
records = rollout(agent, cfg.env, pairs, record=True)
for task in ("goto", "pickup", "escape"):
    shown = next(
        (r for r in records if r["task"] == task and r["success"]), None
    )
    if shown is not None:
        display(viz.filmstrip(shown))  # noqa: F821

# %% mystnb={"image": {"alt": "Frames of a failed episode, each with its action"}}
failures = results[~results["success"]]
if len(failures):
    worst = failures.iloc[0]
    from lva.instructions import parse

    episode = (int(worst["seed"]), parse(worst["instruction"]))
    record = rollout(agent, cfg.env, [episode], record=True)[0]
    display(viz.filmstrip(record))  # noqa: F821
else:
    print("no failure among the evaluation episodes")

# %% [markdown]
# ## 4. Seeds and encoders
#
# Chapters 5 and 6 compare the $E_L$ of several agents trained identically except for their
# random seed (their agreement is the *action ceiling* of [chapter 6](06_alignment.ipynb)), so each must follow
# instructions on its own. The `full` profile also trains the other vision encoder for comparison.

# %%
runs = {(cfg.agent.vision, seed): pipeline.trained_success(cfg, seed)
        for seed in pipeline.agents(cfg)}
for vision in cfg.checks.compare_visions:
    if vision != cfg.agent.vision:
        other = pipeline.variant(cfg, vision=vision)
        runs[(vision, cfg.seed)] = pipeline.trained_success(other, cfg.seed)
comparison = pd.DataFrame(runs).T
comparison.index.names = ["vision", "seed"]
task_columns = list(TASK_NAMES.values())
styled(comparison, percent=task_columns, decimals={"training s": 0})

# %% [markdown]
# (ch3-match-map)=
# ## 5. Why the agent needs a match map
#
# Following "pick up the red ball" means finding, among the objects in view, the one whose colour
# *and* type are named. In our first agents $E_L$ only entered the vision pathway through FiLM, a
# per-channel scale and shift of the feature map. With that alone, behavioural cloning on the
# `fast` profile's demonstrations learned to walk to *an* object and pick it up, but never which
# one: PICK-UP stayed near the {glue:text}`pickup_chance` chance of grabbing the right one of
# {glue:text}`n_objects` objects, in every variant we tried (token initialisations, cell encodings,
# pooling, memory or none, batch sizes, learning rates, twice the epochs, noise-injected
# demonstrations in the style of DART {cite:p}`laskey2017dart`). The same agent, given an oracle input channel that marks the named object, solved
# all three tasks within two epochs: the only missing skill was this *binding*.
#
# The agent therefore scores each cell of its view against the instruction before FiLM: a
# `match map`, `query(E_L) . cell`, where `cell` is what the vision module received for that cell
# (its one-hot type and colour, or its frozen ImageNet vector). The score is linear in one trained
# map, so learning which object the words name becomes a linear problem. $E_L$ is still shaped by the
# action loss alone. Below, the same profile trained without it (`pipeline.variant(cfg, match=False)`); with more
# demonstrations or another vision encoder FiLM alone gets further, but not to the bar.

# %%
n_objects = cfg.env.num_distractors + 1  # the named object and the distractors
glue("n_objects", n_objects, display=False)
glue("pickup_chance", f"{1 / n_objects:.0%}", display=False)
ablation_cfg = pipeline.variant(cfg, match=False)
ablation = pd.DataFrame(
    {
        "with match map": comparison.loc[(cfg.agent.vision, cfg.seed)],
        "without (FiLM only)": pipeline.trained_success(
            ablation_cfg, cfg.seed
        ),
    }
).T
styled(ablation, percent=task_columns, decimals={"training s": 0})

# %% [markdown]
# ## Summary
#
# - Behavioural cloning trains the whole agent end to end from the expert's demonstrations;
#   the tables above give its success on fresh episodes per task, synonym and object type.
# - Nothing in training tells the agent that "grab" and "pick up" mean the same thing; only the
#   actions they call for. Chapter 5 looks at what this did to $E_L$.
#
# - Without a way to match the instruction's words to the objects in view, cloning learns to go
#   to *an* object but not the named one; a linear match map fixes that, and the ablation above
#   measures the difference.
#
# ## What's next
#
# [Chapter 4](04_vision.ipynb) trains a second network with the same language module, grounded in what the agent
# *sees* rather than in what it does; [chapter 5](05_extraction.ipynb) reads $E_L$ for every instruction from the trained
# agents and from that network, and computes the embeddings of the same instructions from
# language models.

# %% [markdown]
# ## Exercises
#
# ```{exercise} Which synonym is hardest?
# :label: ex-03-synonyms
#
# From `results`, find the verb phrase with the lowest success rate in each task. Is the gap
# larger than what 1-2 episodes would explain? Bind `answer` to a dict {task: verb phrase}, with
# the tasks as `results` names them (`"goto"`, ...).
# ```
#
# ```{solution-start} ex-03-synonyms
# :class: dropdown
# ```

# %% tags=["solution"]
rates = success_table(results, ["task", "verb"]).reset_index()
answer = None  # a dict {task: verb phrase}
# --- your code below ---
hardest = rates.loc[rates.groupby("task")["success"].idxmin()]
answer = dict(zip(hardest["task"], hardest["verb"]))
hardest.assign(one_episode=1 / hardest["episodes"])

# %% [markdown]
# ```{solution-end}
# ```

# %%
from lva.checks import check  # noqa: E402

check("3.1", answer, results=results);

# %% [markdown]
# ```{exercise} Unknown words
# :label: ex-03-unknown
#
# Evaluate the trained agent on PICK-UP episodes where the verb is replaced by a word it never
# saw ("snatch the red ball": "snatch" becomes `<unk>`), with the `texts` argument of
# `lva.evaluate.rollout`. How much does success drop? Bind `answer` to the success rate with the
# unknown verb, a fraction between 0 and 1.
# ```
#
# ```{solution-start} ex-03-unknown
# :class: dropdown
# ```

# %% tags=["solution"]
episodes = eval_episodes(40, cfg.seed + 7)
pickups = [p for p in episodes if p[1].task == "pickup"]
real = rollout(agent, cfg.env, pickups)
normal = np.mean([r["success"] for r in real])
answer = None  # the success rate with the unknown verb, between 0 and 1
# --- your code below ---
texts = [f"snatch the {ins.color} {ins.obj_type}" for _, ins in pickups]
snatched = rollout(agent, cfg.env, pickups, texts=texts)
unknown = np.mean([r["success"] for r in snatched])
print(f"PICK-UP success: {normal:.0%} with the real verbs, "
      f"{unknown:.0%} with an unknown verb")
answer = unknown

# %% [markdown]
# ```{solution-end}
# ```

# %%
check("3.2", answer, agent=agent, cfg=cfg);
