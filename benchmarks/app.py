"""Benchmark the app in headless Chromium: first map after page open, compare switching.

Runs the shipped baseline and ev_40 scenarios once (into a temporary results folder, as
shared results), starts ``citytwin app`` on the default city and measures with Playwright:

* first map: page navigation start -> City map's WebGL canvas present (cold and warm page);
* compare switch: changing the compared results (already loaded once) -> KPI table updated.

``--quick`` measures one warm page open and one switch. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
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
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

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
            opens = 1 if args.quick else 3
            for i in range(opens):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                t = time.perf_counter()
                page.goto(srv.url)
                page.wait_for_selector(MAP, timeout=120_000)
                print(f"first map visible (page open #{i + 1}): {time.perf_counter() - t:.2f} s")
                page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(srv.url + "compare")
            page.wait_for_selector(".citytwin-compare-select", timeout=120_000)
            t = time.perf_counter()
            _choose(page, "citytwin-compare-select", "baseline")
            _choose(page, "citytwin-compare-select", "ev_40")
            page.wait_for_selector(".citytwin-kpi-table table thead >> text=ev_40",
                                   timeout=120_000)
            print(f"first comparison (load + table): {time.perf_counter() - t:.2f} s")
            switches = 1 if args.quick else 3
            for i in range(switches):
                _choose(page, "citytwin-compare-select", "ev_40")  # deselect (not timed)
                page.wait_for_selector(".citytwin-kpi-table table thead >> text=ev_40",
                                       state="detached", timeout=60_000)
                page.click(".citytwin-compare-select")
                option = page.locator(".menuable__content__active .v-list-item",
                                      has_text="baseline_copy").first
                option.wait_for(timeout=30_000)
                t = time.perf_counter()  # from the click that changes the comparison ...
                option.click()
                page.wait_for_selector(".citytwin-kpi-table table thead >> text=baseline_copy",
                                       timeout=60_000)  # ... to the KPI table showing it
                print(f"compare switch #{i + 1} (cached results, click -> table): "
                      f"{time.perf_counter() - t:.2f} s")
                page.keyboard.press("Escape")
                _choose(page, "citytwin-compare-select", "baseline_copy")
                _choose(page, "citytwin-compare-select", "ev_40")
                page.wait_for_selector(".citytwin-kpi-table table thead >> text=ev_40",
                                       timeout=60_000)
            t = time.perf_counter()
            page.locator(".v-btn", has_text="congestion").first.click()
            page.wait_for_function(
                "document.querySelectorAll('.citytwin-result-maps .js-plotly-plot').length >= 2",
                timeout=120_000)
            print(f"side-by-side congestion maps shown: {time.perf_counter() - t:.2f} s")
            if args.screenshot:
                page.wait_for_timeout(1000)
                page.screenshot(path=str(args.screenshot), full_page=True)
                print(f"screenshot: {args.screenshot}")
            browser.close()
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
