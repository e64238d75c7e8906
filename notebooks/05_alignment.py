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
# # 5. Alignment between action, language and vision representations
#
# ## Overview
#
# Chapter 4 gave every instruction several vectors: the agent's $E_L$ (one per training seed),
# the same network untrained, language models of several families, and controls that know only
# the words. This chapter asks the paper's question of them: *do the instructions stand in the
# same relations to one another in the agent's space as in a language model's?* It answers with
# several metrics, each against its own chance level, with permutation nulls, bootstrap
# intervals and structured controls, so that a number is never read without what it would be by
# chance or by a trivial encoder:
#
# 1. the metrics, in one paragraph each;
# 2. every representation against every other (mutual k-NN precision@15);
# 3. precision@k against k, with chance and the controls;
# 4. action against each model under every metric, with intervals and p-values;
# 5. layer curves of the language models;
# 6. the same, within each task;
# 7. our numbers beside the paper's.
#
# ## Prerequisites
#
# | | |
# |---|---|
# | Concepts | cosine similarity, nearest neighbours, permutation tests, the bootstrap |
# | Chapters | 3 (the trained agents), 4 (the embeddings) |
# | Time to run | `fast`: about 35-40 s once chapter 4's embeddings and the agents are cached (2 CPU cores); `full`: about 4 minutes |

# %% tags=["parameters"]
profile = "fast"

# %% [markdown]
# ## 1. Setup
#
# The statistics' sizes (k, permutations, bootstrap resamples) live in the `align` section of the
# config; the `fast` profile uses fewer retrieval permutations and bootstrap resamples than `full`.

# %%
import numpy as np
import pandas as pd
from myst_nb import glue

from lva import alignment as al
from lva import viz
from lva.config import get_config
from lva.embeddings import family_of, layerwise, representations
from lva.instructions import TASK_NAMES, all_instructions

viz.setup_charts()
cfg = get_config(profile)
align = cfg.align
reps = representations(cfg, show_progress=False)
anchor = f"agent-seed{cfg.checks.agent_seeds[0]}"  # the action space: E_L of the first trained agent
family = {name: family_of(name) for name in reps}
N = len(all_instructions())
K = align.k
pd.DataFrame({"value": {k: str(v) for k, v in cfg.to_dict()["align"].items()}})

# %%
pd.DataFrame({"family": family, "dimension": {n: x.shape[1] for n, x in reps.items()}})

# %% [markdown]
# ## 2. The metrics and their chance levels
#
# Every metric compares two embeddings of the same {glue:text}`n_items` instructions (row $i$
# of both is instruction $i$); higher means more aligned. The code is in `lva.alignment`.
#
# **Mutual k-NN precision** (`mutual_knn`, Huh et al. 2024). For each instruction, take its $k$
# nearest neighbours by cosine in each space (itself excluded, columns centred first: decoder
# vectors all point the same way otherwise) and count the neighbours the two lists share; the
# score is the mean shared fraction. It is symmetric and only looks at local neighbourhoods. Two
# unrelated spaces share $k/(N-1)$ of their neighbours by chance, here
# {glue:text}`chance_knn` at $k$ = {glue:text}`k`.
#
# **Retrieval precision after an orthogonal Procrustes map** (`procrustes_retrieval`, Li et al.
# 2024). Reduce both spaces to 32 principal components, fit a rotation $W$ mapping the action space
# onto the model on 4/5 of the instructions, and for each held-out instruction ask whether its
# mapped vector has the right instruction among its $k$ most similar candidates. Chance is
# $k/N$ = {glue:text}`chance_retrieval`. The fit must be cross-validated: fitted and scored on the
# same rows it reaches 1.0 on pure noise when the dimension is large (tested in
# `tests/test_alignment.py`).
#
# **Procrustes similarity** (`procrustes_disparity`): one minus `scipy.spatial.procrustes`'
# disparity after PCA to 8 dimensions. Its chance level depends on the dimensions, so only its
# permutation null says what it means.
#
# **Debiased linear CKA** (`cka`, Song et al. 2012 estimator): how much of the two spaces' linear
# similarity structure is shared, over all pairs at once; about 0 by chance and may go negative.
# The textbook *biased* estimator (`cka_biased`) is shown for teaching only: it is far above 0 by
# chance when the dimension is large relative to $N$.
#
# **RSA** (`rsa`): the Spearman correlation between the two spaces' dissimilarity matrices
# (1 - cosine), about 0 by chance.
#
# For each score we also report a **permutation p-value** (shuffle which instruction is which in
# the model's space {glue:text}`n_perm` times; for retrieval, {glue:text}`n_perm_retrieval` times,
# as the map is refitted each time), a **calibrated score** (how far the score is above the 95%
# quantile of that null, on a 0-1 scale) and a **95% bootstrap interval** over instructions
# ({glue:text}`n_boot` resamples).

