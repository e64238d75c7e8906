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
# action. [Chapter 6](06_alignment.ipynb) then compares three groundings of one architecture: action (the agent),
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
# | Time to run | longest when nothing is cached (the views' ImageNet features, then one encoder per seed), seconds after; measured times per profile and processor: [Reproducing the study](../reproduce.md) |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup
#
# The encoder's settings live in the config's `ground` section; its text tower is built from the
# `agent` section, so it always has the agent's architecture and token initialisation. One
# encoder is trained per seed of `agent_seeds`, like the agents. `holdout_fraction` of the
# episodes are held out, and the retrieval pool of section 5 is the first `pool_size` of them,
# or all of them when there are fewer (section 4 gives the counts).

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from lva import grounding as G
from lva import pipeline, viz
from lva.config import get_config
from lva.display import PERCENT, config_table, styled
from lva.instructions import TASKS, all_instructions
from lva.vision import render_views

viz.setup_charts()
cfg = get_config(profile)
INSTRUCTIONS = all_instructions()
config_table(cfg, "ground")

# %% [markdown]
# ## 2. The pairs: an instruction and two views of its episode
#
# Each expert demonstration of [chapter 1](01_environment.ipynb) gives one pair: its instruction, and two views of its
# episode as the agent saw them. The **first** view is what the agent saw when it was told; the
# **final** view is what it saw when the episode ended. One view is not enough: at the end of an
# ESCAPE-FROM episode the agent has walked away from the object, which is usually out of sight,
# so only the first view can show what the instruction refers to; the final view shows the
# outcome, the object in the cell in front (GO-TO) or carried (PICK-UP: MiniGrid draws a carried
# object in the agent's own cell, at the bottom centre of the view). The demonstrations store the
# view before each action, so the final view is recovered by replaying the episode; the encoder
# receives the views only. Each distinct view goes once through the frozen ImageNet CNN of
# [chapter 2](02_agent.ipynb) (EfficientNet-Lite0, one 40-d vector per cell), and the result is cached.

# %%
built = pipeline.vision_pairs.built(cfg, show_progress=False)
pairs = built.value
glue("n_pairs", f"{pairs.n_episodes:,}", display=False)
source = (
    "from cache" if built.cached else f"built now in {built.seconds:.0f} s"
)
print(
    f"{pairs.n_episodes:,} episodes, {len(pairs.views):,} distinct views;",
    source,
)

# %% mystnb={"image": {"alt": "The first and final view of one demonstration per task"}}
examples = [int(np.flatnonzero(pairs.task == t)[0]) for t in range(len(TASKS))]
images, titles = [], []
for e in examples:
    rgb = render_views(pairs.views[pairs.index[e]], 16)
    images += list(rgb)
    text = INSTRUCTIONS[pairs.instruction[e]].text
    titles += [f"“{text}”\n{name} view" for name in pairs.view_names]
fig = viz.show_images(images, titles, width=2.2)
plt.close(fig)  # shown once, as the cell's value
fig

# %% [markdown]
# How often each view shows the named object (the same colour and type anywhere in the view,
# carried included). This is computed from the symbolic views for the reader; the encoder is
# never told where the object is.

# %%
G.target_visible(pairs).style.format(PERCENT)

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
# \begin{aligned}
# \mathcal{L} &= \frac{1}{2B}\sum_i \big(\ell^{\,t \to v}_i + \ell^{\,v \to t}_i\big),\\
# \ell^{\,t \to v}_i &= -\log \frac{e^{t_i\cdot v_i/\tau}}{\sum_{j \in N(i)} e^{t_i\cdot v_j/\tau}},\\
# \ell^{\,v \to t}_i &= -\log \frac{e^{t_i\cdot v_i/\tau}}{\sum_{j \in N(i)} e^{t_j\cdot v_i/\tau}},\\
# N(i) &= \{i\} \cup \{j : \text{meaning}_j \neq \text{meaning}_i\}.
# \end{aligned}
# $$
#
# The set $N(i)$ handles **false negatives**. With {glue:text}`n_meanings` meanings (task,
# colour, type) and batches of {glue:text}`batch_size` pairs, a batch holds many pairs of the same meaning: a synonym ("grab the red
# ball" beside "pick up the red ball") or the same instruction twice. Plain InfoNCE would push
# them apart as negatives; here they are left out of each other's denominators, so the loss of
# a row is exactly its loss in a batch without them (`tests/test_grounding.py` checks this
# against a row-by-row reference). The parameters:

