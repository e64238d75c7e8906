"""Figures of the vision leg: the vision-grounded encoder's training and retrievals (chapter 4)
and the language-vision-action triangle (chapter 6). Altair charts render like every
chart of :mod:`lva.viz` (call ``lva.viz.setup_charts()`` first); pictures are matplotlib figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

#: Colours of the triangle's kinds of pair.
PAIR_COLORS = {
    "action–vision": "#b279a2",
    "action–language": "#4c78a8",
    "vision–language": "#f58518",
    "action–action (ceiling)": "#222222",
    "vision–vision (ceiling)": "#222222",
    "action–control": "#9d9d9d",
    "vision–control": "#c7c7c7",
}


def ground_curves(histories: Mapping[str, Any]) -> alt.HConcatChart:
    """Contrastive loss (training, held out), held-out text -> image top-1 retrieval and the
    learned temperature against epochs, one line style per run (``lva.grounding.GroundHistory``)."""
    from .world import curve_panels

    rows = []
    for run, h in histories.items():
        for i, epoch in enumerate(h.epoch):
            rows += [
                {"run": run, "epoch": epoch, "metric": "contrastive loss", "series": "train", "value": h.train_loss[i]},
                {
                    "run": run,
                    "epoch": epoch,
                    "metric": "contrastive loss",
                    "series": "held out",
                    "value": h.val_loss[i],
                },
                {
                    "run": run,
                    "epoch": epoch,
                    "metric": "held-out top-1 retrieval",
                    "series": "held out",
                    "value": h.val_top1[i],
                },
                {"run": run, "epoch": epoch, "metric": "temperature", "series": "learned", "value": h.temperature[i]},
            ]
    panels = [
        ("contrastive loss", "loss on", {"train": "#4c78a8", "held out": "#e45756"}),
        ("held-out top-1 retrieval", "", None),
        ("temperature", "", None),
    ]
    return curve_panels(
        pd.DataFrame(rows),
        panels,
        "Contrastive training of the vision-grounded encoder",
        "Line charts against epochs, one line style per seed: training and held-out contrastive "
        "loss, held-out text-to-image top-1 retrieval, and the learned temperature.",
    )


def retrieval_chart(tables: Mapping[str, pd.DataFrame], title: str) -> alt.Chart:
    """Top-k text -> image retrieval per task and overall for each run (``lva.grounding.retrieval``
    tables), bars, with each k's chance as a black tick."""
    rows = []
    for run, table in tables.items():
        for task, r in table.iterrows():
            rows += [
                {"run": run, "task": task, "k": col, "accuracy": r[col], "chance": r[f"chance {col}"]}
                for col in table.columns
                if str(col).startswith("top-")
            ]
    df = pd.DataFrame(rows)
    x = alt.X("run:N", title=None)
    bars = (
        alt.Chart(df)
        .mark_bar()
        .encode(
            x=x,
            y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("run:N", legend=None),
            tooltip=[
                "run",
                "task",
                "k",
                alt.Tooltip("accuracy:Q", format=".1%"),
                alt.Tooltip("chance:Q", format=".1%"),
            ],
        )
    )
    ticks = alt.Chart(df).mark_tick(color="black", thickness=2).encode(x=x, y="chance:Q")
    return (
        (bars + ticks)
        .properties(width=60, height=150)
        .facet(
            column=alt.Column("task:N", title=None, sort=list(dict.fromkeys(df["task"]))),
            row=alt.Row("k:N", title=None),
        )
        .properties(
            title=title,
            description=f"Bar charts of top-k retrieval accuracy per run, one panel per task and k, "
            f"chance as a black tick. {title}.",
        )
    )


def retrieved_examples(
    queries: Sequence[str],
    ranked: Sequence[Sequence[int]],
    views: np.ndarray,
    hits: Sequence[Sequence[bool]],
    view_names: Sequence[str],
    tile: int = 8,
) -> Any:
    """One row per query: the views (``views[e]``: ``(V, 7, 7, 3)`` symbolic) of its top-ranked
    episodes, titled with the view's name, the rank and whether the episode has the query's meaning."""
    import matplotlib.pyplot as plt

    from ..vision import render_views

    n_views, top = len(view_names), max(len(r) for r in ranked)
    fig, axes = plt.subplots(
        len(queries), top * n_views, figsize=(1.25 * top * n_views, 1.6 * len(queries)), squeeze=False
    )
    for row, (query, episodes, marks) in enumerate(zip(queries, ranked, hits)):
        for rank, (e, hit) in enumerate(zip(episodes, marks)):
            rgb = render_views(views[e], tile)
            for v in range(n_views):
                ax = axes[row, rank * n_views + v]
                ax.imshow(rgb[v])
                ax.set_title(
                    f"#{rank + 1} {view_names[v]} {'✓' if hit else '✗'}",
                    fontsize=7,
                    color="black" if hit else "crimson",
                )
                ax.axis("off")
        axes[row, 0].text(
            -0.15, 0.5, f"“{query}”", transform=axes[row, 0].transAxes, ha="right", va="center", fontsize=9
        )
    fig.tight_layout()
    plt.close(fig)
    return fig


def triangle_chart(
    table: pd.DataFrame,
    metrics: Sequence[str],
    chance: Mapping[str, float] | None = None,
    labels: Mapping[str, str] | None = None,
) -> alt.Chart:
    """The triangle from ``lva.triangle.spread``: one row per pair (kind: partner), the mean over
    seed pairs as a point and the seed range as a rule, one panel per metric; the ceilings in
    black, the controls in grey, chance (when given) as a dashed line."""
    sub = table[table["metric"].isin(list(metrics))].copy()
    sub["label"] = [f"{k}: {p}" if p else k for k, p in zip(sub["pair"], sub["partner"])]
    order = list(dict.fromkeys(sub["label"]))
    sub["metric"] = sub["metric"].map(lambda m: (labels or {}).get(m, m))
    y = alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    color = alt.Color(
        "pair:N",
        title=None,
        scale=alt.Scale(domain=list(PAIR_COLORS), range=list(PAIR_COLORS.values())),
        legend=alt.Legend(orient="bottom", columns=4),
    )
    rule = (
        alt.Chart()
        .mark_rule(strokeWidth=3, opacity=0.6)
        .encode(x=alt.X("min:Q", title="score"), x2="max:Q", y=y, color=color)
    )
    dots = (
        alt.Chart()
        .mark_point(filled=True, size=60)
        .encode(
            x="mean:Q",
            y=y,
            color=color,
            tooltip=[
                "pair",
                "partner",
                "metric",
                alt.Tooltip("mean:Q", format=".3f"),
                alt.Tooltip("min:Q", format=".3f"),
                alt.Tooltip("max:Q", format=".3f"),
                "seed pairs",
            ],
        )
    )
    layers = [rule, dots]
    if chance:
        sub["chance"] = table.loc[sub.index, "metric"].map(chance)
        layers.append(alt.Chart().mark_rule(color="black", strokeDash=[4, 3]).encode(x="chance:Q"))
    return (
        alt.layer(*layers, data=sub)
        .properties(width=190, height=15 * len(order))
        .facet(facet=alt.Facet("metric:N", title=None, sort=[(labels or {}).get(m, m) for m in metrics]), columns=2)
        .resolve_scale(x="independent")
        .properties(
            title="Action, vision and language: each pair over seeds, beside the seed ceilings",
            description="Dot plots, one panel per metric: the score of each pair of "
            "groundings over seeds, beside the seed ceilings and controls.",
        )
    )