# %%
glue("n_items", N, display=False)
glue("k", K, display=False)
glue("chance_knn", f"{al.chance('mutual_knn', N, K):.3f}", display=False)
glue("chance_retrieval", f"{al.chance('procrustes_retrieval', N, K):.3f}", display=False)
glue("n_perm", align.n_perm, display=False)
glue("n_perm_retrieval", align.n_perm_retrieval, display=False)
glue("n_boot", align.n_boot, display=False)

# %% [markdown]
# ## 3. Every representation against every other
#
# Mutual k-NN precision@15 between all pairs. Two blocks give the reference points: language
# models among themselves (what "aligned" looks like between systems trained on text), and the
# agents of different training seeds among themselves (the *action ceiling*: how far two agents
# trained identically, except for their random seed, agree). Hover a cell for its value.

# %%
matrix = al.pair_matrix(reps, "mutual_knn", k=K)
viz.alignment_matrix(matrix, f"Mutual k-NN precision@{K} between representations", family)

# %%
lms = [n for n in reps if family[n] in ("decoder", "encoder", "vision-language")]
agents = [n for n in reps if family[n] == "agent"]


blocks = pd.Series(
    {
        "language model vs language model": np.mean([matrix.loc[a, b] for a in lms for b in lms if a != b]),
        "agent vs agent (different seeds)": np.mean([matrix.loc[a, b] for a in agents for b in agents if a != b]),
        "action vs language models": np.mean([matrix.loc[anchor, b] for b in lms]),
        "action vs untrained agent": matrix.loc[anchor, "untrained-agent"],
        "action vs bag-of-words": matrix.loc[anchor, "bag-of-words"],
        "chance k/(N-1)": al.chance("mutual_knn", N, K),
    },
    name=f"mutual k-NN precision@{K}",
)
glue("llm_ceiling", f"{blocks.iloc[0]:.2f}", display=False)
glue("action_ceiling", f"{blocks.iloc[1]:.2f}", display=False)
glue("action_lm", f"{blocks.iloc[2]:.2f}", display=False)
blocks.to_frame().style.format("{:.3f}")

# %% [markdown]
# The language models agree with one another at {glue:text}`llm_ceiling` on average, the agents of
# different seeds at {glue:text}`action_ceiling`, and action with the language models at
# {glue:text}`action_lm`. The matrix also shows how much a control that only knows which words
# occur (bag-of-words) shares with everything else: in this small, template-made instruction set,
# word overlap alone decides much of every neighbourhood.

# %% [markdown]
# ## 4. Precision@k against k
#
# A single $k$ hides how the overlap grows with the neighbourhood. Below, mutual k-NN precision of
# the action space against each representation for $k$ from 1 to 100, with chance $k/(N-1)$ as
# the dotted black line. The controls (dashed) are the references: bag-of-words and semantic
# features know only the words or the instruction's parts, GloVe averages static word vectors,
# and the untrained agent is the same network before learning.

# %%
curves = al.knn_curve(reps, anchor, align.ks)
controls = ("bag-of-words", "semantic-features", "glove-50d", "untrained-agent", "random")
viz.knn_curves(curves, f"Action ({anchor}) against each representation", highlight=controls)

# %% [markdown]
# ## 5. Action against each model, under every metric
#
# One row per (model, metric): the score, its 95% bootstrap interval over instructions, chance,
# the one-sided permutation p-value (the smallest possible is 1/(permutations + 1)), and the
# calibrated score. Intervals of the non-per-item metrics are computed on the distinct items of
# each resample, which is conservative and can sit slightly off the full-data score.

