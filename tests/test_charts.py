"""The one chart renderer: its output for JupyterLab, static viewers and the book, and the book's plugin."""

import base64
import io
import json
from types import SimpleNamespace

import altair as alt
import nbformat
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter
from PIL import Image

from lva import viz
from lva.vegalite import CHART_CLASS, VEGALITE_MIME, BookChart, chart_html
from lva.viz.render import PNG_SCALE, RENDERER, chart_png, chart_title, png_size


def bar_chart(title="Three bars"):
    frame = pd.DataFrame({"x": ["a", "b", "c"], "y": [1, 3, 2]})
    return alt.Chart(frame).mark_bar().encode(x="x:N", y="y:Q").properties(width=200, height=120, title=title)


@pytest.fixture
def charts_on():
    viz.setup_charts()
    yield
    alt.renderers.enable("default")


def displayed(chart):
    """(data, metadata) as the kernel sends them for a chart that ends a cell."""
    return DisplayFormatter().format(chart)


def test_setup_charts_is_the_same_inside_and_outside_the_book(monkeypatch):
    names = []
    for value in (None, "1"):
        if value is None:
            monkeypatch.delenv("LVA_BOOK", raising=False)
        else:
            monkeypatch.setenv("LVA_BOOK", value)
        names.append(viz.setup_charts())
        assert alt.renderers.active == RENDERER
    alt.renderers.enable("default")
    assert names == [RENDERER, RENDERER]


def test_a_chart_shows_vegalite_a_png_and_its_title(charts_on):
    data, metadata = displayed(bar_chart())
    assert set(data) == {VEGALITE_MIME, "image/png", "text/plain"}
    spec = bar_chart().to_dict()
    assert data[VEGALITE_MIME] == {k: v for k, v in spec.items() if k != "$schema"}
    assert data["text/plain"] == "<altair chart: Three bars>"
    png = base64.b64decode(data["image/png"])
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.size == png_size(png)
    # the page shows the PNG at the chart's own size: the plot (200 x 120) plus its axes and title
    shown = metadata["image/png"]
    assert (shown["width"] * PNG_SCALE, shown["height"] * PNG_SCALE) == image.size
    assert 200 < shown["width"] < 320 and 120 < shown["height"] < 220
    # not blank: the bars are drawn in a colour, on a white background
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert len(colours) > 10 and max(count for count, _ in colours) < image.size[0] * image.size[1]


def test_a_notebook_holding_a_chart_validates(charts_on):
    data, metadata = displayed(bar_chart())
    output = nbformat.v4.new_output("display_data", data=data, metadata=metadata)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("chart", outputs=[output])])
    nbformat.validate(nb)
    again = nbformat.reads(nbformat.writes(nb), as_version=4)
    assert again.cells[0].outputs[0].data[VEGALITE_MIME] == data[VEGALITE_MIME]


def test_the_output_is_the_same_bytes_on_a_rerun(charts_on):
    first = json.dumps(displayed(bar_chart()), sort_keys=True)
    assert json.dumps(displayed(bar_chart()), sort_keys=True) == first
    spec = bar_chart().to_dict()
    assert chart_png(spec) == chart_png(spec)
    assert chart_html(spec) == chart_html(bar_chart().to_dict())


def test_the_png_fetches_nothing():
    spec = {
        "data": {"url": "https://example.com/data.csv"},
        "mark": "point",
        "encoding": {"x": {"field": "a", "type": "quantitative"}},
    }
    with pytest.raises(ValueError, match="not allowed"):
        chart_png(spec)


@pytest.mark.parametrize(
    "title, line",
    [
        ("Plain", "Plain"),
        ({"text": "From a dict", "subtitle": "no"}, "From a dict"),
        (["Two", "lines"], "Two lines"),
        (None, "untitled"),
        ("A\nbreak", "A break"),
    ],
)
def test_chart_title_is_one_line(title, line):
    assert chart_title({"title": title} if title is not None else {}) == line


def test_chart_title_is_found_in_the_parts_of_a_chart():
    points = alt.Chart(pd.DataFrame({"x": [1]})).mark_point().encode(x="x:Q")
    assert chart_title((points.properties(title="On a layer") + points).to_dict()) == "On a layer"
    assert chart_title(alt.vconcat(points, points.properties(title="Below")).to_dict()) == "Below"
    assert chart_title(points.properties(title="Inside").facet(column="x:N").to_dict()) == "Inside"
    assert chart_title((points + points).to_dict()) == "untitled"


def test_png_size_refuses_what_is_not_a_png():
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_the_book_plugin_draws_the_vegalite_output_with_the_served_bundle():
    spec = bar_chart("</script> in a title").to_dict()
    data = SimpleNamespace(mime_type=VEGALITE_MIME, content=spec)
    [node] = BookChart.handle_mime(None, data, False)
    html = node.astext()
    assert node["format"] == "html"
    start = f'<div class="{CHART_CLASS}"></div><script>vegaEmbed(document.currentScript.previousElementSibling, '
    assert html.startswith(start)
    assert html.count("</script>") == 1  # the title cannot close the script early
    payload = html.split("previousElementSibling, ", 1)[1].rsplit(', {"actions": false});</script>', 1)[0]
    assert json.loads(payload.replace("<\\/", "</")) == spec
    # a spec stored as text (a notebook read without JSON parsing) draws the same
    as_text = SimpleNamespace(mime_type=VEGALITE_MIME, content=json.dumps(spec))
    assert BookChart.handle_mime(None, as_text, False)[0].astext() == html


def test_the_book_plugin_leaves_other_outputs_to_myst_nb():
    assert BookChart.handle_mime(None, SimpleNamespace(mime_type="image/png", content=""), False) is None
    assert BookChart.handle_mime(None, SimpleNamespace(mime_type=VEGALITE_MIME, content={}), True) is None


def test_the_book_plugin_is_registered_with_myst_nb():
    from importlib.metadata import entry_points

    found = [ep.load() for ep in entry_points(group="myst_nb.mime_renderers")]
    assert BookChart in found, "reinstall the project (pip install -e .) to register lva.vegalite:BookChart"


def test_the_book_config_puts_the_vegalite_output_first_in_html():
    import yaml

    from lva.config import repo_root

    config = yaml.safe_load((repo_root() / "_config.yml").read_text())["sphinx"]["config"]
    overrides = {mime: rank for builder, mime, rank in config["nb_mime_priority_overrides"] if builder == "html"}
    assert overrides[VEGALITE_MIME] < 30  # before text/html (30) and image/png (50), myst-nb's html ranks
    assert viz.BUNDLE_NAME in config["html_js_files"]


def test_task_scores_name_the_metrics_by_their_labels():
    from lva.alignment import LABELS

    scores = pd.DataFrame(
        {
            "group": ["GO-TO", "GO-TO"],
            "model": ["a", "b"],
            "metric": ["mutual_knn", "rsa"],
            "score": [0.5, 0.25],
            "chance": [0.1, 0.0],
            "p": [0.01, 0.5],
        }
    )
    spec = viz.task_scores(scores, "t").to_dict()
    rows = spec["datasets"][next(iter(spec["datasets"]))]
    assert {r["metric"] for r in rows} == {LABELS["mutual_knn"], LABELS["rsa"]}
    assert list(scores["metric"]) == ["mutual_knn", "rsa"]  # the caller's table is left as it was
