"""Benchmark the app in headless Chromium: first map after page open, scenario and compare
switching, and the map rendering choice.

Runs the shipped baseline and ev_40 scenarios once (into a temporary results folder, as
shared results), starts ``citytwin app`` on the default city and measures with Playwright:

* first map: page navigation start -> City map drawn, in a fresh browser profile each time
  ("cold cache": plotly.min.js downloaded and compiled) and in one profile ("warm cache": a
  planner's second visit), with the server's CPU seconds per page open;
* scenario switch: picking another shipped scenario -> its message and map shown;
* compare switch: changing the compared results (already loaded once) -> KPI table updated.

``--quick`` measures one of each, else the median of 5. ``--profile`` times the server's
steps for the first map in-process (city load, map arrays, figure, JSON). ``--render
N[,N...]`` measures drawing N building footprints (synthetic 12 x 8 m rectangles on a grid)
with plotly's SVG and WebGL polygons and with a matplotlib raster image (the installed
choices; lonboard/pydeck/ipyleaflet are not installed): Python build time, bytes sent,
browser draw time. The load average is printed before and after (the machine is shared:
figures from a loaded machine are upper bounds). ``--shots DIR`` writes a screenshot per
step measured here and then runs the planner-flow browser test, which writes one per planner
step (``flow-NN-*.png``). ``--city FILE`` measures only the first map of another city (e.g.
``citytwin synth --buildings 100000``). Prints figures; asserts nothing.
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

MAP = (".citytwin-city-map canvas.citytwin-canvas[data-drawn], "  # drawn (canvasmap.py)
       # the plotly map of older apps (--code): SVG or WebGL traces
       ".citytwin-city-map .js-plotly-plot .scatterlayer .trace, "
       ".citytwin-city-map .js-plotly-plot .gl-container canvas")


def _descendants(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _browser_cpu_s(exclude: int) -> float:
    """CPU seconds of this process's descendants (Playwright's driver, Chromium and its
    renderers, reaped children included) except the app server's tree."""
    skip = {exclude, *_descendants(exclude)}
    total = 0.0
    for pid in _descendants(os.getpid()):
        if pid in skip:
            continue
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in f[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}" if xs else "-"


def profile(path: Path) -> None:
    """Server-side steps of the first City map, in this process (cold, then cached)."""
    from citytwin.app import data as appdata
    from citytwin.app.canvasmap import city_layers
    from citytwin.app.maps import LAYERS, city_map_data
    from citytwin.city import City

    t = time.perf_counter()
    city = City.from_path(path)
    t_city = time.perf_counter() - t
    t = time.perf_counter()
    md = city_map_data(city)
    t_md = time.perf_counter() - t
    t = time.perf_counter()
    payload = city_layers(md, layers=LAYERS)
    t_lay = time.perf_counter() - t
    t = time.perf_counter()
    appdata.city_layers_cached(path, layers=LAYERS)
    t_c1 = time.perf_counter() - t
    t = time.perf_counter()
    appdata.city_layers_cached(path, layers=LAYERS)
    appdata.city_layers_cached(path, layers=LAYERS)
    t_c2 = (time.perf_counter() - t) / 2
    print(f"server first map, {path.name}: city load {t_city:.2f} s, map arrays {t_md:.2f} s, "
          f"canvas layers {t_lay:.2f} s ({len(payload.buffer) / 1e3:,.0f} kB buffer, "
          f"{len(payload.meta_json) / 1e3:,.0f} kB meta); cached per process: first {t_c1:.2f} s, "
          f"then {t_c2 * 1000:.1f} ms per page")


