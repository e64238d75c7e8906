"""Tables name tasks, headers, shares and flags the same way in every chapter (lva.display)."""

from __future__ import annotations

import pandas as pd
import pytest

from lva.display import PERCENT, header, readable, styled, task_name


def test_task_names_and_unknown_task():
    assert [task_name(t) for t in ("goto", "pickup", "escape")] == ["GO-TO", "PICK-UP", "ESCAPE-FROM"]
    assert task_name("GO-TO") == "GO-TO"
    with pytest.raises(ValueError, match="goto"):
        task_name("jump")


def test_readable_renames_headers_tasks_and_flags():
    df = pd.DataFrame({"task": ["goto", "escape"], "mean_steps": [3.0, 5.5], "trained_now": [True, False]})
    out = readable(df)
    assert list(out.columns) == ["task", "mean steps", "trained now"]
    assert list(out["task"]) == ["GO-TO", "ESCAPE-FROM"]
    assert list(out["trained now"]) == ["yes", "no"]
    assert list(df["task"]) == ["goto", "escape"]  # the input is left as it was


def test_readable_maps_a_task_index_level():
    idx = pd.MultiIndex.from_tuples([("goto", "ball"), ("pickup", "key")], names=["task", "obj_type"])
    out = readable(pd.DataFrame({"success": [0.5, 1.0]}, index=idx))
    assert list(out.index.get_level_values("task")) == ["GO-TO", "PICK-UP"]
    assert out.index.names == ["task", "obj type"]


def test_styled_formats_percentages_one_way_and_checks_columns():
    html = styled(pd.DataFrame({"task": ["pickup"], "success": [0.25]}), percent=["success"]).to_html()
    assert PERCENT.format(0.25) == "25.0%" and "25.0%" in html and "PICK-UP" in html
    with pytest.raises(ValueError, match="not in the table"):
        styled(pd.DataFrame({"a": [1.0]}), percent=["b"])
    assert header("episodes_per_s") == "episodes per s" and header(3) == 3


def test_bot_table_writes_shares_as_percentages():
    from lva.expert import BotComparison, bot_table

    b = BotComparison("BabyAI-GoToLocal-v0", 10, 1.0, 0.9, 5.0, 6.0, 0.8, float("nan"), 100.0, 50.0)
    table = bot_table([b])
    assert table.loc["expert success", b.level] == "100.0%"
    assert table.loc["bot moved an object, when shorter", b.level] == "bot never shorter"
    assert table.loc["speed ratio", b.level] == "2.0"


def test_config_table_writes_flags_and_tuples_in_words():
    from lva.config import get_config
    from lva.display import config_table

    table = config_table(get_config("fast"), "ground")
    assert table.loc["learn_temperature", "value"] in ("yes", "no")
    assert table.loc["views", "value"] == "first, final"
    assert table.index.name == "ground setting"
    with pytest.raises(ValueError, match="ground"):
        config_table(get_config("fast"), "nope")


def test_metrics_and_task_levels_get_their_display_names_in_headers_and_cells():
    from lva.alignment import METRICS_BY_NAME
    from lva.display import metric_label

    assert metric_label("mutual_knn") == METRICS_BY_NAME["mutual_knn"].label
    assert metric_label(metric_label("rsa")) == metric_label("rsa")  # display names pass
    assert "_" not in metric_label("cka_biased")  # a record without a label: its name in words
    with pytest.raises(ValueError, match="mutual_knn"):
        metric_label("nope")
    long = pd.DataFrame(
        {"metric": ["mutual_knn", "rsa"], "group": ["goto", "escape"], "model": ["a", "b"], "score": [0.5, 0.25]}
    ).rename(columns={"group": "task"})
    wide = readable(long.pivot_table(index="model", columns=["metric", "task"], values="score"))
    assert set(wide.columns.get_level_values(0)) == {metric_label("mutual_knn"), metric_label("rsa")}
    assert set(wide.columns.get_level_values(1)) == {"GO-TO", "ESCAPE-FROM"}
    assert list(readable(long)["metric"]) == [metric_label("mutual_knn"), metric_label("rsa")]
    flat = long.pivot(index="model", columns="metric", values="score")  # headers named "metric"
    html = styled(flat, percent=["rsa"]).to_html()
    assert metric_label("rsa") in html and "25.0%" in html and "mutual_knn" not in html
    paired = pd.DataFrame({"mean_diff": [0.1], "p_value": [0.01]})
    assert list(readable(paired).columns) == ["mean difference", "p-value"]