# %%
headline = al.headline_for(reps, anchor, align)  # al.headline with the config's sizes
headline["family"] = headline["model"].map(family)
with pd.option_context("display.width", 200, "display.max_rows", 200):
    print(headline[["model", "family", "metric", "score", "low", "high", "chance", "p", "calibrated"]].round(3).to_string(index=False))

# %% [markdown]
# The same table, one column per metric (score and interval):

# %%
cell = headline.assign(text=[f"{s:.2f} [{lo:.2f}, {hi:.2f}]" for s, lo, hi in zip(headline["score"], headline["low"], headline["high"])])
cell.pivot(index="model", columns="metric", values="text")[list(al.METRICS)].loc[[n for n in reps if n != anchor]]

# %% [markdown]
# Is the action space closer to one language model than to a control? A paired comparison on the
# per-instruction mutual k-NN overlaps (mean difference, its bootstrap interval, and a sign-flip
# p-value; neighbouring instructions overlap, so read p as approximate):

# %%
paired = {}
for name in lms + ["glove-50d", "spacy-md"]:
    if name in reps:
        r = al.paired_comparison("mutual_knn", reps[anchor], reps[name], reps["bag-of-words"], n_boot=align.n_boot, n_perm=align.n_perm, seed=align.seed, k=K)
        paired[f"{name} - bag-of-words"] = r._asdict()
pd.DataFrame(paired).T.style.format({"mean_diff": "{:+.3f}", "low": "{:+.3f}", "high": "{:+.3f}", "p_value": "{:.3f}", "n": "{:.0f}"})

# %% [markdown]
# ## 6. Layer curves
#
# A language model has a vector for each layer. Below, the alignment of $E_L$ with each layer's
# mean-pooled vectors (layer 0 = token embeddings), at relative depth so models of different
# depth share an axis. Picking the best layer after the fact would inflate the score (a maximum
# over noisy values), so the whole curve is shown and the tables above use each model's
# registered layer.

# %%
layer_rows = []
for name in [n for n in reps if family[n] in ("decoder", "encoder")]:
    layers = layerwise(name)
    curve = al.layer_curve(reps[anchor], layers, metrics=("mutual_knn", "cka"), options={"mutual_knn": {"k": K}})
    layer_rows.append(curve.assign(model=name, depth=curve["layer"] / (len(layers) - 1)))
layer_df = pd.concat(layer_rows, ignore_index=True)
viz.layer_curves(layer_df, f"Action ({anchor}) against each layer")

# %%
best = layer_df.loc[layer_df.groupby(["model", "metric"])["score"].idxmax()]
last = layer_df[layer_df["depth"] == 1.0]
pd.DataFrame(
    {
        "best layer": best.set_index(["model", "metric"])["layer"],
        "best score": best.set_index(["model", "metric"])["score"],
        "last-layer score": last.set_index(["model", "metric"])["score"],
    }
).style.format({"best score": "{:.3f}", "last-layer score": "{:.3f}"})

# %% [markdown]
# ## 7. Within each task
#
# The three tasks split the instructions into groups that differ in their verb: a representation
# can align overall just by separating GO-TO from PICK-UP from ESCAPE-FROM. Computing the
# alignment *within* each task's instructions removes that easy part and asks whether the
# finer structure (colours and object types) agrees. Chance is higher here, as each task has fewer
# instructions ($k/(N_\text{task}-1)$, the black ticks). Remember chapter 3: where the agent does
# not solve a task well, its $E_L$ for that task has less reason to be organised.

# %%
tasks = np.array([ins.task for ins in all_instructions()])
groups = {TASK_NAMES[t]: np.flatnonzero(tasks == t) for t in TASK_NAMES}
per_task = al.within_groups(reps, anchor, groups, n_perm=align.n_perm, seed=align.seed, alpha=align.alpha, options={"mutual_knn": {"k": K}})
viz.task_scores(per_task, f"Action ({anchor}) against each representation, within each task")

# %%
per_task.pivot_table(index="model", columns=["metric", "group"], values="score").loc[[n for n in reps if n != anchor]].style.format("{:.2f}")

