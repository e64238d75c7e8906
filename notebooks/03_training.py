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
# The agent of chapter 2 learns by imitating the expert of chapter 1: for every step of every
# demonstration, it is asked to predict the expert's action (cross-entropy). Nothing tells it what
# a word means; whatever structure $E_L$ acquires comes from what the words make the agent *do*.
# This chapter trains the agent and checks, honestly, whether it follows every kind of
# instruction on episodes it has never seen:
#
# 1. training, with loss, validation and success curves;
# 2. success per task, per verb synonym and per object type on fresh episodes;
# 3. episode lengths against the expert's, and filmstrips of successes and failures;
# 4. (`full` profile) the two vision encoders and several training seeds side by side.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | supervised learning, cross-entropy, train/validation splits |
# | Chapters | 1 (demonstrations), 2 (the agent) |
# | Time to run | `fast`: about 2.5 minutes (training once, then cached; 2 CPU cores); `full`: not measured yet |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup

# %%
import numpy as np
import pandas as pd

from lva import viz
from lva.config import get_config
from lva.evaluate import eval_episodes, evaluate, rollout, success_table
from lva.instructions import TASK_NAMES
from lva.train import load_or_train

viz.setup_charts()
cfg = get_config(profile)
pd.DataFrame({"value": {k: str(v) for k, v in cfg.to_dict()["train"].items()}})

# %% [markdown]
# ## 2. Training
#
# Episodes, not steps, are split into training and validation sets, so no validation step has a
# near-duplicate neighbour in the training set. The number of epochs is fixed (not a time limit),
# so a seed reproduces the same agent. A trained agent is cached under a folder keyed by the
# config sections it depends on; a second run loads it.

# %%
agent, history, cached = load_or_train(cfg)
print("loaded from cache" if cached else "trained now")
print(f"training time {history.seconds[-1]:.0f} s, {history.transitions_per_s:,.0f} transitions/s on {cfg.threads} threads")

# %%
viz.training_curves({f"seed {cfg.seed}": history})

# %% [markdown]
# ## 3. Does it follow instructions?
#
# Fresh episodes come from the `eval` seed stream, which never overlaps the demonstrations; each
# task's instructions are cycled through evenly, and the agent acts greedily (the most probable
# action).

# %%
results = evaluate(agent, cfg)
per_task = success_table(results, "task").rename(index=TASK_NAMES)
per_task.style.format({"success": "{:.1%}"})

# %% [markdown]
# Per verb phrase: if the agent had learned only some synonyms, it would show here.

# %%
per_verb = success_table(results, ["task", "verb"]).reset_index()
per_verb["task"] = per_verb["task"].map(TASK_NAMES)
per_verb.pivot(index="verb", columns="task", values="success").style.format("{:.0%}", na_rep="")

# %% [markdown]
# Per object type (doors cannot be picked up, hence the empty cell):

# %%
per_type = success_table(results, ["task", "obj_type"]).reset_index()
per_type["task"] = per_type["task"].map(TASK_NAMES)
per_type.pivot(index="obj_type", columns="task", values="success").style.format("{:.0%}", na_rep="")

# %% [markdown]
# ### 3.1 How efficient is it?
#
# On successful episodes, the agent's number of steps against the expert's shortest plan:

# %%
won = results[results["success"]]
pd.DataFrame(
    {
        "agent mean steps": won.groupby("task")["steps"].mean(),
        "expert mean steps": won.groupby("task")["expert_steps"].mean(),
        "share at the expert's length": (won["steps"] == won["expert_steps"]).groupby(won["task"]).mean(),
    }
).rename(index=TASK_NAMES).style.format("{:.2f}")

# %% [markdown]
# ### 3.2 Filmstrips
#
# A few episodes replayed frame by frame: a success for each task, and a failure if there is one.

# %%
pairs = eval_episodes(4, cfg.seed + 99)
records = rollout(agent, cfg.env, pairs, record=True)
for task in ("goto", "pickup", "escape"):
    shown = next((r for r in records if r["task"] == task and r["success"]), None)
    if shown is not None:
        display(viz.filmstrip(shown))  # noqa: F821

# %%
failures = results[~results["success"]]
if len(failures):
    worst = failures.iloc[0]
    from lva.instructions import parse

    record = rollout(agent, cfg.env, [(int(worst["seed"]), parse(worst["instruction"]))], record=True)[0]
    display(viz.filmstrip(record))  # noqa: F821
