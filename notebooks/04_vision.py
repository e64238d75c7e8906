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
# # 4. A vision-grounded encoder: the same words, grounded in what the agent sees
#
# ## Overview
#
# The paper compares the agent's $E_L$ with language-only models and with vision-language
# models such as CLIP and BLIP, which learn what a sentence means by matching it with images.
# No vision-language weights can be installed here, so this chapter trains a small one in the
# agent's own world: a text encoder with exactly the agent's language module, taught by
# contrastive learning to match each instruction with pictures of its episode. It never sees an
# action. Chapter 6 then compares three groundings of one architecture: action (the agent),
# vision (this encoder) and language only (the language models).
#
# 1. the pairs: an instruction and two views of its episode, the first and the final one;
# 2. the two towers and the contrastive loss, with synonyms kept out of the negatives;
# 3. training, for every seed;
# 4. text-to-image retrieval on held-out episodes, overall and per task, against chance and
#    the untrained encoder;
# 5. a few retrievals as pictures;
# 6. what this encoder stands in for, and what it does not.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | contrastive learning (InfoNCE), cosine similarity, retrieval accuracy |
# | Chapters | 1 (the demonstrations), 2 (the language module and the ImageNet features) |
# | Time to run | `fast`: about 1 minute on a clean clone (views and their ImageNet features, then two encoders trained and cached; 2 CPU cores), about 10-30 s after (most of it the second exercise); `full`: see the reproduce page |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup
#
# The encoder's settings live in the config's `ground` section; its text tower is built from the
# `agent` section, so it always has the agent's architecture and token initialisation. One
# encoder is trained per seed of `agent_seeds`, like the agents.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from lva import grounding as G
from lva import pipeline, viz
from lva.config import get_config
from lva.instructions import TASK_NAMES, TASKS, all_instructions
from lva.vision import render_views

viz.setup_charts()
cfg = get_config(profile)
INSTRUCTIONS = all_instructions()
pd.DataFrame({"value": {k: str(v) for k, v in cfg.to_dict()["ground"].items()}})

# %% [markdown]
# ## 2. The pairs: an instruction and two views of its episode
#
# Each expert demonstration of chapter 1 gives one pair: its instruction, and two views of its
# episode as the agent saw them. The **first** view is what the agent saw when it was told; the
# **final** view is what it saw when the episode ended. One view is not enough: at the end of an
# ESCAPE-FROM episode the agent has walked away from the object, which is usually out of sight,
# so only the first view can show what the instruction refers to; the final view shows the
# outcome, the object in the cell in front (GO-TO) or carried (PICK-UP: MiniGrid draws a carried
# object in the agent's own cell, at the bottom centre of the view). The demonstrations store the
# view before each action, so the final view is recovered by replaying the episode; the encoder
# receives the views only. Each distinct view goes once through the frozen ImageNet CNN of
# chapter 2 (EfficientNet-Lite0, one 40-d vector per cell), and the result is cached.

# %%
info: dict = {}
pairs = pipeline.vision_pairs(cfg, show_progress=False, info=info)
glue("n_pairs", f"{pairs.n_episodes:,}", display=False)
print(f"{pairs.n_episodes:,} episodes, {len(pairs.views):,} distinct views; "
      + ("loaded from cache" if info["cached"] else f"built now in {info['seconds']:.0f} s"))

# %%
examples = [int(np.flatnonzero(pairs.task == t)[0]) for t in range(len(TASKS))]
images, titles = [], []
for e in examples:
    rgb = render_views(pairs.views[pairs.index[e]], 16)
    images += list(rgb)
    titles += [f"“{INSTRUCTIONS[pairs.instruction[e]].text}”\n{name} view" for name in pairs.view_names]
fig = viz.show_images(images, titles, width=2.2)
plt.close(fig)  # shown once, as the cell's value
fig

# %% [markdown]
# How often each view shows the named object (the same colour and type anywhere in the view,
# carried included). This is computed from the symbolic views for the reader; the encoder is
# never told where the object is.

# %%
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

target = np.array([(OBJECT_TO_IDX[INSTRUCTIONS[i].obj_type], COLOR_TO_IDX[INSTRUCTIONS[i].color]) for i in pairs.instruction])
seen = {name: (pairs.views[pairs.index[:, v]][..., :2] == target[:, None, None, :]).all(-1).any((1, 2))
        for v, name in enumerate(pairs.view_names)}
visible = pd.DataFrame({f"{name} view shows it": s for name, s in seen.items()}).assign(
    task=[TASK_NAMES[TASKS[t]] for t in pairs.task]).groupby("task", sort=False).mean()
visible.style.format("{:.0%}")