# %% [markdown]
# ## 8. Our numbers beside the paper's
#
# What the paper reports (from its abstract and a press summary; the full text was not available
# to us): action-grounded embeddings align with decoder-only LLMs and BLIP at **precision@15 =
# 0.70-0.73**, close to the alignment of LLMs among themselves, and *significantly weaker, yet
# non-negligible* alignment with CLIP and BERT. It does not say which "precision@15" it computes
# (neighbourhood overlap or retrieval after a Procrustes map), how many instructions there are,
# how sentences are pooled, or which checkpoints were used; nor does it report controls or nulls.
# Our offline zoo has no LLaMA, DeepSeek, BERT, CLIP or BLIP; its decoders are Gemma-3-270M and
# Qwen2.5-Coder-0.5B, its encoder MiniLM.

# %%
scores = headline.set_index(["model", "metric"])["score"]
decoders = [n for n in reps if family[n] == "decoder"]
encoders = [n for n in reps if family[n] == "encoder"]
lm_pairs = [(a, b) for i, a in enumerate(lms) for b in lms[i + 1:]]
compare = pd.DataFrame(
    {
        "paper (precision@15)": {
            "action vs decoder LLMs": "0.70-0.73",
            "action vs encoders (BERT / our MiniLM)": "weaker",
            "LLM vs LLM": "slightly above 0.70-0.73",
            "action vs bag-of-words": "not reported",
            "action vs untrained agent": "not reported",
            "agent vs agent (seeds)": "not reported",
        },
        "ours: mutual k-NN@15": {
            "action vs decoder LLMs": np.mean([scores[n, "mutual_knn"] for n in decoders]),
            "action vs encoders (BERT / our MiniLM)": np.mean([scores[n, "mutual_knn"] for n in encoders]),
            "LLM vs LLM": np.mean([matrix.loc[a, b] for a, b in lm_pairs]),
            "action vs bag-of-words": scores["bag-of-words", "mutual_knn"],
            "action vs untrained agent": scores["untrained-agent", "mutual_knn"],
            "agent vs agent (seeds)": blocks["agent vs agent (different seeds)"],
        },
        "ours: retrieval@15": {
            "action vs decoder LLMs": np.mean([scores[n, "procrustes_retrieval"] for n in decoders]),
            "action vs encoders (BERT / our MiniLM)": np.mean([scores[n, "procrustes_retrieval"] for n in encoders]),
            "LLM vs LLM": float("nan"),
            "action vs bag-of-words": scores["bag-of-words", "procrustes_retrieval"],
            "action vs untrained agent": scores["untrained-agent", "procrustes_retrieval"],
            "agent vs agent (seeds)": float(np.mean([scores[n, "procrustes_retrieval"] for n in agents if n != anchor])),
        },
    }
)
compare

# %% [markdown]
# What the numbers say, read by code rather than written in advance:

# %%
knn_dec = compare.loc["action vs decoder LLMs", "ours: mutual k-NN@15"]
knn_enc = compare.loc["action vs encoders (BERT / our MiniLM)", "ours: mutual k-NN@15"]
ret_dec = compare.loc["action vs decoder LLMs", "ours: retrieval@15"]
bow = compare.loc["action vs bag-of-words", "ours: mutual k-NN@15"]
untrained = compare.loc["action vs untrained agent", "ours: mutual k-NN@15"]
lines = [
    f"- Mutual k-NN@{K}, action vs our decoders: {knn_dec:.2f} "
    + ("(inside the paper's 0.70-0.73)" if 0.70 <= knn_dec <= 0.73 else ("(above the paper's 0.70-0.73)" if knn_dec > 0.73 else "(below the paper's 0.70-0.73)"))
    + f"; chance is {al.chance('mutual_knn', N, K):.3f}.",
    f"- Retrieval@{K} after a cross-validated Procrustes map, action vs our decoders: {ret_dec:.2f} "
    + ("(inside 0.70-0.73)" if 0.70 <= ret_dec <= 0.73 else ("(above 0.70-0.73)" if ret_dec > 0.73 else "(below 0.70-0.73)"))
    + f"; chance is {al.chance('procrustes_retrieval', N, K):.3f}.",
    f"- Decoders vs encoder (the paper: BERT weaker): {knn_dec:.3f} vs {knn_enc:.3f} under mutual k-NN: "
    + ("decoders higher, as in the paper." if knn_dec > knn_enc + 0.01 else ("encoder higher, unlike the paper." if knn_enc > knn_dec + 0.01 else "no difference larger than 0.01.")),
    f"- Bag-of-words control: {bow:.2f} under mutual k-NN, "
    + ("at least as high as every language model: word identity alone accounts for as much of the action space's neighbourhoods as any language model does." if bow >= max(scores[n, "mutual_knn"] for n in lms) else "below the best language model."),
    f"- Untrained agent: {untrained:.2f} (chance {al.chance('mutual_knn', N, K):.3f}): "
    + ("training, not the architecture, produces the structure." if untrained < 0.5 * knn_dec else "the untrained network already carries much of it."),
]
for name in decoders:
    row = best.set_index(["model", "metric"]).loc[(name, "mutual_knn")]
    lines.append(
        f"- {name}: mutual k-NN@{K} is {scores[name, 'mutual_knn']:.2f} at the last layer and "
        f"{row['score']:.2f} at its best layer ({int(row['layer'])}); the best layer is chosen after the fact, so read it as an upper bound."
    )
