"""Charts of chapter 6: alignment matrices, k-NN and layer curves, per-task scores, the
specification curve, neighbour anatomy, scale and seed spread."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import altair as alt

from lva.names import is_agent


class _MetricLabels(Mapping[str, str]):
    """The label of every metric chapter 6 charts, read from the metric records
    (:data:`lva.alignment.LABELS`, a live view), which are imported on first use only: the charts
    of the other chapters need no alignment code."""

    @staticmethod
    def _labels() -> Mapping[str, str]:
        from lva.alignment import LABELS

        return LABELS

    def __getitem__(self, metric: str) -> str:
        return self._labels()[metric]

    def __iter__(self) -> Iterator[str]:
        return iter(self._labels())

    def __len__(self) -> int:
        return len(self._labels())

    def __repr__(self) -> str:
        return repr(dict(self._labels()))


METRIC_LABELS: Mapping[str, str] = _MetricLabels()


def alignment_matrix(matrix: Any, title: str, groups: dict[str, str] | None = None) -> alt.Chart:
    """Square model x model score table (a pandas DataFrame) as an interactive heatmap with the
    value printed in each cell; ``groups`` maps a name to its family, shown in the tooltip."""
    import pandas as pd

    names = list(matrix.index)
    rows = [
        {
            "a": a,
            "b": b,
            "score": round(float(matrix.loc[a, b]), 3),
            "family a": (groups or {}).get(a, ""),
            "family b": (groups or {}).get(b, ""),
        }
        for a in names
        for b in names
    ]
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
    return (cells + text).properties(
        width=420, height=420, description=f"Heatmap with values: {title}, one cell per pair of representations."
    )


def knn_curves(curves: Any, title: str, highlight: tuple[str, ...] = ()) -> alt.Chart:
    """Mutual k-NN precision against k (long DataFrame from ``lva.alignment.knn_curve``), one line
    per model, with the chance level k/(N-1) as a black dotted line; ``highlight`` names (the
    controls) are drawn dashed, the other models solid."""
    curves = curves.assign(kind=["control" if m in highlight else "model" for m in curves["model"]])
    lines = (
        alt.Chart(curves)
        .mark_line(point=True)
        .encode(
            x=alt.X("k:Q", scale=alt.Scale(type="log"), title="k (neighbours)"),
            y=alt.Y("precision:Q", scale=alt.Scale(domain=[0, 1]), title="mutual k-NN precision"),
            color=alt.Color("model:N", legend=alt.Legend(orient="right")),
            strokeDash=alt.StrokeDash("kind:N", title="kind", sort=["model", "control"]),
            tooltip=["model", "k", alt.Tooltip("precision:Q", format=".3f"), alt.Tooltip("chance:Q", format=".3f")],
        )
    )
    chance = (
        alt.Chart(curves.drop_duplicates("k"))
        .mark_line(color="black", strokeDash=[2, 2])
        .encode(x="k:Q", y="chance:Q", tooltip=[alt.Tooltip("chance:Q", format=".3f")])
    )
    return (lines + chance).properties(
        width=460, height=300, title=title, description=f"Line chart against k on a log scale: {title}."
    )


def layer_curves(curves: Any, title: str) -> alt.Chart:
    """Score against relative depth (layer / last layer) per model, one panel per metric (long
    DataFrame with columns model, layer, depth, metric, score)."""
    base = (
        alt.Chart(curves)
        .mark_line(point=True)
        .encode(
            x=alt.X("depth:Q", title="relative depth (0 = token embeddings, 1 = last layer)"),
            y=alt.Y("score:Q", title=None),
            color=alt.Color("model:N", legend=alt.Legend(orient="bottom")),
            tooltip=["model", "layer", "metric", alt.Tooltip("score:Q", format=".3f")],
        )
    )
    return (
        base.properties(width=260, height=200)
        .facet(column=alt.Column("metric:N", title=None))
        .resolve_scale(y="independent")
        .properties(title=title, description=f"Line charts against relative layer depth, one per metric: {title}.")
    )


def task_scores(scores: Any, title: str) -> alt.Chart:
    """Per-task scores (long DataFrame: group, model, metric, score, chance): bars per model with
    the chance level as a tick, one row of panels per metric (named by its label)."""
    scores = scores.assign(metric=[METRIC_LABELS.get(m, m) for m in scores["metric"]])
    bars = (
        alt.Chart()
        .mark_bar()
        .encode(
            x=alt.X("model:N", title=None, axis=alt.Axis(labelAngle=-40, labelLimit=200)),
            y=alt.Y("score:Q", title=None),
            color=alt.Color("model:N", legend=None),
            tooltip=[
                "group",
                "model",
                "metric",
                alt.Tooltip("score:Q", format=".3f"),
                alt.Tooltip("chance:Q", format=".3f"),
                alt.Tooltip("p:Q", format=".3f"),
            ],
        )
    )
    ticks = alt.Chart().mark_tick(color="black", thickness=2, size=18).encode(x="model:N", y="chance:Q")
    return (
        alt.layer(bars, ticks, data=scores)
        .properties(width=170, height=150)
        .facet(column=alt.Column("group:N", title=None), row=alt.Row("metric:N", title=None))
        .resolve_scale(y="independent")
        .properties(title=title, description=f"Bar charts, one per metric and group: {title}.")
    )


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
        x = alt.X(
            "rank:Q",
            title=None,
            axis=alt.Axis(labels=False, ticks=False, grid=False),
            scale=alt.Scale(domain=[-1, len(g)]),
        )
        points = (
            alt.Chart(g)
            .mark_point(size=28)
            .encode(
                x=x,
                y=alt.Y("score:Q", title=METRIC_LABELS.get(metric, metric)),
                color=alt.Color("model:N", legend=alt.Legend(orient="top", title=None)),
                fill=alt.condition("datum.p < 0.05", alt.Color("model:N", legend=None), alt.value("white")),
                tooltip=[
                    "model",
                    "pooling",
                    "layer",
                    "layers read",
                    "normalisation",
                    alt.Tooltip("score:Q", format=".3f"),
                    alt.Tooltip("p:Q", format=".3f"),
                    "significant",
                ],
            )
        )
        layers = [points]
        if band is not None and metric in ("mutual_knn", "procrustes_retrieval"):
            layers.insert(
                0,
                alt.Chart(pd.DataFrame({"low": [band[0]], "high": [band[1]]}))
                .mark_rect(color="orange", opacity=0.25)
                .encode(y="low:Q", y2="high:Q"),
            )
        layers.append(
            alt.Chart(pd.DataFrame({"chance": [float(g["chance"].iloc[0])]}))
            .mark_rule(color="black", strokeDash=[3, 3])
            .encode(y="chance:Q")
        )
        marks = pd.concat(
            [
                pd.DataFrame({"rank": g["rank"], "model": g["model"], "choice": f"{dim}: " + g[col].astype(str)})
                for dim, col in (
                    ("model", "model"),
                    ("pooling", "pooling"),
                    ("layer", "layer"),
                    ("norm.", "normalisation"),
                )
            ]
        )
        order = list(dict.fromkeys(marks["choice"]))
        indicator = (
            alt.Chart(marks)
            .mark_tick(thickness=2, size=9)
            .encode(
                x=alt.X(
                    "rank:Q",
                    title="specifications, sorted by score",
                    axis=alt.Axis(labels=False, ticks=False),
                    scale=alt.Scale(domain=[-1, len(g)]),
                ),
                y=alt.Y("choice:N", title=None, sort=order, axis=alt.Axis(labelLimit=150, labelFontSize=9)),
                color=alt.Color("model:N", legend=None),
            )
        )
        panels.append(
            alt.vconcat(
                alt.layer(*layers).properties(width=215, height=160),
                indicator.properties(width=215, height=10 * len(order)),
                spacing=2,
            )
        )
    rows = [alt.hconcat(*panels[i : i + 2]) for i in range(0, len(panels), 2)]
    return (
        alt.vconcat(*rows)
        .properties(
            title=title,
            description=f"Specification curve: every specification's score, sorted, above the choices it made. "
            f"{title}.",
        )
        .resolve_scale(color="shared")
    )


def anatomy_chart(table: Any, title: str) -> alt.Chart:
    """Share of each representation's k nearest neighbours that share each attribute with the
    instruction (a DataFrame from ``lva.robustness.neighbour_anatomy``; its ``chance`` row is
    the last row of the heatmap)."""
    long = table.reset_index(names="representation").melt("representation", var_name="shares", value_name="share")
    base = alt.Chart(long, title=title).encode(
        x=alt.X(
            "shares:N", sort=list(table.columns), title="neighbours with the same ...", axis=alt.Axis(labelAngle=0)
        ),
        y=alt.Y("representation:N", sort=list(table.index), title=None, axis=alt.Axis(labelLimit=220)),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
        tooltip=["representation", "shares", alt.Tooltip("share:Q", format=".3f")],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("share:Q", format=".2f"),
        color=alt.condition("datum.share > 0.55", alt.value("black"), alt.value("white")),
    )
    return (cells + text).properties(width=380, height=17 * len(table), description=f"Heatmap with values: {title}.")


def scale_chart(table: Any, title: str) -> alt.Chart:
    """Score against parameter count (log axis), one panel per metric (two per row), a point per
    model (shape) and layer choice (colour), lines joining the sizes of one family (a DataFrame
    from ``lva.robustness.scale_table``); panels are named by the metrics' labels."""
    table = table.assign(metric=[METRIC_LABELS.get(m, m) for m in table["metric"]])
    enc = {
        "x": alt.X("params:Q", scale=alt.Scale(type="log"), title="parameters", axis=alt.Axis(format="~s")),
        "y": alt.Y("score:Q", title=None),
        "color": alt.Color("layer:N", title="layer"),
    }
    lines = alt.Chart().mark_line().encode(detail="series:N", **enc)
    points = (
        alt.Chart()
        .mark_point(size=70, filled=True)
        .encode(
            shape=alt.Shape("model:N", title="model"),
            tooltip=[
                "model",
                "series",
                "metric",
                "layer",
                alt.Tooltip("params:Q", format=".3s"),
                alt.Tooltip("score:Q", format=".3f"),
                alt.Tooltip("p:Q", format=".3f"),
            ],
            **enc,
        )
    )
    return (
        alt.layer(lines, points, data=table)
        .properties(width=230, height=150)
        .facet(facet=alt.Facet("metric:N", title=None), columns=2)
        .resolve_scale(y="independent")
        .properties(
            title=title,
            description=f"Scores against the number of parameters (log scale), one panel per metric: {title}.",
        )
    )


