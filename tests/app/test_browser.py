"""The app in a real (headless) Chromium: City map, two runs, Compare with the difference map,
reload finds the runs, workspaces are apart."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ._appharness import CHROMIUM, CHROMIUM_ARGS, ROOT, AppServer

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not installed"),
    pytest.mark.skipif(not (ROOT / "scenarios" / "ev_40.toml").is_file(),
                       reason="shipped scenarios baseline/ev_40 not present"),
]

MAP = ".citytwin-city-map .js-plotly-plot"
MAP_DRAWN = f"{MAP} .gl-container canvas, {MAP} .scatterlayer .trace"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("appserver")
    srv = AppServer(results=tmp / "results", log=tmp / "server.log")
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


def test_run_two_scenarios_and_compare(server: AppServer, browser, tmp_path: Path) -> None:
    pages: list = []
    try:
        _scenario_flow(server, browser, tmp_path, pages)
    except Exception:
        out = Path(os.environ.get("CITYTWIN_TEST_ARTIFACTS", tmp_path))
        out.mkdir(parents=True, exist_ok=True)
        for i, p in enumerate(pages):
            p.screenshot(path=str(out / f"failure-{i}.png"), full_page=True)
        (out / "server.log").write_text(server.log_path.read_text())
        print(f"failure screenshots and server log in {out}")
        raise


def _scenario_flow(server: AppServer, browser, tmp_path: Path, pages: list) -> None:
    ctx_a = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx_b = browser.new_context(viewport={"width": 1400, "height": 1000})
    a, b = ctx_a.new_page(), ctx_b.new_page()
    pages.extend([a, b])
    t0 = time.perf_counter()
    a.goto(server.url)
    a.wait_for_selector(MAP_DRAWN, timeout=90_000)
    first_map_s = time.perf_counter() - t0
    b.goto(server.url + "scenarios?workspace=other")  # another workspace: none of A's runs
    # user A: run the shipped baseline and the EV scenario on the default city
    a.locator(".v-tab", has_text="Scenarios").first.click()
    a.wait_for_selector(".citytwin-run-button", timeout=60_000)
    a.wait_for_selector("text=Loaded shipped scenario 'baseline'", timeout=60_000)
    a.click(".citytwin-run-button")
    a.wait_for_selector("text=Started run baseline-s1-1", timeout=60_000)
    _choose(a, "citytwin-scenario-select", "ev_40")
    a.wait_for_selector("text=Loaded shipped scenario 'ev_40'", timeout=60_000)
    a.click(".citytwin-run-button")
    a.wait_for_selector("text=Started run ev_40-s1-2", timeout=60_000)
    a.wait_for_selector(".citytwin-run-running .v-progress-linear", timeout=30_000)
    b.wait_for_selector("text=No runs in this workspace yet.", timeout=60_000)
    a.wait_for_function("document.querySelectorAll('.citytwin-run-done').length == 2",
                        timeout=300_000)
    assert a.locator(".citytwin-run-failed").count() == 0
    # user B sees none of A's runs, neither on Scenarios nor on Compare
    assert b.locator(".citytwin-run").count() == 0
    b.locator(".v-tab", has_text="Compare").first.click()
    b.wait_for_selector(".citytwin-compare-select", timeout=60_000)
    b.click(".citytwin-compare-select")
    assert b.locator(".menuable__content__active .v-list-item", has_text="baseline-s1").count() == 0
    # user A compares the two runs
    a.locator(".v-tab", has_text="Compare").first.click()
    _choose(a, "citytwin-compare-select", "baseline-s1-1")
    _choose(a, "citytwin-compare-select", "ev_40-s1-2")
    a.wait_for_function("(document.querySelector('.citytwin-kpi-table thead') || "
                        "{innerText: ''}).innerText.includes('ev_40-s1-2')", timeout=90_000)
    table = a.locator(".citytwin-kpi-table table")
    header = table.locator("thead").inner_text()
    assert "baseline-s1-1" in header and "ev_40-s1-2" in header
    row = table.locator("tr", has_text="EV kilometres").first.inner_text()
    assert any(ch.isdigit() for ch in row) and "%" in row and "km" in row
    # the difference map B - A is drawn (legend of the congestion change in pp)
    a.locator(".citytwin-diff-kind .v-btn", has_text="congestion").first.click()
    a.wait_for_selector(".citytwin-diff-map .js-plotly-plot .scatterlayer .trace",
                        timeout=90_000)
    assert "pp" in (a.locator(".citytwin-diff-map .legend").first.text_content() or "")
    a.wait_for_selector(".citytwin-charts .js-plotly-plot .scatterlayer .trace",
                        timeout=60_000)
    shot = tmp_path / "compare.png"
    a.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"first map visible after {first_map_s:.1f} s; screenshot {shot}")
    # reload: the runs are listed again from the workspace folder
    a.reload()
    a.locator(".v-tab", has_text="Scenarios").first.click()
    a.wait_for_function("document.querySelectorAll('.citytwin-run-done').length == 2",
                        timeout=60_000)
    assert "baseline-s1-1" in a.locator(".citytwin-run-done").all_inner_texts()[0] + \
        a.locator(".citytwin-run-done").all_inner_texts()[1]
    ctx_a.close()
    ctx_b.close()