# %%
glue("n_meanings", len(set(G.meanings())), display=False)
glue("n_texts", len(INSTRUCTIONS), display=False)
glue("batch_size", cfg.ground.batch_size, display=False)
encoder0 = G.build_encoder(cfg, cfg.agent_seeds[0])
text_params = sum(p.numel() for p in encoder0.text.parameters())
image_params = sum(p.numel() for p in encoder0.image.parameters())
pd.Series(
    {
        "text tower (the agent's LanguageEncoder)": text_params,
        "image tower (head on frozen features)": image_params,
        "temperature": 1,
    },
    name="trained parameters",
).to_frame()

# %% [markdown]
# A check on a toy batch: two pairs with orthogonal text and image vectors at temperature 1 give
# $\log(1 + e^{-1})$; declared synonyms, nothing is left to push apart, and the loss is 0.

# %%
eye = torch.eye(2)
distinct = float(G.contrastive_loss(eye, eye, torch.tensor([0, 1]), 0.0))
synonyms = float(G.contrastive_loss(eye, eye, torch.tensor([0, 0]), 0.0))
expected = np.log1p(np.exp(-1))
print(f"distinct meanings: {distinct:.4f} (log(1 + 1/e) = {expected:.4f})")
print(f"synonyms: {synonyms:.4f}")

# %% [markdown]
# ## 4. Training
#
# Episodes, not views, are split into training and held-out sets (one split for every seed, so
# every encoder is scored on the same pool); the number of epochs is fixed, so a seed
# reproduces an encoder on a given machine. The missing encoders train side by side, as
# [chapter 3](03_training.ipynb)'s agents do, and each is cached under a folder keyed by the
# `env`, `demos`, `agent` and `ground` sections; a second run loads it.

# %%
train_rows, held = G.split(pairs.n_episodes, cfg.ground, cfg.demos.seed)
pool = held[: cfg.ground.pool_size]
glue("n_train", f"{len(train_rows):,}", display=False)
glue("n_held", f"{len(held):,}", display=False)
glue("holdout_pct", f"{cfg.ground.holdout_fraction:.0%}", display=False)
print(f"{len(train_rows):,} training pairs, {len(held):,} held out, "
      f"{len(pool):,} of them in the retrieval pool")

# %%
# every missing seed, trained side by side
trained_now = pipeline.train_vision_encoders(cfg, show_progress=False)
runs = {
    seed: pipeline.trained_vision_encoder(cfg, seed, show_progress=False)
    for seed in cfg.agent_seeds
}
encoders = {seed: enc for seed, (enc, _, _) in runs.items()}
histories = {f"seed {seed}": history for seed, (_, history, _) in runs.items()}
summary = pd.DataFrame(
    {
        f"seed {seed}": {
            "trained now": seed in trained_now,
            "training s": h.seconds[-1],
            "epochs": h.epoch[-1],
            "held-out top-1": h.val_top1[-1],
            "temperature": h.temperature[-1],
        }
        for seed, (_, h, _) in runs.items()
    }
).T.astype({"trained now": bool})
styled(
    summary,
    percent=["held-out top-1"],
    decimals={"training s": 1, "temperature": 3},
)

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
tables = {
    f"seed {seed}": G.retrieval(enc, pairs, pool)
    for seed, enc in encoders.items()
}
tables["untrained"] = G.retrieval(
    G.build_encoder(cfg, cfg.agent_seeds[0]), pairs, pool
)
retrieval = pd.concat(tables, names=["encoder", "task"])
first = tables[f"seed {cfg.agent_seeds[0]}"]
glue("pool", len(pool), display=False)
glue("top1_all", f"{first.loc['all', 'top-1']:.0%}", display=False)
glue("top5_all", f"{first.loc['all', 'top-5']:.0%}", display=False)
glue("chance1", f"{first.loc['all', 'chance top-1']:.1%}", display=False)
retrieval.style.format(
    "{:.1%}", subset=[c for c in retrieval.columns if c != "queries"]
)

# %%
viz.retrieval_chart(
    tables, "Text → image retrieval, held-out episodes (black: chance)"
)

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

# %% mystnb={"image": {"alt": "Per task, a held-out query and the views of its three best-ranked episodes"}}
enc = encoders[cfg.agent_seeds[0]]
meaning = G.meanings()
first_of_task = [
    next(e for e in pool if pairs.task[e] == t) for t in range(len(TASKS))
]
query_rows = pairs.instruction[
    first_of_task
]  # one held-out instruction per task
queries = [INSTRUCTIONS[i].text for i in query_rows]
pool_views = pairs.index[pool]
sim = G.similarity(enc, queries, pairs.features[pool_views])
ranked = np.argsort(-sim, axis=1, kind="stable")[:, :3]
hits = meaning[pairs.instruction[pool][ranked]] == meaning[query_rows][:, None]
viz.retrieved_examples(
    queries, ranked, pairs.views[pool_views], hits, pairs.view_names
)

