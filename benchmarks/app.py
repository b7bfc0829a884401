"""Benchmark the app in headless Chromium: first map after page open, compare switching.

Runs the shipped baseline and ev_40 scenarios once (into a temporary results folder, as
shared results), starts ``citytwin app`` on the default city and measures with Playwright:

* first map: page navigation start -> City map's WebGL canvas present (cold and warm page);
* compare switch: changing the compared results (already loaded once) -> KPI table updated.

``--quick`` measures one warm page open and one switch, else the median of 5 each. The load
average is printed before and after (the machine is shared: figures from a loaded machine
are upper bounds). ``--shots DIR`` writes a screenshot per planner step (city map, levers,
KPI table, difference map, side-by-side maps). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "app"))

from _appharness import CHROMIUM, CHROMIUM_ARGS, AppServer  # noqa: E402

MAP = ".citytwin-city-map .js-plotly-plot .gl-container canvas"


def _runs(results: Path, names: list[str]) -> None:
    from citytwin.model import run_scenario

    for name in names:
        t = time.perf_counter()
        run_scenario(ROOT / "scenarios" / f"{name}.toml", out=results / name)
        print(f"run {name}: {time.perf_counter() - t:.1f} s")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _thead(page, text: str, *, present: bool = True, timeout: int = 60_000) -> None:
    """Wait until the KPI table's header does (or does not) name ``text``."""
    js = ("([t, p]) => { const h = document.querySelector('.citytwin-kpi-table thead'); "
          "return (h !== null && h.innerText.includes(t)) === p; }")
    page.wait_for_function(js, arg=[text, present], timeout=timeout)


def _choose(page, cls: str, option: str) -> None:
    page.click(f".{cls}")
    page.locator(".menuable__content__active .v-list-item", has_text=option).first.click()
    page.keyboard.press("Escape")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--results", type=Path, default=None,
                    help="reuse a results folder holding baseline/ and ev_40/ runs")
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--shots", type=Path, default=None,
                    help="write one screenshot per planner step into this folder")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    print("load average (1, 5, 15 min) before: " + _load())
    shots = args.shots
    if shots:
        shots.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str) -> None:
        if shots:
            page.wait_for_timeout(800)
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            print(f"screenshot {shots / (name + '.png')}")

    tmp = Path(tempfile.mkdtemp(prefix="citytwin-app-bench-"))
    results = tmp / "results"
    results.mkdir()
    if args.results:
        for name in ("baseline", "ev_40"):
            shutil.copytree(args.results / name, results / name)
    else:
        _runs(results, ["baseline", "ev_40"])
    shutil.copytree(results / "baseline", results / "baseline_copy")
    t = time.perf_counter()
    srv = AppServer(results=results, log=tmp / "server.log")
    print(f"server answering after {time.perf_counter() - t:.1f} s")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            opens = 1 if args.quick else 6  # the first is the cold one
            times = []
            for i in range(opens):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t = time.perf_counter()
                page.goto(srv.url)
                page.wait_for_selector(MAP, timeout=120_000)
                times.append(time.perf_counter() - t)
                print(f"first map visible (page open #{i + 1}): {times[-1]:.2f} s")
                if i == 0:
                    shot(page, "1-city-map")
                    page.locator(".v-tab", has_text="Scenarios").first.click()
                    page.wait_for_selector(".citytwin-lever", timeout=60_000)
                    shot(page, "2-scenario-levers")
                page.close()
            warm = times[1:] or times
            print(f"first map, median of {len(warm)} warm page opens: "
                  f"{statistics.median(warm):.2f} s (cold: {times[0]:.2f} s)")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(srv.url + "compare")
            page.wait_for_selector(".citytwin-compare-select", timeout=120_000)
            t = time.perf_counter()
            _choose(page, "citytwin-compare-select", "baseline")
            _choose(page, "citytwin-compare-select", "ev_40")
            _thead(page, "ev_40", timeout=120_000)
            print(f"first comparison (load + table): {time.perf_counter() - t:.2f} s")
            shot(page, "3-compare-kpis")
            switches = 1 if args.quick else 5
            sw = []
            for i in range(switches):
                _choose(page, "citytwin-compare-select", "ev_40")  # deselect (not timed)
                _thead(page, "ev_40", present=False)
                page.click(".citytwin-compare-select")
                option = page.locator(".menuable__content__active .v-list-item",
                                      has_text="baseline_copy").first
                option.wait_for(timeout=30_000)
                t = time.perf_counter()  # from the click that changes the comparison ...
                option.click()
                _thead(page, "baseline_copy")  # ... to the KPI table showing it
                sw.append(time.perf_counter() - t)
                print(f"compare switch #{i + 1} (cached results, click -> table): "
                      f"{sw[-1]:.2f} s")
                page.keyboard.press("Escape")
                _choose(page, "citytwin-compare-select", "baseline_copy")
                _choose(page, "citytwin-compare-select", "ev_40")
                _thead(page, "ev_40")
            print(f"compare switch, median of {len(sw)}: {statistics.median(sw):.2f} s")
            t = time.perf_counter()
            page.locator(".citytwin-diff-kind .v-btn", has_text="congestion").first.click()
            page.wait_for_selector(".citytwin-diff-map .js-plotly-plot", timeout=120_000)
            print(f"difference map (congestion) shown: {time.perf_counter() - t:.2f} s")
            shot(page, "4-difference-map")
            t = time.perf_counter()
            page.locator(".citytwin-map-kind .v-btn", has_text="congestion").first.click()
            page.wait_for_function(
                "document.querySelectorAll('.citytwin-result-maps .js-plotly-plot').length >= 2",
                timeout=120_000)
            print(f"side-by-side congestion maps shown: {time.perf_counter() - t:.2f} s")
            shot(page, "5-side-by-side-maps")
            if args.screenshot:
                page.wait_for_timeout(1000)
                page.screenshot(path=str(args.screenshot), full_page=True)
                print(f"screenshot: {args.screenshot}")
            browser.close()
    finally:
        print("load average (1, 5, 15 min) after: " + _load())
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
