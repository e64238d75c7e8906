"""Figures for the book: an offline altair renderer and the grid-world pictures of chapter 1.

Charts render in the built book with the vega bundle served from ``book/_static`` (no CDN): the
renderer emits ``vegaEmbed(<previous element>, SPEC)`` with no random ids, so a re-run gives the
same HTML. In JupyterLab the same output carries altair's own mimetype and renders natively.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np

RENDERER = "lva-offline"
BUNDLE_NAME = "vega-bundle.js"

#: Colours of the three tasks, used by every chapter.
TASK_COLORS = {"goto": "#4c78a8", "pickup": "#f58518", "escape": "#54a24b"}


def _offline_renderer(spec: dict[str, Any], **_: Any) -> dict[str, Any]:
    payload = json.dumps(spec, sort_keys=True, separators=(",", ":")).replace("</", "<\\/")
    html = (
        '<div class="lva-vega"></div>'
        f'<script>vegaEmbed(document.currentScript.previousElementSibling, {payload}, {{"actions": false}});</script>'
    )
    return {"text/html": html, "text/plain": f"<altair chart: {spec.get('title', 'untitled')}>"}


def setup_charts() -> str:
    """Choose the altair renderer: offline (vega served by the book) in a book build, else altair's default.

    The book runner sets ``LVA_BOOK=1``; in JupyterLab, altair's default renderer draws natively.
    Returns the renderer's name.
    """
    import os

    if RENDERER not in alt.renderers.names():
        alt.renderers.register(RENDERER, _offline_renderer)
    name = RENDERER if os.environ.get("LVA_BOOK") == "1" else "default"
    alt.renderers.enable(name)
    alt.data_transformers.disable_max_rows()
    return name


def write_vega_bundle(static_dir: str | Path) -> Path:
    """Write vega + vega-lite + vega-embed (from ``vl-convert``) into the book's static folder."""
    import vl_convert

    from .io import atomic_open

    path = Path(static_dir) / BUNDLE_NAME
    text = "(function(){\n" + vl_convert.javascript_bundle() + "\n})();\n"
    if not path.exists() or path.read_text() != text:
        with atomic_open(path, "w") as fh:
            fh.write(text)
    return path


# ---------------------------------------------------------------------- grid-world pictures
def show_images(images: list[np.ndarray], titles: list[str], suptitle: str | None = None, width: float = 3.0) -> Any:
    """A row of RGB images with titles (matplotlib figure)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(width * len(images), width * 1.1), squeeze=False)
    for ax, img, title in zip(axes[0], images, titles):
        ax.imshow(img)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return fig


def draw_path(ax: Any, cells: list[tuple[int, int]], tile: int, color: str = "white") -> None:
    """Overlay a path of grid cells (x, y) on an ``imshow`` of a full render with ``tile`` px cells."""
    xs = [(x + 0.5) * tile for x, _ in cells]
    ys = [(y + 0.5) * tile for _, y in cells]
    ax.plot(xs, ys, "-", color=color, lw=3, alpha=0.9, solid_capstyle="round")
    ax.plot(xs[:1], ys[:1], "o", color=color, ms=9)
    ax.plot(xs[-1:], ys[-1:], "*", color="gold", ms=16, mec="black")


def task_examples(env_config: Any, seed: int = 0, tile: int = 24) -> Any:
    """One seeded episode per task (seeds ``seed``, ``seed + 1``, ...): the full room (field of view highlighted) beside the agent's view."""
    import matplotlib.pyplot as plt

    from .env import make_env
    from .instructions import TASK_NAMES, TASKS

    fig, axes = plt.subplots(len(TASKS), 2, figsize=(6.4, 3.2 * len(TASKS)), gridspec_kw={"width_ratios": [8, 7]})
    for k, (row, task) in enumerate(zip(axes, TASKS)):
        env = make_env(env_config, task=task)
        env.reset(seed=seed + k)
        row[0].imshow(env.full_rgb(tile_size=tile))
        row[0].set_title(f"{TASK_NAMES[task]}: “{env.mission}”", fontsize=10, loc="left")
        row[1].imshow(env.agent_view_rgb(tile))
        row[1].set_title("agent's view (7 x 7)", fontsize=10)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    plt.close(fig)
    return fig