# %% [markdown]
# ## 7. What this encoder stands in for, and what it does not
#
# It stands in for the *kind of grounding* of CLIP {cite:p}`radford2021clip` and BLIP
# {cite:p}`li2022blip`: a text encoder whose only training signal is which pictures a sentence
# goes with. Because its world, vocabulary, sentences and text architecture are the agent's, a
# comparison with the agent changes one thing only, the grounding: what the agent's words must
# predict is the expert's actions; what this encoder's words must predict is what the episode
# looks like. It does **not** stand in for the models themselves: it has no web-scale
# image-text corpus, no pretrained language knowledge, {glue:text}`n_texts` sentences instead of billions, and
# its images are 7 x 7 grid views seen through frozen ImageNet features. Numbers about it are
# about this controlled pair, not about CLIP or BLIP; the online CLIP and BLIP entries of the
# models page remain the way to test those.
#
# ## Summary
#
# - A CLIP-style encoder was trained per seed on {glue:text}`n_train` instruction-views pairs
#   (the {glue:text}`n_pairs` expert demonstrations less the {glue:text}`holdout_pct` held out),
#   from the first and the final view of each, with no action anywhere in its input or its
#   loss.
# - Its text tower is the agent's language module; pairs of the same meaning are never treated
#   as negatives.
# - Text-to-image retrieval on held-out episodes is far above chance and above the untrained
#   encoder, per task and overall.
#
# ## What's next
#
# [Chapter 5](05_extraction.ipynb) reads the sentence vectors of every representation: the agents', this encoder's
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
# difference say? Bind `answer` to a DataFrame with rows `"trained"` and `"untrained"` and
# columns `"synonyms"` and `"different meanings"`.
# ```
#
# ```{solution-start} ex-04-synonyms
# :class: dropdown
# ```

# %% tags=["solution"]
texts = [i.text for i in INSTRUCTIONS]
same = meaning[:, None] == meaning[None, :]
off = ~np.eye(len(texts), dtype=bool)
# answer: a DataFrame, rows "trained" and "untrained",
# columns "synonyms" and "different meanings"
answer = None
# --- your code below ---
untrained = G.build_encoder(cfg, cfg.agent_seeds[0])
rows = {}
for name, model in {"trained": enc, "untrained": untrained}.items():
    x = model.embed(texts)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    cos = x @ x.T
    rows[name] = {"synonyms": cos[same & off].mean(),
                  "different meanings": cos[~same].mean()}
answer = pd.DataFrame(rows).T
answer.style.format("{:.3f}")

# %% [markdown]
# ```{solution-end}
# ```

# %%
from lva.checks import check  # noqa: E402

check("4.1", answer, enc=enc, cfg=cfg);

# %% [markdown]
# ```{exercise} One view only
# :label: ex-04-views
#
# Train an encoder on the final view alone (`ground__views=("final",)`, and the pairs restricted
# to that view's column) and one on both views, each for 4 epochs, and compare their retrieval
# per task. Which task needs the first view? Bind `answer` to a DataFrame of top-1 retrieval
# (`G.retrieval(...)["top-1"]`), one row per task as `G.retrieval` gives them, with columns
# `"final view only"` and `"first and final"`.
# ```
#
# ```{solution-start} ex-04-views
# :class: dropdown
# ```

# %% tags=["solution"]
final = [pairs.view_names.index("final")]
final_only = G.Pairs(pairs.instruction, pairs.index[:, final],
                     pairs.features, pairs.views, ("final",))
# answer: a DataFrame, one row per task,
# columns "final view only" and "first and final"
answer = None
# --- your code below ---
short = get_config(profile, ground__epochs=4)
one_view = get_config(profile, ground__epochs=4,
                      ground__views=("final",))
first_seed = cfg.agent_seeds[0]
one, _ = G.train_encoder(one_view, final_only, first_seed)
two, _ = G.train_encoder(short, pairs, first_seed)
answer = pd.DataFrame({
    "final view only": G.retrieval(one, final_only, pool)["top-1"],
    "first and final": G.retrieval(two, pairs, pool)["top-1"],
})
answer.style.format("{:.1%}")

# %% [markdown]
# ```{solution-end}
# ```

# %%
check("4.2", answer, cfg=cfg, pairs=pairs, pool=pool);