else:
    print("no failure among the evaluation episodes")

# %% [markdown]
# ## 4. Encoders and seeds (`full` profile)
#
# The `full` profile trains the paper's configuration, the frozen ImageNet CNN on the RGB view,
# with several seeds, and the `grid` encoder for comparison. The `fast` profile (what CI runs)
# trains one `grid` agent only; run `make book PROFILE=full` for this comparison.

# %%
runs = {}
for vision in cfg.checks.compare_visions:
    for seed in cfg.checks.compare_seeds:
        run_cfg = get_config(profile, agent__vision=vision, seed=seed)
        run_agent, run_history, _ = load_or_train(run_cfg)
        table = success_table(evaluate(run_agent, run_cfg), "task")["success"]
        runs[(vision, seed)] = {**{TASK_NAMES[k]: v for k, v in table.items()}, "train s": run_history.seconds[-1]}
if runs:
    comparison = pd.DataFrame(runs).T
    comparison.index.names = ["vision", "seed"]
    display(comparison.style.format("{:.1%}", subset=list(TASK_NAMES.values())).format("{:.0f}", subset=["train s"]))  # noqa: F821
else:
    print("fast profile: no encoder or seed comparison (run with PROFILE=full)")

# %% [markdown]
# ## Summary
#
# - Behavioural cloning trains the whole agent end to end from the expert's demonstrations;
#   the tables above give its success on fresh episodes per task, synonym and object type.
# - Nothing in training tells the agent that "grab" and "pick up" mean the same thing; only the
#   actions they call for. Chapter 4 looks at what this did to $E_L$.
#
# ```{admonition} Status of this chapter: the success bar is not met yet
# :class: warning
#
# The project's bar is at least 85% success on every task in the `fast` profile. The current
# recipe (three epochs, about three minutes on two cores) solves ESCAPE-FROM but stays far below on
# PICK-UP, which is near the chance level of grabbing one of four objects, and on GO-TO. What we
# found so far: with GPT-style small token initialisation (std 0.02), $E_L$ of "pick up the red
# ball" and "pick up the blue ball" stayed at cosine 1.00 after two epochs, so the agent could not
# tell objects apart (fixed: tokens now start at unit scale); an omniscient expert's
# demonstrations are not inferable from the partial view (fixed: look-first demonstrations);
# yet even a probe that only asks "is the named object in view?" learns slowly on our visual
# features, so the remaining bottleneck is binding the instruction to the object in the view.
# The numbers above are what the current code produces; they will change when this is fixed.
# ```
#
# ## What's next
#
# Chapter 4 reads $E_L$ for every instruction from the trained agent and computes the embeddings
# of the same instructions from language models.

# %% [markdown]
# ## Exercises
#
# ```{exercise} Which synonym is hardest?
# :label: ex-03-synonyms
#
# From `results`, find the verb phrase with the lowest success rate in each task. Is the gap
# larger than what 1-2 episodes would explain?
# ```
#
# ```{solution-start} ex-03-synonyms
# :class: dropdown
# ```

# %% tags=["solution"]
rates = success_table(results, ["task", "verb"]).reset_index()
hardest = rates.loc[rates.groupby("task")["success"].idxmin()]
hardest.assign(one_episode=1 / hardest["episodes"])

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} Unknown words
# :label: ex-03-unknown
#
# Evaluate the trained agent on PICK-UP episodes where the verb is replaced by a word it never
# saw ("snatch the red ball": "snatch" becomes `<unk>`), with the `texts` argument of
# `lva.evaluate.rollout`. How much does success drop?
# ```
#
# ```{solution-start} ex-03-unknown
# :class: dropdown
# ```

# %% tags=["solution"]
pickups = [p for p in eval_episodes(40, cfg.seed + 7) if p[1].task == "pickup"]
normal = np.mean([r["success"] for r in rollout(agent, cfg.env, pickups)])
unknown_texts = [f"snatch the {ins.color} {ins.obj_type}" for _, ins in pickups]
unknown = np.mean([r["success"] for r in rollout(agent, cfg.env, pickups, texts=unknown_texts)])
print(f"PICK-UP success: {normal:.0%} with the real verbs, {unknown:.0%} with an unknown verb")

# %% [markdown]
# ```{solution-end}
# ```
