"""Charts of chapter 5: what the representations look like (PCA maps, cosine-similarity
heatmaps, anisotropy)."""

from __future__ import annotations

from typing import Any

import altair as alt
import numpy as np

from .world import TASK_COLORS

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


def similarity_heatmap(vectors: np.ndarray, labels: list[str], title: str, center: bool = False) -> alt.Chart:
    """Cosine similarity between rows of ``vectors`` as an interactive heatmap (rows in the given order)."""
    import pandas as pd

    x = np.asarray(vectors, dtype=np.float64)
    if center:
        x = x - x.mean(axis=0, keepdims=True)
    x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
    sim = x @ x.T
    rows = [
        {"a": labels[i], "b": labels[j], "cosine": round(float(sim[i, j]), 3)}
        for i in range(len(labels))
        for j in range(len(labels))
    ]
    return (
        alt.Chart(pd.DataFrame(rows), title=title)
        .mark_rect()
        .encode(
            x=alt.X("b:N", sort=labels, title=None, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
            y=alt.Y("a:N", sort=labels, title=None, axis=alt.Axis(labelLimit=200)),
            color=alt.Color("cosine:Q", scale=alt.Scale(scheme="blueorange", domain=[-1, 1])),
            tooltip=["a", "b", "cosine"],
        )
        .properties(
            width=360, height=360, description=f"Heatmap of the cosine similarity between {len(labels)} sentences."
        )
    )


def similarity_heatmaps(
    spaces: dict[str, np.ndarray], labels: list[str], title: str, center: bool = False, cell: int = 11
) -> alt.Chart:
    """Cosine similarity between rows, one representation at a time, chosen from a menu (``spaces``:
    name -> ``(n, d)`` vectors, rows labelled by ``labels``; ``center``: subtract each one's mean
    row first). Rows are labelled on the left only (the matrix is symmetric); hover a cell for both
    sentences."""
    import pandas as pd

    frames = []
    for name, vectors in spaces.items():
        if len(vectors) != len(labels):
            raise ValueError(f"{name}: {len(vectors)} rows for {len(labels)} labels")
        x = np.asarray(vectors, dtype=np.float64)
        if center:
            x = x - x.mean(axis=0, keepdims=True)
        x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
        sim = np.round(x @ x.T, 3)
        a, b = np.meshgrid(np.arange(len(labels)), np.arange(len(labels)), indexing="ij")
        frames.append(pd.DataFrame({"representation": name, "i": a.ravel(), "j": b.ravel(), "cosine": sim.ravel()}))
    df = pd.concat(frames, ignore_index=True)
    names = list(spaces)
    pick = alt.param(name="heatmap_of", value=names[0], bind=alt.binding_select(options=names, name="representation "))
    side = cell * len(labels)
    label_expr = "[" + ",".join(f'"{t}"' for t in labels) + "][datum.value]"
    return (
        alt.Chart(df, title=title)
        .transform_filter("datum.representation == heatmap_of")
        .transform_calculate(
            a=label_expr.replace("datum.value", "datum.i"), b=label_expr.replace("datum.value", "datum.j")
        )
        .mark_rect()
        .encode(
            x=alt.X("j:O", title="the same sentences, in the same order", axis=alt.Axis(labels=False, ticks=False)),
            y=alt.Y("i:O", title=None, axis=alt.Axis(labelExpr=label_expr, labelFontSize=9, labelLimit=220)),
            color=alt.Color(
                "cosine:Q",
                scale=alt.Scale(scheme="blueorange", domain=[-1, 1]),
                legend=alt.Legend(orient="top", gradientLength=side // 2),
            ),
            tooltip=[
                "representation:N",
                alt.Tooltip("a:N", title="row"),
                alt.Tooltip("b:N", title="column"),
                "cosine:Q",
            ],
        )
        .add_params(pick)
        .properties(
            width=side,
            height=side,
            description=f"Heatmap of the cosine similarity between {len(labels)} sentences, for the "
            "representation chosen in the menu below it; rows and columns in the same order.",
        )
    )


def pca_maps(maps: dict[str, tuple[np.ndarray, np.ndarray]], columns: int = 3, size: int = 160) -> alt.FacetChart:
    """One 2-D PCA map per representation, faceted, with a menu choosing the colouring (task,
    colour or object type). ``maps``: name -> (``(n, 2)`` scores, explained-variance ratios), rows
    in :func:`lva.instructions.all_instructions` order (see :func:`lva.embeddings.pca`)."""
    import json

    import pandas as pd

    from lva.instructions import TASK_NAMES, all_instructions

    ins = all_instructions()
    frames = []
    for name, (scores, ratio) in maps.items():
        if len(scores) != len(ins):
            raise ValueError(f"{name}: {len(scores)} rows, expected one per instruction ({len(ins)})")
        title = f"{name} ({ratio[0] + ratio[1]:.0%} of variance)"
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
    groups = {key: [v for v in LABEL_COLORS if v in set(df[key])] for key in ("task", "colour", "object type")}
    order = list(dict.fromkeys(df["map"]))
    picked = alt.selection_point(name="picked", fields=["instruction"], on="click", clear="dblclick", empty=False)
    by = alt.param(
        name="colour_by",
        value="task",
        bind=alt.binding_select(options=["task", "colour", "object type"], name="colour by "),
    )
    chart = (
        alt.Chart(df)
        .transform_calculate(
            label="colour_by == 'task' ? datum.task : colour_by == 'colour' ? datum.colour : datum['object type']"
        )
        .mark_circle(opacity=0.75)
        .encode(
            size=alt.when(picked).then(alt.value(160)).otherwise(alt.value(22)),
            stroke=alt.when(picked).then(alt.value("black")).otherwise(alt.value("transparent")),
            x=alt.X("PC1:Q", axis=alt.Axis(labels=False, ticks=False), title="PC1"),
            y=alt.Y("PC2:Q", axis=alt.Axis(labels=False, ticks=False), title="PC2"),
            color=alt.Color(
                "label:N",
                scale=alt.Scale(domain=list(LABEL_COLORS), range=list(LABEL_COLORS.values())),
                legend=alt.Legend(
                    title=None,
                    orient="top",
                    columns=7,
                    symbolSize=60,
                    values=alt.ExprRef(
                        "colour_by == 'task' ? "
                        + json.dumps(groups["task"])
                        + " : colour_by == 'colour' ? "
                        + json.dumps(groups["colour"])
                        + " : "
                        + json.dumps(groups["object type"])
                    ),
                ),
            ),
            tooltip=["instruction", "task", "colour", "object type"],
        )
        .properties(width=size, height=size)
        .add_params(by, picked)
    )
    return (
        chart.facet(
            facet=alt.Facet("map:N", sort=order, title=None, header=alt.Header(labelFontSize=10, labelLimit=size + 30)),
            columns=columns,
        )
        .resolve_scale(x="independent", y="independent")
        .properties(
            title="Every instruction, first two principal components of each representation",
            description=f"{len(maps)} scatter plots, one per representation, of the {len(ins)} instructions on "
            "their first two principal components, coloured by task, colour or object type (menu below "
            "the chart).",
        )
    )


def anisotropy_chart(table: Any) -> alt.Chart:
    """Mean pairwise cosine per representation, before and after centring (grouped bars).

    ``table``: a DataFrame indexed by representation with columns ``raw``, ``centred`` and
    ``family``."""
    import pandas as pd

    df = table.reset_index(names="representation")
    long = df.melt(
        id_vars=["representation", "family"],
        value_vars=["raw", "centred"],
        var_name="vectors",
        value_name="mean cosine",
    )
    order = list(df["representation"])
    return (
        alt.Chart(pd.DataFrame(long), title="Anisotropy: mean cosine between different instructions")
        .mark_bar()
        .encode(
            y=alt.Y("representation:N", sort=order, title=None),
            x=alt.X("mean cosine:Q", scale=alt.Scale(domain=[-0.1, 1])),
            yOffset=alt.YOffset("vectors:N", sort=["raw", "centred"]),
            color=alt.Color(
                "vectors:N",
                sort=["raw", "centred"],
                scale=alt.Scale(range=["#9e9e9e", "#4c78a8"]),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=["representation", "family", "vectors", alt.Tooltip("mean cosine:Q", format=".3f")],
        )
        .properties(
            width=420,
            height=alt.Step(9),
            description="Grouped bars: the mean cosine between different "
            "instructions for every representation, before (raw) and after centring.",
        )
    )
