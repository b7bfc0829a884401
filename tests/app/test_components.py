"""Pages rendered without a browser (Solara's test renderer) on the tiny city."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import ipyvuetify as v
import solara
from plotly.graph_objs._figurewidget import FigureWidget

from citytwin.app.config import AppConfig
from citytwin.app.data import load_city
from citytwin.app.pages import city, compare, experiments, scenarios
from citytwin.app.state import AppContext, StateProvider

from ._apphelpers import series_frame, write_results


def _render(page, config: AppConfig):
    captured = {}

    @solara.component
    def Grab():
        captured["state"] = solara.use_context(AppContext)
        return page()

    box, rc = solara.render(StateProvider(children=[Grab()], config=config), handle_error=False)
    return rc, captured["state"]


def _html_text(rc) -> str:
    return " ".join(str(w.unsafe_innerHTML) for w in rc.find(solara.widgets.HTML).widgets)


def _table_cells(html: str) -> tuple[list[str], list[list[str]]]:
    """Header and body cells of the first HTML table in ``html`` (stdlib parser)."""

    class P(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    p = P()
    p.feed(html)
    return p.rows[0], p.rows[1:]


def _alerts(rc) -> str:
    return " ".join(str(w.children) for w in rc.find(v.Alert).widgets)


def test_city_page_map_click_inspect_and_close(config: AppConfig) -> None:
    rc, state = _render(city.Page, config)
    fig = rc.find(FigureWidget).widget
    names = [t.name for t in fig.data]
    assert "roads" in names and "residential" in names and "fire station" in names
    # click the first residential building marker
    ti = names.index("residential")
    bid = int(fig.data[ti].customdata[0][1])
    fig._js2py_pointsCallback = {"event_type": "plotly_click", "points": {
        "trace_indexes": [ti], "point_indexes": [0], "xs": [0], "ys": [0]}}
    html = _html_text(rc)
    assert f">building_id</td><td style='padding:2px 8px'>{bid}</td>" in html
    assert ">use</td>" in html
    # click a road link, then close it into the session's scenario draft
    ri = names.index("road links")
    fig._js2py_pointsCallback = {"event_type": "plotly_click", "points": {
        "trace_indexes": [ri], "point_indexes": [2], "xs": [0], "ys": [0]}}
    rc.find(v.Btn, children=["Close this link in my scenario draft"]).widget.click()
    edge = int(fig.data[ri].customdata[2][1])
    assert state.closed_edges.value == [edge]
    # the layer toggle removes the building traces
    rc.find(v.Checkbox, label="buildings").widget.v_model = False
    fig = rc.find(FigureWidget).widget
    assert "residential" not in [t.name for t in fig.data]
    assert any(t.name == "closed" for t in fig.data)


def test_scenarios_page_validates_like_the_cli(config: AppConfig) -> None:
    rc, state = _render(scenarios.Page, config)
    area = rc.find(v.Textarea).widget
    area.v_model = json.dumps({"name": "x", "duration_h": 0, "extends": "../a.toml"})
    rc.find(v.Btn, children=["Validate"]).widget.click()
    msg = _alerts(rc)
    assert "extends" in msg and "not allowed" in msg
    area.v_model = json.dumps({"name": "x", "duration_h": 0})
    rc.find(v.Btn, children=["Validate"]).widget.click()
    assert "duration_h" in _alerts(rc)
    area.v_model = json.dumps({"name": "ok", "duration_h": 1})
    rc.find(v.Btn, children=["Validate"]).widget.click()
    assert "is valid" in _alerts(rc)
    assert state.session.runs() == []


def test_compare_page_table_and_charts(config: AppConfig) -> None:
    root = Path(config.results_dir)
    for name, val in (("baseline", 10.0), ("ev", 14.0)):
        write_results(root, name, scenario=name, seed=0,
                      kpis={"energy": {"peak_demand_kw": val}},
                      series=series_frame("energy", "load_kw", [1.0, val, 2.0]))
    rc, state = _render(compare.Page, config)
    state.compare.value = ["baseline", "ev"]
    figs = rc.find(FigureWidget).widgets
    assert figs, "time-series chart rendered"
    assert [t.name for t in figs[0].data] == ["baseline", "ev"]
    header, rows = _table_cells(_html_text(rc))
    row = dict(zip(header, next(r for r in rows if "Peak electricity demand" in r),
                   strict=True))
    assert row["baseline"] == "10" and row["ev"] == "14"
    assert row["unit"] == "kW" and row["better"] == "lower ↓"
    assert "+40.0 %" in row["Δ ev"]
    page = _html_text(rc)
    assert 'style="color: #c62828">+4' in page  # higher peak demand is worse: red
    assert 'title="highest total building' in page  # the definition as a tooltip
    facilities = load_city(Path(config.data_dir) / config.city).facilities
    assert "ambulance_station" not in set(facilities["kind"])  # the tiny city has none
    assert "no ambulance station" in _alerts(rc)
    state.compare.value = ["baseline", "../../etc"]
    # names outside the session's results are ignored: only the baseline remains
    assert [t.name for t in rc.find(FigureWidget).widgets[0].data] == ["baseline"]
    assert "Pick two to four" in _alerts(rc)


def test_experiments_page_outcome_plot(config: AppConfig) -> None:
    root = Path(config.results_dir)
    for seed, val in enumerate((1.0, 2.0, 3.0)):
        write_results(root, f"a-s{seed}", scenario="a", seed=seed, kpis={"traffic": {"k": val}})
    rc, _ = _render(experiments.Page, config)
    fig = rc.find(FigureWidget).widget
    assert fig.data[1].y[0] == 2.0 and fig.data[1].error_y.array[0] > 0