# %% [markdown]
# ## 3. Two towers and a contrastive loss
#
# - The **text tower** is the agent's `LanguageEncoder` itself (chapter 2): 100-d token
#   embeddings, one transformer block, a masked mean and a linear map to 128-d. Its output is
#   this encoder's sentence vector, read exactly where the agent's $E_L$ is read.
# - The **image tower** reads the frozen per-cell ImageNet features of both views, normalises
#   them, applies a 1x1 and a 3x3 convolution, and maps the two flattened maps (where things
#   are matters) to 128-d with one linear layer.
#
# For a batch of $B$ pairs, with $t_i$ and $v_i$ the unit-length text and image vectors and
# $\tau$ a learned temperature, the loss is the symmetric InfoNCE of CLIP
# {cite:p}`radford2021clip`:
#
# $$
# \mathcal{L} = \frac{1}{2B}\sum_i \Big[-\log \frac{e^{t_i\cdot v_i/\tau}}{\sum_{j \in N(i)} e^{t_i\cdot v_j/\tau}}
#  - \log \frac{e^{t_i\cdot v_i/\tau}}{\sum_{j \in N(i)} e^{t_j\cdot v_i/\tau}}\Big],
# \qquad N(i) = \{i\} \cup \{j : \text{meaning}_j \neq \text{meaning}_i\}.
# $$
#
# The set $N(i)$ handles **false negatives**. With 66 meanings (task, colour, type) and
# batches of 256 pairs, a batch holds many pairs of the same meaning: a synonym ("grab the red
# ball" beside "pick up the red ball") or the same instruction twice. Plain InfoNCE would push
# them apart as negatives; here they are left out of each other's denominators, so the loss of
# a row is exactly its loss in a batch without them (`tests/test_grounding.py` checks this
# against a row-by-row reference). The parameters:

# %%
encoder0 = G.build_encoder(cfg, cfg.agent_seeds[0])
pd.Series({"text tower (the agent's LanguageEncoder)": sum(p.numel() for p in encoder0.text.parameters()),
           "image tower (head on frozen features)": sum(p.numel() for p in encoder0.image.parameters()),
           "temperature": 1}, name="trained parameters").to_frame()

# %% [markdown]
# A check on a toy batch: two pairs with orthogonal text and image vectors at temperature 1 give
# $\log(1 + e^{-1})$; declared synonyms, nothing is left to push apart, and the loss is 0.

# %%
eye = torch.eye(2)
print(f"distinct meanings: {float(G.contrastive_loss(eye, eye, torch.tensor([0, 1]), 0.0)):.4f} "
      f"(log(1 + 1/e) = {np.log1p(np.exp(-1)):.4f}); synonyms: {float(G.contrastive_loss(eye, eye, torch.tensor([0, 0]), 0.0)):.4f}")

# %% [markdown]
# ## 4. Training
#
# Episodes, not views, are split into training and held-out sets (one split for every seed, so
# every encoder is scored on the same pool); the number of epochs is fixed, so a seed
# reproduces an encoder. The missing encoders train side by side, each in its own process on
# one thread, as chapter 3's agents do, so an encoder is the same bit for bit however many train
# at once. Each is cached under a folder keyed by the `env`, `demos`, `agent` and `ground`
# sections; a second run loads it.

# %%
trained_now = pipeline.train_vision_encoders(cfg, show_progress=False)  # every missing seed, side by side
runs = {seed: pipeline.trained_vision_encoder(cfg, seed, show_progress=False) for seed in cfg.agent_seeds}
encoders = {seed: enc for seed, (enc, _, _) in runs.items()}
histories = {f"seed {seed}": history for seed, (_, history, _) in runs.items()}
pd.DataFrame({f"seed {seed}": {"trained now": seed in trained_now, "training s": h.seconds[-1], "epochs": h.epoch[-1],
                               "held-out top-1": h.val_top1[-1], "temperature": h.temperature[-1]}
              for seed, (_, h, _) in runs.items()}).T.style.format(
    {"training s": "{:.1f}", "held-out top-1": "{:.1%}", "temperature": "{:.3f}"})

# %%
viz.ground_curves(histories)

# %% [markdown]
# ## 5. Retrieval on held-out episodes
#
# The encoder's own quality, before any comparison with the agent: each held-out episode's
# instruction is a query, and every held-out episode's pair of views a candidate. A query is
# answered correctly at top-$k$ when one of the $k$ most similar candidates has the query's
# meaning (any synonym, any episode of it). Chance is the probability that $k$ candidates drawn
# at random include one of that meaning. The untrained encoder (same architecture, random
# weights) is the floor.

# %%
_, held = G.split(pairs.n_episodes, cfg.ground, cfg.demos.seed)
pool = held[: cfg.ground.pool_size]
tables = {f"seed {seed}": G.retrieval(enc, pairs, pool) for seed, enc in encoders.items()}
tables["untrained"] = G.retrieval(G.build_encoder(cfg, cfg.agent_seeds[0]), pairs, pool)
retrieval = pd.concat(tables, names=["encoder", "task"])
first = tables[f"seed {cfg.agent_seeds[0]}"]
glue("pool", len(pool), display=False)
glue("top1_all", f"{first.loc['all', 'top-1']:.0%}", display=False)
glue("top5_all", f"{first.loc['all', 'top-5']:.0%}", display=False)
glue("chance1", f"{first.loc['all', 'chance top-1']:.1%}", display=False)
retrieval.style.format("{:.1%}", subset=[c for c in retrieval.columns if c != "queries"])

# %%
viz.retrieval_chart(tables, "Text → image retrieval among held-out episodes (black: chance)")