print("\n".join(lines))

# %% [markdown]
# How to read this. A number like 0.70 is meaningful only beside its chance level and beside the
# controls: in a small set of template instructions, a bag-of-words encoder already organises the
# sentences much like any model does, so "aligned with an LLM" must be judged against "aligned
# with word identity". Which definition of precision@15 the paper used changes the scale
# entirely: neighbourhood overlap and retrieval after a map have different chance levels and
# different ceilings, so the two columns above are not interchangeable. Where our numbers differ
# from the paper's, the likely causes are the ones this book makes explicit: our agent (its vision
# encoder depends on the profile, chapter 3), our smaller offline models, our instruction set,
# and our pooling (mean of the registered layer; chapter 4 shows how little the decoders'
# last-layer means group synonyms together, and section 6 how the picture changes with depth).

# %% [markdown]
# ## Summary
#
# - Alignment was measured five ways (plus the biased CKA for teaching), each with its chance
#   level, a permutation null, a calibrated score and a bootstrap interval.
# - The model x model matrix gives two ceilings: language models among themselves, and agents of
#   different seeds among themselves.
# - The controls (bag-of-words, semantic features, GloVe, the untrained agent) are on every axis,
#   because in this instruction set word overlap alone creates much of the structure.
# - Layer curves and within-task scores show where in a model, and at what grain, the agreement
#   lives.
#
# ## What's next
#
# This is the last chapter of the rebuilt study. The `full` profile (`make book PROFILE=full`)
# trains more agent seeds and uses 1000 permutations and resamples throughout.

# %% [markdown]
# ## Exercises
#
# ```{exercise} Uncentred cosines
# :label: ex-05-center
#
# Decoder vectors are anisotropic: before centring, every pair of instructions has cosine close to
# 1. Recompute mutual k-NN precision@15 between the action space and each decoder with
# `center=False` (an option of `lva.alignment.measure`). Does the score change, and why could it?
# ```
#
# ```{solution-start} ex-05-center
# :class: dropdown
# ```

# %% tags=["solution"]
pd.DataFrame(
    {
        "centred": {n: al.measure("mutual_knn", reps[anchor], reps[n], k=K) for n in decoders},
        "uncentred": {n: al.measure("mutual_knn", reps[anchor], reps[n], k=K, center=False) for n in decoders},
    }
).style.format("{:.3f}")

# %% [markdown]
# ```{solution-end}
# ```
#
# ```{exercise} The pitfall of in-sample Procrustes
# :label: ex-05-insample
#
# Fit the Procrustes map on *all* instructions and score it on the same ones (`in_sample=True`,
# `n_components=None`) between Qwen and a copy of Gemma whose rows were shuffled (so nothing
# real is shared; both have more dimensions than there are instructions). Compare with the
# cross-validated score and with chance $k/N$.
# ```
#
# ```{solution-start} ex-05-insample
# :class: dropdown
# ```

# %% tags=["solution"]
shuffled = reps["gemma-3-270m"][np.random.default_rng(0).permutation(N)]
in_sample = al.measure("procrustes_retrieval", reps["qwen2.5-coder-0.5b"], shuffled, k=K, in_sample=True, n_components=None)
held_out = al.measure("procrustes_retrieval", reps["qwen2.5-coder-0.5b"], shuffled, k=K, n_components=None)
print(f"in-sample {in_sample:.2f}, cross-validated {held_out:.2f}, chance {al.chance('procrustes_retrieval', N, K):.3f}")

# %% [markdown]
# ```{solution-end}
# ```