def render(counts: list[int]) -> None:
    """Footprints drawn three ways (the installed choices), N buildings each."""
    import base64
    import io

    import matplotlib
    import numpy as np
    import plotly.graph_objects as go
    import shapely
    from playwright.sync_api import sync_playwright

    from citytwin.app.maps import polygon_trace, rings_xy
    from citytwin.app.plotview import CONFIG, PLOTLY_DIR

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    page_html = Path(tempfile.mkdtemp()) / "render.html"
    page_html.write_text("<html><body style='margin:0'><div id='g' style='width:1000px'></div>"
                         f"<script src='file://{PLOTLY_DIR}/plotly.min.js'></script></body></html>")
    js = ("async ([t, cfg]) => { const f = JSON.parse(t); const g = document.getElementById('g');"
          " Plotly.purge(g); const t0 = performance.now();"
          " await Plotly.newPlot(g, f.data, f.layout, cfg);"
          " await new Promise(r => requestAnimationFrame(() => r()));"
          " return performance.now() - t0; }")
    img_js = ("async (src) => { const g = document.getElementById('g'); g.innerHTML = '';"
              " const t0 = performance.now(); const im = new Image(); im.src = src;"
              " await im.decode(); g.appendChild(im); return performance.now() - t0; }")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_ARGS + ["--allow-file-access-from-files"])
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.goto(f"file://{page_html}")
        page.wait_for_function("window.Plotly !== undefined")
        for n in counts:
            side = int(np.ceil(np.sqrt(n)))
            i = np.arange(n)
            x0, y0 = (i % side) * 20.0, (i // side) * 16.0
            geoms = shapely.box(x0, y0, x0 + 12, y0 + 8)
            t = time.perf_counter()
            fx, fy, _ = rings_xy(geoms)
            t_rings = time.perf_counter() - t
            for label, gl in (("plotly SVG polygons", False), ("plotly WebGL polygons", True)):
                t = time.perf_counter()
                fig = go.Figure([polygon_trace(fx, fy, name="b", color="#1f78b4", gl=gl)])
                fig.update_layout(height=700, yaxis=dict(scaleanchor="x"))
                text = fig.to_json()
                t_py = time.perf_counter() - t + t_rings
                ms = [page.evaluate(js, [text, CONFIG]) for _ in range(2)]
                print(f"render {n:>7,} footprints, {label}: Python {t_py:.2f} s, "
                      f"{len(text) / 1e6:.2f} MB, browser draw {min(ms) / 1000:.2f} s")
            t = time.perf_counter()
            figm, ax = plt.subplots(figsize=(10, 7), dpi=100)
            ax.add_collection(PolyCollection([np.c_[[a, a + 12, a + 12, a], [b, b, b + 8, b + 8]]
                                              for a, b in zip(x0, y0, strict=True)],
                                             facecolor="#1f78b4", edgecolor="#616161",
                                             linewidth=0.2))
            ax.autoscale()
            ax.set_aspect("equal")
            ax.axis("off")
            buf = io.BytesIO()
            figm.savefig(buf, format="png")
            plt.close(figm)
            src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
            t_py = time.perf_counter() - t
            ms = [page.evaluate(img_js, src) for _ in range(2)]
            print(f"render {n:>7,} footprints, matplotlib PNG (no zoom detail, no clicks): "
                  f"Python {t_py:.2f} s, {len(src) / 1e6:.2f} MB, browser draw "
                  f"{min(ms) / 1000:.2f} s")
        browser.close()


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
    ap.add_argument("--code", type=Path, default=None,
                    help="serve the citytwin package in this folder instead (e.g. an older "
                         "commit: git archive REV citytwin | tar -x -C DIR)")
    ap.add_argument("--city", type=Path, default=None,
                    help="serve this city file as the default city (e.g. the 100k synthetic "
                         "city: citytwin synth --buildings 100000); implies --first-map-only")
    ap.add_argument("--first-map-only", action="store_true",
                    help="measure only the page opens (e.g. to compare with an older app)")
    ap.add_argument("--profile", action="store_true",
                    help="time the server's first-map steps in-process, then stop")
    ap.add_argument("--render", default=None,
                    help="footprint counts to draw with each renderer (e.g. 1000,10000,100000)")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    print("load average (1, 5, 15 min) before: " + _load())
    if args.profile or args.render:
        if args.profile:
            profile(ROOT / "geodata" / "helsinki.gpkg")
        if args.render:
            render([int(v) for v in args.render.split(",")])
        print("load average (1, 5, 15 min) after: " + _load())
        return 0
    if args.city is not None:
        args.first_map_only = True
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
    data_dir = city_name = None
    if args.city is not None:  # a folder holding just that city (no runs needed)
        data_dir = tmp / "data"
        data_dir.mkdir()
        shutil.copy2(args.city, data_dir / args.city.name)  # the app refuses symlinks out
        city_name = args.city.name
    elif args.results:
        for name in ("baseline", "ev_40"):
            shutil.copytree(args.results / name, results / name)
    else:
        _runs(results, ["baseline", "ev_40"])
    if args.city is None:
        shutil.copytree(results / "baseline", results / "baseline_copy")
    t = time.perf_counter()
    srv = AppServer(results=results, log=tmp / "server.log", code=args.code, data=data_dir,
                    city=city_name)
    print(f"server answering after {time.perf_counter() - t:.1f} s")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
            n = 1 if args.quick else 5
            cold, warm, cpu, bcpu = [], [], [], []
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            for i in range(n + 1):  # the first page open of all is the server's cold one
                for kind in ("cold", "warm"):
                    page = (browser.new_page(viewport={"width": 1400, "height": 1000})
                            if kind == "cold" else ctx.new_page())
                    b0 = _browser_cpu_s(srv.proc.pid)
                    c0, t = _cpu_s(srv.proc.pid), time.perf_counter()
                    page.goto(srv.url)
                    page.wait_for_selector(MAP, timeout=120_000)
                    dt, dc = time.perf_counter() - t, _cpu_s(srv.proc.pid) - c0
                    db = _browser_cpu_s(srv.proc.pid) - b0
                    print(f"first map, page open #{i + 1} ({kind} browser cache): {dt:.2f} s "
                          f"wall, server CPU {dc:.2f} s, browser CPU {db:.2f} s")
                    if i == 0 and kind == "cold" and not args.first_map_only:
                        shot(page, "1-city-map")
                        page.locator(".v-tab", has_text="Scenarios").first.click()
                        page.wait_for_selector(".citytwin-scenario-map canvas[data-drawn]",
                                               timeout=60_000)
                        shot(page, "2-scenario-levers-and-map")
                        sc = []
                        for j in range(n):
                            name = ("new_fire_station", "baseline")[j % 2]
                            t = time.perf_counter()
                            _choose(page, "citytwin-scenario-select", name)
                            page.wait_for_selector(f"text=Loaded shipped scenario '{name}'",
                                                   timeout=60_000)
                            page.wait_for_function(
                                "() => { const g = document.querySelector('.citytwin-scenario-map"
                                " .citytwin-plot-loading'); return g && g.style.display == 'none'; }",
                                timeout=60_000)
                            sc.append(time.perf_counter() - t)
                            print(f"scenario switch #{j + 1} (-> {name}: message and map): "
                                  f"{sc[-1]:.2f} s")
                        print(f"scenario switch, median of {len(sc)}: {_med(sc)} s")
                    elif i > 0:
                        (cold if kind == "cold" else warm).append(dt)
                        cpu.append(dc)
                        bcpu.append(db)
                    page.close()
            ctx.close()
            print(f"first map, median of {len(cold)} page opens: cold browser cache "
                  f"{_med(cold)} s, warm browser cache {_med(warm)} s; per page open: server "
                  f"CPU {_med(cpu)} s, browser CPU {_med(bcpu)} s")
            if args.first_map_only:
                browser.close()
                return 0
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
    if shots and not args.first_map_only:
        # the whole planner flow (street by name, stations by click, both runs, compare,
        # difference maps, reload, a 2 x 2 experiment and a cancelled one) on the small city:
        # the browser test writes a flow-NN-*.png per step
        import subprocess

        print("planner flow screenshots: tests/app/test_browser.py::test_planner_flow")
        rc = subprocess.call([sys.executable, "-m", "pytest", "-q", "-x", "-s",
                              str(ROOT / "tests" / "app" / "test_browser.py")
                              + "::test_planner_flow"],
                             env={**os.environ, "CITYTWIN_SHOTS": str(shots.resolve())},
                             cwd=ROOT)
        print(f"planner flow: {'passed' if rc == 0 else f'FAILED (exit {rc})'}; "
              f"screenshots in {shots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