# %% [markdown]
# Among {glue:text}`pool` held-out episodes, the first seed's encoder finds an episode of the
# right meaning first {glue:text}`top1_all` of the time, and among its top five
# {glue:text}`top5_all` of the time (chance at top-1: {glue:text}`chance1`). The per-task rows
# say where it is weakest; for ESCAPE-FROM, the object escaped from is visible in fewer views
# (section 2).

# %% [markdown]
# ## 6. Retrievals as pictures
#
# One held-out query per task, and the views of the three episodes the first seed's encoder
# ranks highest (✓: the episode has the query's meaning, ✗: it does not).

# %%
enc = encoders[cfg.agent_seeds[0]]
meaning = G.meanings()
queries = [INSTRUCTIONS[pairs.instruction[next(e for e in pool if pairs.task[e] == t)]].text for t in range(len(TASKS))]
sim = G.similarity(enc, queries, pairs.features[pairs.index[pool]])
ranked = np.argsort(-sim, axis=1, kind="stable")[:, :3]
query_meaning = meaning[[INSTRUCTIONS.index(next(i for i in INSTRUCTIONS if i.text == q)) for q in queries]]
hits = meaning[pairs.instruction[pool][ranked]] == query_meaning[:, None]
viz.retrieved_examples(queries, ranked, pairs.views[pairs.index[pool]], hits, pairs.view_names)

# %% [markdown]
# ## 7. What this encoder stands in for, and what it does not
#
# It stands in for the *kind of grounding* of CLIP {cite:p}`radford2021clip` and BLIP
# {cite:p}`li2022blip`: a text encoder whose only training signal is which pictures a sentence
# goes with. Because its world, vocabulary, sentences and text architecture are the agent's, a
# comparison with the agent changes one thing only, the grounding: what the agent's words must
# predict is the expert's actions; what this encoder's words must predict is what the episode
# looks like. It does **not** stand in for the models themselves: it has no web-scale
# image-text corpus, no pretrained language knowledge, 396 sentences instead of billions, and
# its images are 7 x 7 grid views seen through frozen ImageNet features. Numbers about it are
# about this controlled pair, not about CLIP or BLIP; the online CLIP and BLIP entries of the
# models page remain the way to test those.
#
# ## Summary
#
# - A CLIP-style encoder was trained on {glue:text}`n_pairs` instruction-views pairs per
#   seed, from the first and the final view of each expert demonstration, with no action
#   anywhere in its input or its loss.
# - Its text tower is the agent's language module; pairs of the same meaning are never treated
#   as negatives.
# - Text-to-image retrieval on held-out episodes is far above chance and above the untrained
#   encoder, per task and overall.
#
# ## What's next
#
# Chapter 5 reads the sentence vectors of every representation: the agents', this encoder's
# (`vision-seed<N>`, and `untrained-vision` as a control) and the language models'. Chapter 6
# compares them, and its section 8 puts action, vision and language side by side.

# %% [markdown]
# ## Exercises
#
# ```{exercise} Do synonyms meet?
# :label: ex-04-synonyms
#
# Nothing in the loss pulls two synonyms together directly: they are only kept from being
# pushed apart. With `enc.embed`, compute the mean cosine between the sentence vectors of
# synonyms (same meaning, other words) and between instructions of different meanings, for the
# trained encoder and for the untrained one (`G.build_encoder(cfg, seed)`). What does the
# difference say?
# ```
#
# ```{solution-start} ex-04-synonyms
# :class: dropdown
# ```

# %% tags=["solution"]
texts = [i.text for i in INSTRUCTIONS]
same = meaning[:, None] == meaning[None, :]
off = ~np.eye(len(texts), dtype=bool)
# --- your code below ---
rows = {}
for name, model in {"trained": enc, "untrained": G.build_encoder(cfg, cfg.agent_seeds[0])}.items():
    x = model.embed(texts)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = x @ x.T
    rows[name] = {"synonyms": cos[same & off].mean(), "different meanings": cos[~same].mean()}
pd.DataFrame(rows).T.style.format("{:.3f}")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} One view only
# :label: ex-04-views
#
# Train an encoder on the final view alone (`ground__views=("final",)`, and the pairs restricted
# to that view's column) and one on both views, each for 4 epochs, and compare their retrieval
# per task. Which task needs the first view?
# ```
#
# ```{solution-start} ex-04-views
# :class: dropdown
# ```

# %% tags=["solution"]
final_only = G.Pairs(pairs.instruction, pairs.index[:, [pairs.view_names.index("final")]], pairs.features, pairs.views, ("final",))
# --- your code below ---
short = get_config(profile, ground__epochs=4)
one, _ = G.train_encoder(get_config(profile, ground__epochs=4, ground__views=("final",)), final_only, cfg.agent_seeds[0])
two, _ = G.train_encoder(short, pairs, cfg.agent_seeds[0])
pd.DataFrame({"final view only": G.retrieval(one, final_only, pool)["top-1"],
              "first and final": G.retrieval(two, pairs, pool)["top-1"]}).style.format("{:.1%}")

# %% [markdown]
# ```{solution-end}
# ```
