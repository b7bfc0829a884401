"""The whole planner flow in a real (headless) Chromium: open the app, pick a city, edit a
lever in the form, close a street by clicking the map, run it and the baseline, compare, see
the difference map; a reload finds the runs again, and a page opened without a workspace sees
none of them (each page's runs are private)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from ._appharness import CHROMIUM, CHROMIUM_ARGS, ROOT, AppServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed"),
    pytest.mark.skipif(not (ROOT / "scenarios" / "baseline.toml").is_file(),
                       reason="shipped scenario baseline not present"),
]

SMALL = ROOT / "tests" / "data" / "dormitory.gpkg"  # 200 buildings, 3,600 trips, a grid
MAP = ".citytwin-city-map .js-plotly-plot"
MAP_DRAWN = f"{MAP} .scatterlayer .trace"
SCEN_MAP = ".citytwin-scenario-map .js-plotly-plot"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("appserver")
    data = tmp / "data"  # the default city and the tiny one to pick
    data.mkdir()
    shutil.copy(ROOT / "geodata" / "helsinki.gpkg", data / "helsinki.gpkg")
    shutil.copy(SMALL, data / "dormitory.gpkg")
    srv = AppServer(results=tmp / "results", data=data, log=tmp / "server.log")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _choose(page, select_class: str, option: str) -> None:
    page.click(f".{select_class}")
    page.locator(".menuable__content__active .v-list-item", has_text=option).first.click()
    page.keyboard.press("Escape")


def _click_map_at(page, selector: str, x: float, y: float) -> None:
    """Click the plotly map under ``selector`` at data coordinates (x, y) (metres), once it is
    in view and drawn (its "drawing…" note hidden)."""
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_function(
        """(sel) => { const gd = document.querySelector(sel);
             const note = gd && gd.parentElement.querySelector('.citytwin-plot-loading');
             return note && note.style.display == 'none' && gd._fullLayout; }""",
        arg=selector, timeout=60_000)
    px, py = page.evaluate(
        """([sel, x, y]) => { const gd = document.querySelector(sel);
             const fl = gd._fullLayout, bb = gd.getBoundingClientRect();
             return [bb.left + fl._size.l + fl.xaxis.d2p(x), bb.top + fl._size.t + fl.yaxis.d2p(y)]; }""",
        [selector, x, y])
    page.mouse.click(px, py)


def _street_point(city_file: Path, street: str) -> tuple[float, float]:
    """The midpoint of a link of ``street`` that is the nearest road to its own midpoint."""
    from citytwin.app.data import load_city, load_map_data
    from citytwin.app.maps import nearest_feature

    city, data = load_city(city_file), load_map_data(city_file)
    for r in data.road_mid[data.road_mid["name"] == street].itertuples():
        if nearest_feature(city, data, r.x, r.y, tol_m=3.0, layers=("roads",)) == (
                "road", str(r.edge_id)):
            return float(r.x), float(r.y)
    raise AssertionError(f"no clickable link of {street!r} in {city_file}")


def test_planner_flow(server: AppServer, browser, tmp_path: Path) -> None:
    pages: list = []
    try:
        _planner_flow(server, browser, pages)
    except Exception:
        out = Path(os.environ.get("CITYTWIN_TEST_ARTIFACTS", tmp_path))
        out.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(pages):
            p.screenshot(path=str(out / f"failure-{i}.png"), full_page=True)
        (out / "server.log").write_text(server.log_path.read_text())
        print(f"failure screenshots and server log in {out}")
        raise


def _planner_flow(server: AppServer, browser, pages: list) -> None:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    a = ctx.new_page()
    pages.append(a)
    t0 = time.perf_counter()
    a.goto(server.url)
    a.wait_for_selector(MAP_DRAWN, timeout=90_000)
    print(f"first map drawn after {time.perf_counter() - t0:.1f} s")
    a.wait_for_function("location.search.includes('workspace=w-')", timeout=30_000)
    workspace_url = a.url
    # footprints, not dots: the buildings are filled polygons; a scale bar is drawn
    assert a.locator(f"{MAP} .scatterlayer .trace .js-fill").count() > 0
    assert "m" in (a.locator(f"{MAP} .annotation-text").first.text_content() or "")
    # pick the small city: its map replaces Helsinki's
    _choose(a, "citytwin-city-select", "dormitory.gpkg")
    a.wait_for_selector("text=/ 200 buildings/", timeout=60_000)
    # Scenarios: the shipped baseline, run as shipped
    a.locator(".v-tab", has_text="Scenarios").first.click()
    a.wait_for_selector("text=Loaded shipped scenario 'baseline'", timeout=60_000)
    assert "workspace=" in a.url  # the workspace travels with the page change
    a.click(".citytwin-run-button")
    a.wait_for_selector("text=Started run baseline-s1-1", timeout=60_000)
    # edit a lever in the form: demand scale 1.2
    demand = a.locator(".citytwin-lever-demand_growth")
    demand.locator("input").first.fill("1.2")
    demand.locator(".citytwin-apply-demand_growth").click()
    a.wait_for_selector(".citytwin-lever-demand_growth >> text=Demand scale · set", timeout=30_000)
    # close a street by clicking the map: the middle of a link of "Street H2"
    x, y = _street_point(server.data / "dormitory.gpkg", "Street H2")
    a.wait_for_selector(f"{SCEN_MAP} .scatterlayer .trace", timeout=60_000)
    _click_map_at(a, SCEN_MAP, x, y)
    a.wait_for_selector("text=Closed the street 'Street H2'", timeout=30_000)
    a.wait_for_selector(f"{SCEN_MAP} .legend >> text=closed roads", timeout=30_000)
    # the TOML view shows both edits
    a.locator(".v-expansion-panel-header", has_text="as TOML").click()
    toml = a.locator(".citytwin-toml").inner_text()
    assert 'street = "Street H2"' in toml and "factor = 1.2" in toml
    a.click(".citytwin-run-button")
    a.wait_for_selector("text=Started run baseline-edited-s1-2", timeout=60_000)
    a.wait_for_function("document.querySelectorAll('.citytwin-run-done').length == 2",
                        timeout=300_000)
    assert a.locator(".citytwin-run-failed").count() == 0
    # compare with the baseline: KPI table and the congestion difference map
    a.locator(".v-tab", has_text="Compare").first.click()
    _choose(a, "citytwin-compare-select", "baseline-s1-1")
    _choose(a, "citytwin-compare-select", "baseline-edited-s1-2")
    a.wait_for_function("(document.querySelector('.citytwin-kpi-table thead') || "
                        "{innerText: ''}).innerText.includes('baseline-edited-s1-2')",
                        timeout=90_000)
    header = a.locator(".citytwin-kpi-table table thead").inner_text()
    assert "baseline-s1-1" in header and "Δ baseline-edited-s1-2" in header
    a.locator(".citytwin-diff-kind .v-btn", has_text="congestion").first.click()
    a.wait_for_selector(".citytwin-diff-map .js-plotly-plot .scatterlayer .trace",
                        timeout=90_000)
    legend = a.locator(".citytwin-diff-map .legend").first.text_content() or ""
    assert "pp" in legend and "closed roads" in legend  # B − A classes, the closure on top
    # reload: the runs are listed again from the workspace named in the address
    a.goto(workspace_url.replace("/?", "/scenarios?"))
    a.wait_for_function("document.querySelectorAll('.citytwin-run-done').length == 2",
                        timeout=60_000)
    # another page without ?workspace= gets its own private workspace: none of these runs
    b = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    pages.append(b)
    b.goto(server.url + "scenarios")
    b.wait_for_selector("text=No runs in this workspace yet.", timeout=60_000)
    b.wait_for_function("location.search.includes('workspace=w-')", timeout=30_000)
    assert b.url.split("workspace=")[1] != workspace_url.split("workspace=")[1]
    ctx.close()
