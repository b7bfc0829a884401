"""Pages rendered without a browser (Solara's test renderer) on the tiny city."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import ipyvuetify as v
import solara

from citytwin.app.canvasmap import CanvasMap
from citytwin.app.config import AppConfig
from citytwin.app.data import load_city, load_map_data
from citytwin.app.maps import nearest_feature
from citytwin.app.pages import city, compare, experiments, scenarios
from citytwin.app.plotview import PlotView
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


def test_pages_without_a_workspace_are_private(config: AppConfig) -> None:
    """Two pages opened without ?workspace= get two private workspaces (no shared default)."""
    _, a = _render(scenarios.Page, config)
    _, b = _render(scenarios.Page, config)
    assert a.workspace != b.workspace and a.workspace.startswith("w-")
    assert a.session.root != b.session.root and a.session.session_id == a.workspace


def test_city_page_map_click_inspect_and_close(config: AppConfig) -> None:
    rc, state = _render(city.Page, config)
    view = rc.find(CanvasMap).widget
    names = [lay["name"] for lay in json.loads(view.meta_json)["layers"]]
    assert "roads" in names and "residential" in names and "fire station" in names
    assert view.payload is not None and view.buffer == view.payload.buffer
    assert len(view.buffer) > 0, "the coordinates are sent to the browser"
    # a click inside a residential footprint (data coordinates, as the browser sends them)
    c = load_city(Path(config.data_dir) / config.city)
    bid = int(c.buildings.index[(c.buildings["use"] == "residential").to_numpy()][0])
    pt = c.buildings.geometry.loc[bid].representative_point()
    view.click(pt.x, pt.y, 1.0)
    html = _html_text(rc)
    assert f">building_id</td><td style='padding:2px 8px'>{bid}</td>" in html
    assert ">use</td>" in html
    # a click on a road link away from buildings and power nodes, then close it
    data = load_map_data(Path(config.data_dir) / config.city)
    edge = next(int(r.edge_id) for r in data.road_mid.itertuples()
                if nearest_feature(c, data, r.x, r.y, tol_m=2.0) == ("road", str(r.edge_id)))
    row = data.road_mid.set_index("edge_id").loc[edge]
    view.click(float(row["x"]), float(row["y"]), 0.25)
    rc.find(v.Btn, children=["Close this link in my scenario draft"]).widget.click()
    assert state.closed_edges.value == [edge]
    # a click on empty ground far outside the city inspects nothing new
    view.click(-1e7, -1e7, 1.0)
    assert state.closed_edges.value == [edge]
    # the layer toggle removes the building footprints
    rc.find(v.Checkbox, label="buildings").widget.v_model = False
    view = rc.find(CanvasMap).widget
    names = [lay["name"] for lay in json.loads(view.meta_json)["layers"]]
    assert "residential" not in names and "closed" in names


def test_scenario_map_clicks_edit_the_draft_and_toml(config: AppConfig, tmp_path: Path) -> None:
    """Close a street, place a station, fail a transformer by clicking the Scenarios map: the
    JSON, the forms and the TOML view follow, and the saved TOML loads as the CLI loads it."""
    import tomllib

    from citytwin.app.mapedit import MODES
    from citytwin.scenario import load_scenario

    rc, state = _render(scenarios.Page, config)
    area = rc.find(v.Textarea).widget
    area.v_model = json.dumps({"name": "mine", "duration_h": 2, "traffic": {}, "energy": {
        "power_flow_numba": False}, "emergency": {}})
    view = rc.find(CanvasMap).widget
    c = load_city(Path(config.data_dir) / config.city)
    data = load_map_data(Path(config.data_dir) / config.city)
    named = data.road_mid[data.road_mid["name"].astype(str).str.len() > 0].iloc[0]
    view.click(float(named["x"]), float(named["y"]), 0.5)  # default mode: close street
    draft = json.loads(area.v_model)
    assert draft["interventions"] == [{"type": "close_road", "street": named["name"]}]
    assert "Closed the street" in _alerts(rc)
    over = json.loads(rc.find(CanvasMap).widget.overlay_json)
    assert [o["name"] for o in over] == ["closed roads"] and over[0]["kind"] == "line"
    modes = rc.find(v.BtnToggle).widgets
    mode = next(w for w in modes if len(w.children) == len(MODES))
    mode.v_model = list(MODES).index("add_station")
    x0, y0, x1, y1 = data.extent
    view.click((x0 + x1) / 2, (y0 + y1) / 2, 1.0)
    mode.v_model = list(MODES).index("asset_failure")
    tr = data.power_nodes[data.power_nodes["kind"] == "transformer"].iloc[0]
    view.click(float(tr["x"]), float(tr["y"]), 0.5)
    draft = json.loads(area.v_model)
    types = [i["type"] for i in draft["interventions"]]
    assert types == ["close_road", "add_station", "asset_failure"]
    station = draft["interventions"][1]
    assert station["kind"] == "fire_station" and 20 < station["lon"] < 30  # lon/lat, not metres
    assert draft["interventions"][2] == {"type": "asset_failure", "asset": tr["node"],
                                         "at_h": 8.0, "duration_h": 4.0}
    # the forms follow the draft: the station form shows the clicked point
    floats = [w.v_model for w in rc.find(v.TextField).widgets]
    assert str(station["lat"]) in [str(f) for f in floats]
    # the TOML view shows the same and runs unchanged through the CLI's loader
    toml_text = str(rc.find(solara.widgets.HTML, tag="pre").widget.unsafe_innerHTML)
    import html as _html

    saved = tmp_path / "saved.toml"
    saved.write_text(_html.unescape(toml_text))
    assert [i["type"] for i in tomllib.loads(saved.read_text())["interventions"]] == types
    spec = load_scenario(saved)
    assert [iv.type for iv in spec.interventions] == types
    assert Path(spec.city) == Path(config.data_dir).resolve() / config.city
    # a click on empty ground in fail mode says what was expected
    view.click(x0 - 5000, y0 - 5000, 1.0)
    assert "no substation or transformer" in _alerts(rc)
    assert len(json.loads(area.v_model)["interventions"]) == 3
    assert c.crs is not None and state.session.runs() == []


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
    rc.find(PlotView).wait_for(timeout=30)  # the results are read in a thread, with a spinner
    figs = rc.find(PlotView).widgets
    assert figs, "time-series chart rendered"
    assert [t.name for t in figs[0].figure.data] == ["baseline", "ev"]
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
    assert [t.name for t in rc.find(PlotView).widgets[0].figure.data] == ["baseline"]
    assert "Pick two to four" in _alerts(rc)


def test_experiments_page_outcome_plot(config: AppConfig) -> None:
    root = Path(config.results_dir)
    for seed, val in enumerate((1.0, 2.0, 3.0)):
        write_results(root, f"a-s{seed}", scenario="a", seed=seed, kpis={"traffic": {"k": val}})
    rc, _ = _render(experiments.Page, config)
    fig = rc.find(PlotView).widget.figure
    assert fig.data[1].y[0] == 2.0 and fig.data[1].error_y.array[0] > 0