def seed_chart(table: Any, title: str) -> alt.Chart:
    """Each representation's score against every trained agent seed (points) and their range
    (a rule), from ``lva.robustness.seed_spread``."""
    import pandas as pd

    seeds = [c for c in table.columns if is_agent(str(c))]
    long = (
        table[seeds]
        .reset_index(names="representation")
        .melt("representation", var_name="against", value_name="score")
        .dropna()
    )
    ranges = table[["min", "max"]].astype(float).reset_index(names="representation")
    order = list(table.index)
    y = alt.Y("representation:N", sort=order, title=None, axis=alt.Axis(labelLimit=220))
    rule = (
        alt.Chart(ranges)
        .mark_rule(color="grey", strokeWidth=3)
        .encode(x=alt.X("min:Q", title="mutual k-NN@k against each trained agent"), x2="max:Q", y=y)
    )
    dots = (
        alt.Chart(pd.DataFrame(long))
        .mark_point(filled=True, size=50)
        .encode(
            x="score:Q",
            y=y,
            color=alt.Color("against:N", title="agent"),
            tooltip=["representation", "against", alt.Tooltip("score:Q", format=".3f")],
        )
    )
    return (rule + dots).properties(
        width=420,
        height=18 * len(order),
        title=title,
        description=f"Dot plot, one row per representation, its range over agents as a line: {title}.",
    )
