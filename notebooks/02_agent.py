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
# # 2. The agent: from words and pixels to actions
#
# ## Overview
#
# The paper's agent reads an instruction with a small transformer and looks at its view with an
# ImageNet-pretrained CNN, then picks one of six actions (this book's `full` profile does the
# same; its default `fast` agent looks at the symbolic grid with a small CNN trained from
# scratch: section 3). The interesting part for the rest of the
# book is in the middle of the language pathway: a single 128-dimensional vector per instruction,
# $E_L$, which behavioural cloning shapes and which chapters [5](05_extraction.ipynb) and
# [6](06_alignment.ipynb) compare with language models.
# This chapter builds the agent piece by piece from `lva.agent` and follows one real batch
# through it:
#
# 1. the tokenizer;
# 2. the language pathway, ending in $E_L$;
# 3. the two vision encoders (`grid` and `imagenet`);
# 4. fusion, memory and the policy, with the parameter count of each part;
# 5. what $E_L$ looks like *before* any training.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | embeddings, self-attention, convolutions, FiLM conditioning, a GRU |
# | Chapters | 1 (the instructions and the demonstrations) |
# | Time to run | seconds; measured times per profile and processor: [Reproducing the study](../reproduce.md) |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup

# %%
import textwrap

import numpy as np
import pandas as pd

from lva import pipeline, viz
from lva.agent import Tokenizer, build_agent
from lva.config import get_config
from lva.display import config_table
from lva.instructions import all_instructions

viz.setup_charts()
pd.set_option("display.max_colwidth", None)
cfg = get_config(profile)
config_table(cfg, "agent")

# %% [markdown]
# ## 2. Words to token ids
#
# The tokenizer knows every word of the instruction language, plus two special tokens: `<pad>`
# (id 0) fills shorter instructions up to the longest in a batch, and `<unk>` (id 1) stands for any
# word the agent has never seen.

# %%
tok = Tokenizer()
print(len(tok), "tokens:")
print(textwrap.fill(", ".join(tok.vocab), 88))
sentences = [
    "pick up the red ball",
    "run away from the grey door",
    "hug the red ball",
]
ids, mask = tok.encode(sentences)
pd.DataFrame(ids.numpy(), index=sentences)

# %% [markdown]
# "hug" is not a word of this world, so it becomes `<unk>` (1); the zeros on the right are padding,
# which the mask tells every later stage to ignore.
#
# ## 3. The architecture
#
# Each box below is one module of `lva.agent.Agent`, with its number of trainable parameters.

# %% mystnb={"image": {"alt": "Diagram of the agent: language and vision pathways, fusion, memory, policy"}}
agent = build_agent(cfg, seed=cfg.seed)
counts = agent.parameter_counts()
arch = cfg.agent
viz.architecture_diagram(counts, arch.embed_dim, arch.token_dim, arch.vision)

# %% [markdown]
# One sentence per design choice:
#
# - **Token embeddings (100-d) and positions**: as in the paper; the paper starts all tokens from
#   the same vector, which `token_init="identical"` reproduces; the default `"random"` (unit
#   Gaussian, so every word starts distinct) is what the trained agents use: with a tiny
#   initialisation, $E_L$ did not separate colours during training ([chapter 3](03_training.ipynb)).
# - **One transformer block** {cite:p}`vaswani2017attention`: pre-norm multi-head self-attention and an
#   MLP, padding masked out.
# - **$E_L$**: the mean of the block's outputs over the real tokens, mapped to 128 dimensions; this
#   is where `Agent.embed` reads the embedding, after pooling and before any contact with vision.
# - **Vision**: `grid`, a residual CNN over the symbolic 7 x 7 view trained from scratch (the fast
#   default), or `imagenet`, frozen ImageNet-pretrained EfficientNet-Lite0 features of the RGB view
#   (one 40-d vector per cell) followed by a small trainable head (the paper's choice).
# - **Match map**: before fusion, each cell of the view gets one score, `query(E_L) . cell`, where
#   `cell` is what the vision module received there (one-hot type and colour, or the frozen
#   ImageNet vector); the map joins the visual features as one more channel. It lets the agent find
#   *the* object the instruction names, which FiLM alone never learned ({ref}`chapter 3, section 5 <ch3-match-map>`).
# - **FiLM fusion** {cite:p}`perez2018film`: $E_L$ produces a scale and a shift for every visual channel, so the
#   instruction decides which parts of the view matter; plain concatenation failed on PICK-UP in
#   our prototypes.
# - **GRU memory**: a recurrent state carried through the episode, so the agent remembers what it
#   saw before turning.
# - **Policy**: a small MLP to logits over the six actions.