def expert_path(env_config: Any, instruction: str, seed: int = 0, tile: int = 32) -> Any:
    """The expert's plan for one instruction, drawn on the room, with the start and end views."""
    import matplotlib.pyplot as plt

    from .env import ACTION_NAMES, make_env
    from .expert import plan

    env = make_env(env_config)
    env.reset(seed=seed, options={"instruction": instruction})
    start_full, start_view = env.full_rgb(tile_size=tile, highlight=False), env.agent_view_rgb(tile)
    cells = [tuple(int(v) for v in env.agent_pos)]
    actions = plan(env) or []
    for action in actions:
        env.step(action)
        cell = tuple(int(v) for v in env.agent_pos)
        if cell != cells[-1]:
            cells.append(cell)
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), gridspec_kw={"width_ratios": [8, 7, 7]})
    axes[0].imshow(start_full)
    draw_path(axes[0], cells, tile)
    axes[0].set_title(f"“{instruction}”: {len(actions)} actions", fontsize=10, loc="left")
    axes[1].imshow(start_view)
    axes[1].set_title("agent's view at the start", fontsize=10)
    axes[2].imshow(env.agent_view_rgb(tile))
    axes[2].set_title("agent's view at the end", fontsize=10)
    for ax in axes:
        ax.axis("off")
    fig.text(0.01, 0.01, "actions: " + ", ".join(ACTION_NAMES[a] for a in actions), fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    plt.close(fig)
    return fig


def vocabulary_chart() -> alt.Chart:
    """How often each word occurs over the instruction list, coloured by its role."""
    import pandas as pd

    from .instructions import ALL_TYPES, COLORS, all_instructions

    colors, types = set(COLORS), set(ALL_TYPES)
    counts: dict[str, int] = {}
    for ins in all_instructions():
        for word in ins.text.split():
            counts[word] = counts.get(word, 0) + 1

    def role(word: str) -> str:
        return "colour" if word in colors else "object type" if word in types else "article" if word == "the" else "verb phrase"

    df = pd.DataFrame([{"word": w, "count": c, "role": role(w)} for w, c in sorted(counts.items())])
    return (
        alt.Chart(df, title="Words of the instruction language")
        .mark_bar()
        .encode(
            x=alt.X("word:N", sort=alt.EncodingSortField("count", order="descending"), title=None),
            y=alt.Y("count:Q", title="occurrences in the instruction list"),
            color=alt.Color("role:N", title=None, legend=alt.Legend(orient="top")),
            tooltip=["word", "count", "role"],
        )
        .properties(width=600, height=220)
    )


def length_chart(lengths: np.ndarray, tasks: np.ndarray) -> alt.Chart:
    """Distribution of expert episode lengths, one histogram per task."""
    import pandas as pd

    from .instructions import TASK_NAMES, TASKS

    df = pd.DataFrame({"steps": lengths.astype(int), "task": [TASK_NAMES[TASKS[t]] for t in tasks]})
    counts = df.groupby(["task", "steps"]).size().reset_index(name="episodes")
    names = [TASK_NAMES[t] for t in TASKS]
    return (
        alt.Chart(counts, title="Expert episode length")
        .mark_bar()
        .encode(
            x=alt.X("steps:O", title="actions to success"),
            y=alt.Y("episodes:Q", title="episodes"),
            color=alt.Color("task:N", scale=alt.Scale(domain=names, range=[TASK_COLORS[t] for t in TASKS]), legend=None),
            column=alt.Column("task:N", sort=names, title=None),
            tooltip=["task", "steps", "episodes"],
        )
        .properties(width=180, height=180)
    )


def action_chart(actions: np.ndarray, tasks: np.ndarray) -> alt.Chart:
    """Share of each action in the demonstrations, per task."""
    import pandas as pd

    from .env import ACTION_NAMES
    from .instructions import TASK_NAMES, TASKS

    df = pd.DataFrame({"action": [ACTION_NAMES[a] for a in actions], "task": [TASK_NAMES[TASKS[t]] for t in tasks]})
    share = df.groupby(["task", "action"]).size().reset_index(name="n")
    share["share"] = share["n"] / share.groupby("task")["n"].transform("sum")
    return (
        alt.Chart(share, title="Which actions the expert takes")
        .mark_bar()
        .encode(
            y=alt.Y("task:N", sort=[TASK_NAMES[t] for t in TASKS], title=None),
            x=alt.X("share:Q", stack="normalize", axis=alt.Axis(format="%"), title="share of actions"),
            color=alt.Color(
                "action:N", sort=list(ACTION_NAMES), scale=alt.Scale(domain=list(ACTION_NAMES)), legend=alt.Legend(orient="bottom", title=None)
            ),
            tooltip=["task", "action", alt.Tooltip("share:Q", format=".1%"), "n"],
        )
        .properties(width=540, height=120)
    )


def architecture_diagram(counts: dict[str, int], embed_dim: int = 128, token_dim: int = 100, vision: str = "grid") -> Any:
    """A box-and-arrow drawing of the agent, with the parameter count of each part."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(10, 4.6))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 4.6)
    ax.axis("off")
    view = "symbolic 7x7 view" if vision == "grid" else "RGB 56x56 view"
    cnn = "residual CNN\n(from scratch)" if vision == "grid" else "ImageNet CNN (frozen)\n+ 1x1 conv, res. block"
    boxes = {
        "words": (0.1, 3.3, f"instruction\n“go to the red ball”", "#eeeeee"),
        "tok": (2.1, 3.3, f"{token_dim}-d token +\nposition embeddings", "#c6dbef"),
        "tf": (4.1, 3.3, "1 transformer block\n(self-attention + MLP)", "#c6dbef"),
        "el": (6.1, 3.3, f"mean pool, linear\nE_L ({embed_dim}-d)", "#6baed6"),
        "view": (0.1, 0.5, view, "#eeeeee"),
        "cnn": (2.1, 0.5, cnn, "#c7e9c0"),
        "film": (6.1, 1.9, "match map + FiLM\n(E_L scores cells,\nscales, shifts)", "#fdd0a2"),
        "gru": (8.1, 1.9, "GRU memory\n+ policy: 6 actions", "#fdae6b"),
    }
    for x, y, text, color in boxes.values():
        ax.add_patch(FancyBboxPatch((x, y), 1.8, 0.9, boxstyle="round,pad=0.05", fc=color, ec="#555555"))
        ax.text(x + 0.9, y + 0.45, text, ha="center", va="center", fontsize=8.5)
    arrows = [("words", "tok"), ("tok", "tf"), ("tf", "el"), ("view", "cnn"), ("cnn", "film"), ("film", "gru")]
    for a, b in arrows:
        xa, ya = boxes[a][0] + 1.85, boxes[a][1] + 0.45
        xb, yb = boxes[b][0] - 0.05, boxes[b][1] + 0.45
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1.4})
    ax.annotate("", xy=(7.0, 2.85), xytext=(7.0, 3.25), arrowprops={"arrowstyle": "->", "color": "#333333", "lw": 1.4})
    ax.text(6.1 + 0.9, 4.4, "read out for chapters 4-5", ha="center", fontsize=8.5, color="#08519c", style="italic")
    notes = [
        (3.05, 2.9, f"language: {counts['language']:,}"),
        (3.05, 0.15, f"vision: {counts['vision']:,}"),
        (7.0, 1.55, f"fusion: {counts['fusion']:,}"),
        (9.0, 1.25, f"memory + policy: {counts['memory'] + counts['policy']:,}"),
    ]
    for x, y, text in notes:
        ax.text(x, y, text + " params", ha="center", fontsize=8, color="#444444")
    ax.set_title(f"The agent: {counts['total']:,} trainable parameters", fontsize=11)
    plt.close(fig)
    return fig


def similarity_heatmap(vectors: np.ndarray, labels: list[str], title: str, center: bool = False) -> alt.Chart:
    """Cosine similarity between rows of ``vectors`` as an interactive heatmap (rows in the given order)."""
    import pandas as pd

    x = np.asarray(vectors, dtype=np.float64)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    sim = x @ x.T
    rows = [{"a": labels[i], "b": labels[j], "cosine": round(float(sim[i, j]), 3)} for i in range(len(labels)) for j in range(len(labels))]
    return (
        alt.Chart(pd.DataFrame(rows), title=title)
        .mark_rect()
        .encode(
            x=alt.X("b:N", sort=labels, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
            y=alt.Y("a:N", sort=labels, title=None, axis=alt.Axis(labelLimit=200)),
            color=alt.Color("cosine:Q", scale=alt.Scale(scheme="blueorange", domain=[-1, 1])),
            tooltip=["a", "b", "cosine"],
        )
        .properties(width=360, height=360)
    )


def training_curves(histories: dict[str, Any]) -> alt.Chart:
    """Training and validation loss, validation accuracy and success per task against epochs, per run."""
    import pandas as pd

    from .instructions import TASK_NAMES

    rows = []
    for run, h in histories.items():
        for k, epoch in enumerate(h.epoch):
            rows.append({"run": run, "epoch": epoch, "metric": "loss", "series": "train", "value": h.train_loss[k]})
            rows.append({"run": run, "epoch": epoch, "metric": "loss", "series": "validation", "value": h.val_loss[k]})
            rows.append({"run": run, "epoch": epoch, "metric": "validation accuracy", "series": "validation", "value": h.val_accuracy[k]})
            for task, value in h.success[k].items():
                rows.append({"run": run, "epoch": epoch, "metric": "success on fresh episodes", "series": TASK_NAMES[task], "value": value})
    df = pd.DataFrame(rows)
    base = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("epoch:Q", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=None),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")),
        strokeDash=alt.StrokeDash("run:N", title="run") if len(histories) > 1 else alt.value([1, 0]),
        tooltip=["run", "epoch", "series", alt.Tooltip("value:Q", format=".3f")],
    )
    return (
        base.properties(width=165, height=160)
        .facet(column=alt.Column("metric:N", title=None, sort=["loss", "validation accuracy", "success on fresh episodes"]))
        .resolve_scale(y="independent")
        .properties(title="Behavioural cloning")
    )


def filmstrip(record: dict[str, Any], max_frames: int = 8) -> Any:
    """Frames of one recorded episode (see :func:`lva.evaluate.rollout` with ``record=True``)."""
    import matplotlib.pyplot as plt

    from .env import ACTION_NAMES

    frames, actions = record["frames"], record["actions"]
    idx = np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)
    fig, axes = plt.subplots(1, len(idx), figsize=(1.7 * len(idx), 2.2), squeeze=False)
    for ax, i in zip(axes[0], idx):
        ax.imshow(frames[i])
        ax.set_title(f"t={i}" + (f" {ACTION_NAMES[actions[i]]}" if i < len(actions) else " end"), fontsize=8)
        ax.axis("off")
    verdict = "success" if record["success"] else "failure"
    fig.suptitle(f"“{record['instruction']}”: {verdict} in {record['steps']} steps (expert: {record['expert_steps']})", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


# ---------------------------------------------------------------------- chapter 4: embeddings

#: Colours of the labels a representation map can be coloured by: tasks, MiniGrid colours, object types.
LABEL_COLORS = {
    "GO-TO": TASK_COLORS["goto"],
    "PICK-UP": TASK_COLORS["pickup"],
    "ESCAPE-FROM": TASK_COLORS["escape"],
    "red": "#e41a1c",
    "green": "#2ca02c",
    "blue": "#1f4fd6",
    "purple": "#8e44ad",
    "yellow": "#e6b800",
    "grey": "#8c8c8c",
    "ball": "#e377c2",
    "box": "#8c564b",
    "key": "#17becf",
    "door": "#222222",
}


def pca_maps(maps: dict[str, tuple[np.ndarray, np.ndarray]], columns: int = 4, size: int = 170) -> alt.Chart:
    """One 2-D PCA map per representation, faceted, with a menu choosing the colouring (task,
    colour or object type). ``maps``: name -> (``(n, 2)`` scores, explained-variance ratios), rows
    in :func:`lva.instructions.all_instructions` order (see :func:`lva.embeddings.pca`)."""
    import pandas as pd

    from .instructions import TASK_NAMES, all_instructions

    ins = all_instructions()
    frames = []
    for name, (scores, ratio) in maps.items():
        if len(scores) != len(ins):
            raise ValueError(f"{name}: {len(scores)} rows, expected one per instruction ({len(ins)})")
        title = f"{name} ({ratio[0]:.0%} + {ratio[1]:.0%} of variance)"
        frames.append(
            pd.DataFrame(
                {
                    "map": title,
                    "PC1": np.round(scores[:, 0], 4),
                    "PC2": np.round(scores[:, 1], 4),
                    "instruction": [i.text for i in ins],
                    "task": [TASK_NAMES[i.task] for i in ins],
                    "colour": [i.color for i in ins],
                    "object type": [i.obj_type for i in ins],
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    order = list(dict.fromkeys(df["map"]))
    by = alt.param(
        name="colour_by",
        value="task",
        bind=alt.binding_select(options=["task", "colour", "object type"], name="colour by "),
    )
    chart = (
        alt.Chart(df)
        .transform_calculate(label="colour_by == 'task' ? datum.task : colour_by == 'colour' ? datum.colour : datum['object type']")
        .mark_circle(size=22, opacity=0.75)
        .encode(
            x=alt.X("PC1:Q", axis=alt.Axis(labels=False, ticks=False), title="PC1"),
            y=alt.Y("PC2:Q", axis=alt.Axis(labels=False, ticks=False), title="PC2"),
            color=alt.Color(
                "label:N",
                scale=alt.Scale(domain=list(LABEL_COLORS), range=list(LABEL_COLORS.values())),
                legend=alt.Legend(title="task / colour / object type", columns=1),
            ),
            tooltip=["instruction", "task", "colour", "object type"],
        )
        .properties(width=size, height=size)
        .add_params(by)
    )
    return (
        chart.facet(facet=alt.Facet("map:N", sort=order, title=None, header=alt.Header(labelFontSize=10)), columns=columns)
        .resolve_scale(x="independent", y="independent")
        .properties(title="Every instruction, first two principal components of each representation")
    )


def anisotropy_chart(table: Any) -> alt.Chart:
    """Mean pairwise cosine per representation, before and after centring (grouped bars).

    ``table``: a DataFrame indexed by representation with columns ``raw``, ``centred`` and
    ``family``."""
    import pandas as pd

    df = table.reset_index(names="representation")
    long = df.melt(id_vars=["representation", "family"], value_vars=["raw", "centred"], var_name="vectors", value_name="mean cosine")
    order = list(df["representation"])
    return (
        alt.Chart(pd.DataFrame(long), title="Anisotropy: mean cosine between different instructions")
        .mark_bar()
        .encode(
            y=alt.Y("representation:N", sort=order, title=None),
            x=alt.X("mean cosine:Q", scale=alt.Scale(domain=[-0.1, 1])),
            yOffset=alt.YOffset("vectors:N", sort=["raw", "centred"]),
            color=alt.Color("vectors:N", sort=["raw", "centred"], scale=alt.Scale(range=["#9e9e9e", "#4c78a8"]), legend=alt.Legend(orient="top", title=None)),
            tooltip=["representation", "family", "vectors", alt.Tooltip("mean cosine:Q", format=".3f")],
        )
        .properties(width=420, height=alt.Step(9))
    )


# ---------------------------------------------------------------------- chapter 5: alignment
def alignment_matrix(matrix: Any, title: str, groups: dict[str, str] | None = None) -> alt.Chart:
    """Square model x model score table (a pandas DataFrame) as an interactive heatmap with the
    value printed in each cell; ``groups`` maps a name to its family, shown in the tooltip."""
    import pandas as pd

    names = list(matrix.index)
    rows = [{"a": a, "b": b, "score": round(float(matrix.loc[a, b]), 3),
             "family a": (groups or {}).get(a, ""), "family b": (groups or {}).get(b, "")}
            for a in names for b in names]
    base = alt.Chart(pd.DataFrame(rows), title=title).encode(
        x=alt.X("b:N", sort=names, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
        y=alt.Y("a:N", sort=names, title=None, axis=alt.Axis(labelLimit=200)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("score:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
        tooltip=["a", "family a", "b", "family b", alt.Tooltip("score:Q", format=".3f")],
    )
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("score:Q", format=".2f"),
        color=alt.condition("datum.score > 0.55", alt.value("black"), alt.value("white")),
    )
    return (cells + text).properties(width=420, height=420)


def knn_curves(curves: Any, title: str, highlight: tuple[str, ...] = ()) -> alt.Chart:
    """Mutual k-NN precision against k (long DataFrame from ``lva.alignment.knn_curve``), one line
    per model, with the chance level k/(N-1) dashed; ``highlight`` names are drawn thicker."""
    curves = curves.assign(kind=["control" if m in highlight else "model" for m in curves["model"]])
    lines = alt.Chart(curves).mark_line(point=True).encode(
        x=alt.X("k:Q", scale=alt.Scale(type="log"), title="k (neighbours)"),
        y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1]), title="mutual k-NN precision"),
        color=alt.Color("model:N", legend=alt.Legend(orient="right")),
        strokeDash=alt.StrokeDash("kind:N", title="kind", sort=["model", "control"]),
        tooltip=["model", "k", alt.Tooltip("precision:Q", format=".3f"),
                 alt.Tooltip("chance:Q", format=".3f")],
    )
    chance = alt.Chart(curves.drop_duplicates("k")).mark_line(color="black", strokeDash=[2, 2]).encode(
        x="k:Q", y="chance:Q", tooltip=[alt.Tooltip("chance:Q", format=".3f")])
    return (lines + chance).properties(width=460, height=300, title=title)


def layer_curves(curves: Any, title: str) -> alt.Chart:
    """Score against relative depth (layer / last layer) per model, one panel per metric (long
    DataFrame with columns model, layer, depth, metric, score)."""
    base = alt.Chart(curves).mark_line(point=True).encode(
        x=alt.X("depth:Q", title="relative depth (0 = token embeddings, 1 = last layer)"),
        y=alt.Y("score:Q", title=None),
        color=alt.Color("model:N", legend=alt.Legend(orient="bottom")),
        tooltip=["model", "layer", "metric", alt.Tooltip("score:Q", format=".3f")],
    )
    return base.properties(width=260, height=200).facet(
        column=alt.Column("metric:N", title=None)).resolve_scale(y="independent").properties(
        title=title)


def task_scores(scores: Any, title: str) -> alt.Chart:
    """Per-task scores (long DataFrame: group, model, metric, score, chance): bars per model with
    the chance level as a tick, one row of panels per metric."""
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("model:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
        y=alt.Y("score:Q", title=None),
        color=alt.Color("model:N", legend=None),
        tooltip=["group", "model", "metric", alt.Tooltip("score:Q", format=".3f"),
                 alt.Tooltip("chance:Q", format=".3f"), alt.Tooltip("p:Q", format=".3f")],
    )
    ticks = alt.Chart().mark_tick(color="black", thickness=2, size=18).encode(
        x="model:N", y="chance:Q")
    return alt.layer(bars, ticks, data=scores).properties(width=170, height=150).facet(
        column=alt.Column("group:N", title=None), row=alt.Row("metric:N", title=None)
    ).resolve_scale(y="independent").properties(title=title)


METRIC_LABELS = {"mutual_knn": "mutual k-NN@k", "procrustes_retrieval": "retrieval@k (Procrustes)",
                 "cka": "debiased CKA", "rsa": "RSA (Spearman)"}


def specification_curve(curve: Any, title: str, band: tuple[float, float] | None = (0.70, 0.73)) -> alt.Chart:
    """A specification curve (Simonsohn et al. 2020) per metric: every specification's score,
    sorted, coloured by model, filled where p < 0.05; below it, an indicator panel marks which
    model, pooling, layer choice and normalisation each specification used. ``band`` shades the
    paper's range on the precision@k metrics; the chance level is the dashed line."""
    import pandas as pd

    panels = []
    for metric, g in curve.groupby("metric", sort=False):
        g = g.sort_values(["score", "model", "pooling"]).reset_index(drop=True)
        g = g.assign(rank=range(len(g)), significant=["p < 0.05" if p < 0.05 else "p >= 0.05" for p in g["p"]])
        x = alt.X("rank:Q", title=None, axis=alt.Axis(labels=False, ticks=False, grid=False),
                  scale=alt.Scale(domain=[-1, len(g)]))
        points = alt.Chart(g).mark_point(size=28).encode(
            x=x, y=alt.Y("score:Q", title=METRIC_LABELS.get(metric, metric)),
            color=alt.Color("model:N", legend=alt.Legend(orient="top", title=None)),
            fill=alt.condition("datum.p < 0.05", alt.Color("model:N", legend=None), alt.value("white")),
            tooltip=["model", "pooling", "layer", "layers read", "normalisation",
                     alt.Tooltip("score:Q", format=".3f"), alt.Tooltip("p:Q", format=".3f"), "significant"])
        layers = [points]
        if band is not None and metric in ("mutual_knn", "procrustes_retrieval"):
            layers.insert(0, alt.Chart(pd.DataFrame({"low": [band[0]], "high": [band[1]]})).mark_rect(
                color="orange", opacity=0.25).encode(y="low:Q", y2="high:Q"))
        layers.append(alt.Chart(pd.DataFrame({"chance": [float(g["chance"].iloc[0])]})).mark_rule(
            color="black", strokeDash=[3, 3]).encode(y="chance:Q"))
        marks = pd.concat([pd.DataFrame({"rank": g["rank"], "model": g["model"],
                                         "choice": f"{dim}: " + g[col].astype(str)})
                           for dim, col in (("model", "model"), ("pooling", "pooling"), ("layer", "layer"),
                                            ("norm.", "normalisation"))])
        order = list(dict.fromkeys(marks["choice"]))
        indicator = alt.Chart(marks).mark_tick(thickness=2, size=9).encode(
            x=alt.X("rank:Q", title="specifications, sorted by score", axis=alt.Axis(labels=False, ticks=False),
                    scale=alt.Scale(domain=[-1, len(g)])),
            y=alt.Y("choice:N", title=None, sort=order, axis=alt.Axis(labelLimit=160)),
            color=alt.Color("model:N", legend=None))
        panels.append(alt.vconcat(alt.layer(*layers).properties(width=300, height=170),
                                  indicator.properties(width=300, height=11 * len(order)), spacing=2))
    rows = [alt.hconcat(*panels[i:i + 2]) for i in range(0, len(panels), 2)]
    return alt.vconcat(*rows).properties(title=title).resolve_scale(color="shared")


def anatomy_chart(table: Any, title: str) -> alt.Chart:
    """Share of each representation's k nearest neighbours that share each attribute with the
    instruction (a DataFrame from ``lva.robustness.neighbour_anatomy``; its ``chance`` row is
    the last row of the heatmap)."""
    long = table.reset_index(names="representation").melt("representation", var_name="shares", value_name="share")
    base = alt.Chart(long, title=title).encode(
        x=alt.X("shares:N", sort=list(table.columns), title="neighbours with the same ...",
                axis=alt.Axis(labelAngle=0)),
        y=alt.Y("representation:N", sort=list(table.index), title=None, axis=alt.Axis(labelLimit=220)))
    cells = base.mark_rect().encode(color=alt.Color("share:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
                                    tooltip=["representation", "shares", alt.Tooltip("share:Q", format=".3f")])
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("share:Q", format=".2f"),
        color=alt.condition("datum.share > 0.55", alt.value("black"), alt.value("white")))
    return (cells + text).properties(width=380, height=17 * len(table))


def scale_chart(table: Any, title: str) -> alt.Chart:
    """Score against parameter count (log axis), one panel per metric, one line per layer choice
    (a DataFrame from ``lva.robustness.scale_table``)."""
    base = alt.Chart(table).mark_line(point=alt.OverlayMarkDef(size=60)).encode(
        x=alt.X("params:Q", scale=alt.Scale(type="log"), title="parameters"),
        y=alt.Y("score:Q", title=None),
        color=alt.Color("layer:N", title="layer"),
        detail="series:N",
        tooltip=["model", "series", "metric", "layer", alt.Tooltip("params:Q", format=".3s"),
                 alt.Tooltip("score:Q", format=".3f"), alt.Tooltip("p:Q", format=".3f")])
    return base.properties(width=200, height=160).facet(column=alt.Column("metric:N", title=None)).resolve_scale(
        y="independent").properties(title=title)


def seed_chart(table: Any, title: str) -> alt.Chart:
    """Each representation's score against every trained agent seed (points) and their range
    (a rule), from ``lva.robustness.seed_spread``."""
    import pandas as pd

    seeds = [c for c in table.columns if str(c).startswith("agent-seed")]
    long = table[seeds].reset_index(names="representation").melt(
        "representation", var_name="against", value_name="score").dropna()
    ranges = table[["min", "max"]].astype(float).reset_index(names="representation")
    order = list(table.index)
    y = alt.Y("representation:N", sort=order, title=None, axis=alt.Axis(labelLimit=220))
    rule = alt.Chart(ranges).mark_rule(color="grey", strokeWidth=3).encode(
        x=alt.X("min:Q", title="mutual k-NN@k against each trained agent"), x2="max:Q", y=y)
    dots = alt.Chart(pd.DataFrame(long)).mark_point(filled=True, size=50).encode(
        x="score:Q", y=y, color=alt.Color("against:N", title="agent"),
        tooltip=["representation", "against", alt.Tooltip("score:Q", format=".3f")])
    return (rule + dots).properties(width=420, height=18 * len(order), title=title)
