"""Chapter 6's nearest-neighbour explorer: pick an instruction from a menu and see its nearest
neighbours in the action space and in each other representation, the shared ones and the
synonyms marked, and its overlap (its term in mutual k-NN precision) beside the mean over all
instructions. Everything is in the chart's own data: it works offline."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

#: How a neighbour is marked: shared with the anchor's neighbours, a synonym of the instruction, both, neither.
NEIGHBOUR_COLORS = {
    "shared with the agent": "#d62728",
    "synonym (same meaning)": "#1f77b4",
    "synonym and shared": "#8e44ad",
    "neither": "#7f7f7f",
}


def neighbour_explorer(
    lists: pd.DataFrame, texts: Sequence[str], meanings: Sequence[int], anchor: str, k: int, columns: int = 3
) -> alt.VConcatChart:
    """The explorer for ``lists`` (:func:`lva.alignment.explorer.neighbour_lists`: one row per
    instruction and representation, ``anchor`` first); ``texts`` and ``meanings`` (a meaning id per
    instruction, so that synonyms share one) in the same row order as the representations."""
    if len(texts) != len(meanings):
        raise ValueError(f"{len(texts)} texts for {len(meanings)} meanings")
    order = list(dict.fromkeys(lists["representation"]))
    if not order or order[0] != anchor:
        raise ValueError(f"the lists must start with the anchor {anchor!r}; they start with {order[:1]}")
    data = lists.assign(
        query=[texts[i] for i in lists["item"]],
        qm=[int(meanings[i]) for i in lists["item"]],
        mean=lists.groupby("representation")["overlap"].transform("mean").round(4),
    )
    lookup = pd.DataFrame({"id": range(len(texts)), "text": list(texts), "m": [int(m) for m in meanings]})
    pick = alt.param(
        name="instruction", value=texts[0], bind=alt.binding_select(options=list(texts), name="instruction ")
    )
    base = alt.Chart(data).transform_filter("datum.query == instruction")

    others = [n for n in order if n != anchor]
    bar_y = alt.Y("representation:N", sort=others, title=None, axis=alt.Axis(labelLimit=200))
    scores = base.transform_filter(alt.FieldOneOfPredicate(field="representation", oneOf=others))
    bars = scores.mark_bar(color="#4c78a8").encode(
        x=alt.X("overlap:Q", scale=alt.Scale(domain=[0, 1]), title=f"share of its {k} neighbours shared with {anchor}"),
        y=bar_y,
        tooltip=[
            "representation:N",
            alt.Tooltip("overlap:Q", format=".2f"),
            alt.Tooltip("mean:Q", format=".2f", title="mean over instructions (mutual k-NN)"),
        ],
    )
    means = scores.mark_tick(color="black", thickness=2).encode(x="mean:Q", y=bar_y)
    bars = bars.add_params(pick)  # a variable parameter: the filter of every part reads it
    values = scores.mark_text(align="left", dx=3, fontSize=10).encode(
        x="overlap:Q", y=bar_y, text=alt.Text("overlap:Q", format=".2f")
    )
    overlap = (bars + means + values).properties(
        width=360,
        height=alt.Step(16),
        title=alt.Title("This instruction's overlap (bar) and the mean over all instructions (tick)", fontSize=12),
    )

    listing = (
        base.transform_calculate(n="split(datum.neighbours, ' ')", s="split(datum.shared, ' ')")
        .transform_flatten(["n", "s"])
        .transform_window(rank="row_number()", groupby=["representation"])
        .transform_calculate(n="toNumber(datum.n)")
        .transform_lookup(lookup="n", from_=alt.LookupData(data=lookup, key="id", fields=["text", "m"]))
        .transform_calculate(
            kind=f"datum.m == datum.qm ? (datum.s == '1' && datum.representation != '{anchor}' ? "
            "'synonym and shared' : 'synonym (same meaning)') : "
            f"(datum.s == '1' && datum.representation != '{anchor}' ? 'shared with the agent' : 'neither')"
        )
        .mark_text(align="left", baseline="middle", fontSize=10)
        .encode(
            x=alt.value(2),
            y=alt.Y("rank:O", title=None, axis=alt.Axis(ticks=False, domain=False, labelFontSize=9)),
            text="text:N",
            color=alt.Color(
                "kind:N",
                title=None,
                legend=alt.Legend(orient="top", columns=2),
                scale=alt.Scale(domain=list(NEIGHBOUR_COLORS), range=list(NEIGHBOUR_COLORS.values())),
            ),
            tooltip=[alt.Tooltip("rank:O", title="rank"), alt.Tooltip("text:N", title="neighbour"), "kind:N"],
        )
        .properties(width=165, height=alt.Step(14))
        .facet(
            facet=alt.Facet(
                "representation:N", sort=order, title=None, header=alt.Header(labelFontSize=11, labelFontWeight="bold")
            ),
            columns=columns,
        )
    )
    return (
        alt.vconcat(overlap, listing)
        .resolve_scale(color="independent")
        .properties(
            title=f"Nearest neighbours of one instruction ({k} per representation)",
            description=f"For the instruction chosen in the menu below: its {k} nearest neighbours in {anchor} and "
            f"in {len(others)} other representations, nearest first, coloured by whether each is also "
            f"among {anchor}'s neighbours and whether it is a synonym; above, the instruction's overlap "
            "with the action space per representation beside the mean over all instructions.",
        )
    )