# %%
pd.DataFrame({"parameters": counts}).T

# %% [markdown]
# ## 4. One real batch, stage by stage
#
# We take the first step of six demonstrations from [chapter 1](01_environment.ipynb) and follow the tensors.

# %%
demos = pipeline.demonstrations(cfg)
episodes = np.arange(6)
starts = demos.offsets[episodes]
texts = [all_instructions()[i].text for i in demos.instruction[episodes]]
trace = agent.trace(texts, demos.image[starts], demos.direction[starts])
trace = pd.DataFrame(trace, columns=["pathway", "stage", "shape"])
trace.assign(shape=trace["shape"].astype(str))

# %% [markdown]
# ## 5. $E_L$ before any learning
#
# `Agent.embed` maps a list of instructions to an $(n, 128)$ array. Before training, the
# similarities between instructions only reflect shared words and positions: "go to the red ball"
# and "go to the blue ball" share four of five tokens, so their vectors are close, whatever they
# mean. Chapter 3 changes that; chapter 6 uses this untrained agent as a control.

# %%
examples = [
    "go to the red ball",
    "go to the blue ball",
    "walk to the red ball",
    "reach the red ball",
    "pick up the red ball",
    "grab the red ball",
    "escape from the red ball",
    "flee from the red ball",
]
e_l = agent.embed(examples)
print(e_l.shape, e_l.dtype)
viz.similarity_heatmap(
    e_l, examples, "Cosine similarity of E_L, untrained agent"
)

# %% [markdown]
# ## Summary
#
# - The agent follows the paper's pathways: 100-d token embeddings, one transformer block, a
#   128-d $E_L$; a CNN on the view; FiLM fusion, a GRU and a policy over six actions.
# - It has {glue:text}`n_params` trainable parameters with the {glue:text}`vision_name` vision encoder.
# - Before training, $E_L$ reflects word overlap only.
#
# ## What's next
#
# [Chapter 3](03_training.ipynb) trains the agent by behavioural cloning on the demonstrations of chapter 1 and checks
# that it follows every kind of instruction on fresh episodes.

# %% tags=["remove-input"]
from myst_nb import glue  # noqa: E402

glue("n_params", f"{counts['total']:,}", display=False)
glue("vision_name", cfg.agent.vision, display=False)

# %% [markdown]
# ## Exercises
#
# ```{exercise} Identical start
# :label: ex-02-identical
#
# Build an agent with `token_init="identical"` (`get_config(profile, agent__token_init="identical")`)
# and embed "go to the red ball" and "go to the blue ball". Why are the two vectors equal?
# Bind `answer` to the two vectors: the array of shape (2, d) that `embed` returns.
# ```
#
# ```{solution-start} ex-02-identical
# :class: dropdown
# ```

# %% tags=["solution"]
identical = get_config(profile, agent__token_init="identical")
same = build_agent(identical, seed=0)
answer = None  # the two vectors, an array of shape (2, d)
# --- your code below ---
answer = same.embed(["go to the red ball", "go to the blue ball"])
a, b = answer
print("max |difference| =", float(np.abs(a - b).max()))
print("Every word starts from the same vector, so two sentences of the "
      "same length differ only once learning has told words apart.")

# %% [markdown]
# ```{solution-end}
# ```

# %%
from lva.checks import check  # noqa: E402

check("2.1", answer, cfg=cfg);

# %% [markdown]
# ```{exercise} Where do the parameters go?
# :label: ex-02-params
#
# Halve the number of channels of the vision CNN and the FiLM blocks
# (`agent__channels`) and compare the parameter counts per part with the table above. Bind
# `answer` to the smaller agent's counts, the dict {part: parameters} of `parameter_counts()`.
# ```
#
# ```{solution-start} ex-02-params
# :class: dropdown
# ```

# %% tags=["solution"]
answer = None  # a dict {part: parameters} of the half-channel agent
# --- your code below ---
half = get_config(profile, agent__channels=cfg.agent.channels // 2)
small = build_agent(half, seed=0)
answer = small.parameter_counts()
pd.DataFrame({"default": counts, "half channels": answer})

# %% [markdown]
# ```{solution-end}
# ```

# %%
check("2.2", answer, cfg=cfg);
