"""A plotly figure in the browser without plotly's FigureWidget, and clicks anywhere on a map.

plotly's ``FigureWidget`` is an anywidget whose JavaScript module (the whole of plotly.js,
4.96 MB) is sent over the page's websocket for every page and then evaluated: measured with
``benchmarks/app.py`` that was most of the 12-16 s from page open to the first map.
:class:`PlotView` is a small anywidget of our own: its module is a few lines that load
``plotly.min.js`` once per browser from the app's static assets (a versioned URL, so the
browser keeps it and the page only parses it) and draw with ``Plotly.react``.

A click on the plot area (not a drag) is sent to Python as data coordinates
``{"x", "y", "m_per_px"}``, wherever it lands, so a map can place a station on an empty
spot or find the nearest road, building or transformer itself (:func:`Plot`'s
``on_click``). Wheel zoom and pan are on.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import plotly
import plotly.graph_objects as go
import solara
import traitlets

from citytwin.app.widgets import use_click_handler

__all__ = ["PlotView", "Plot", "PLOTLY_DIR", "plotly_src", "register_assets", "figure_json"]

#: The folder holding plotly's own ``plotly.min.js`` (served as a static asset).
PLOTLY_DIR = Path(plotly.__file__).resolve().parent / "package_data"

_ESM = r"""
function loadPlotly(src) {
  if (window.Plotly && window.Plotly.react) return Promise.resolve(window.Plotly);
  if (!window.__citytwinPlotly) {
    window.__citytwinPlotly = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.async = true;
      s.onload = () => resolve(window.Plotly);
      s.onerror = () => { window.__citytwinPlotly = null; reject(new Error("could not load " + src)); };
      document.head.appendChild(s);
    });
  }
  return window.__citytwinPlotly;
}

export default {
  async render({ model, el }) {
    el.style.position = "relative";
    el.style.width = "100%";
    const spin = document.createElement("div");
    spin.className = "citytwin-plot-loading";
    spin.textContent = "drawing…";
    spin.style.cssText = "position:absolute;top:8px;right:12px;z-index:5;padding:2px 8px;" +
      "background:#fff8;border-radius:4px;font-size:12px;color:#555";
    const box = document.createElement("div");
    box.style.width = "100%";
    el.appendChild(spin);
    el.appendChild(box);
    const root = (window.solara && window.solara.rootPath) || "";
    const t0 = performance.now();
    const timing = { start_ms: t0 };
    (window.__citytwinPlots = window.__citytwinPlots || []).push(timing);
    let Plotly;
    try {
      Plotly = await loadPlotly(root + "/" + model.get("src"));
    } catch (e) {
      spin.textContent = String(e);
      return;
    }
    timing.plotly_ready_ms = performance.now();
    let seq = 0, baseText = null, base = null;
    const draw = async () => {
      const mine = ++seq;
      spin.style.display = "block";
      const text = model.get("figure_json") || "{}";
      if (text !== baseText) { base = JSON.parse(text); baseText = text; }
      const extra = JSON.parse(model.get("overlay_json") || "[]");
      timing.parsed_ms = performance.now();
      const data = [...(base.data || []).map((t) => ({ ...t })), ...extra];
      await Plotly.react(box, data, { ...(base.layout || {}) }, model.get("config") || {});
      if (mine === seq) {
        spin.style.display = "none";
        box.dataset.drawn = String(mine);
      }
    };
    // a map's scale bar (layout.meta.citytwin_scalebar): an HTML bar in the plot's lower
    // left, re-measured after every pan or zoom, so it is never panned off the plot
    const bar = document.createElement("div");
    bar.className = "citytwin-scale-bar";
    bar.style.cssText = "position:absolute;z-index:4;display:none;font-size:11px;" +
      "text-align:center;background:#fffc;padding:0 4px;pointer-events:none";
    el.appendChild(bar);
    const placeBar = () => {
      const fl = box._fullLayout;
      if (!fl || !fl.xaxis || !(fl.meta && fl.meta.citytwin_scalebar)) { bar.style.display = "none"; return; }
      const mpp = Math.abs(fl.xaxis.p2d(1) - fl.xaxis.p2d(0));
      if (!(mpp > 0)) return;
      const want = 120 * mpp, p = Math.pow(10, Math.floor(Math.log10(want)));
      const m = [5, 2, 1].map((k) => k * p).find((v) => v <= want) || p;
      const px = m / mpp;
      bar.innerHTML = (m >= 1000 ? m / 1000 + " km" : m + " m") +
        "<div style='height:0;border-top:3px solid #000;width:" + px.toFixed(0) + "px'></div>";
      bar.style.left = (fl._size.l + 8) + "px";
      bar.style.top = (fl._size.t + fl._size.h - 30) + "px";
      bar.style.display = "block";
    };
    const onChange = () => { draw(); };
    model.on("change:figure_json", onChange);
    model.on("change:overlay_json", onChange);
    await draw();
    timing.drawn_ms = performance.now();
    placeBar();
    box.on("plotly_afterplot", placeBar);
    box.on("plotly_relayout", placeBar);
    let down = null;
    // plotly covers the page with a "drag cover" on mousedown, so the mouseup lands there:
    // listen on the document (capture), for presses that started on this plot
    const onDown = (e) => { down = [e.clientX, e.clientY]; };
    box.addEventListener("mousedown", onDown, true);
    const onUp = (e) => {
      const d = down;
      down = null;
      if (!d || Math.hypot(e.clientX - d[0], e.clientY - d[1]) > 4) return;
      const fl = box._fullLayout;
      if (!fl || !fl.xaxis || !fl.yaxis) return;
      const bb = box.getBoundingClientRect();
      const px = e.clientX - bb.left - fl._size.l, py = e.clientY - bb.top - fl._size.t;
      if (px < 0 || py < 0 || px > fl._size.w || py > fl._size.h) return;
      const xa = fl.xaxis, ya = fl.yaxis;
      model.send({ event: "click", x: xa.p2d(px), y: ya.p2d(py),
                   m_per_px: Math.abs(xa.p2d(1) - xa.p2d(0)) });
    };
    document.addEventListener("mouseup", onUp, true);
    return () => {
      document.removeEventListener("mouseup", onUp, true);
      box.removeEventListener("mousedown", onDown, true);
      model.off("change:figure_json", onChange);
      model.off("change:overlay_json", onChange);
      Plotly.purge(box);
    };
  },
};
"""


class PlotView(anywidget.AnyWidget):
    """A plotly figure (``figure_json``: ``fig.to_json()``) drawn by the browser's plotly.js."""

    _esm = _ESM
    figure_json = traitlets.Unicode("{}").tag(sync=True)
    overlay_json = traitlets.Unicode("[]").tag(sync=True)  # traces drawn on top of the figure
    config = traitlets.Dict({}).tag(sync=True)
    src = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.figure: go.Figure | None = None  # the Python figure (tests, click lookups)
        self.overlays: list[Any] = []
        self.click_handler: Callable[[float, float, float], None] | None = None
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            self.click(float(content["x"]), float(content["y"]),
                       float(content.get("m_per_px") or 1.0))

    def click(self, x: float, y: float, m_per_px: float = 1.0) -> None:
        """A click at data coordinates (x, y) (what the browser sends; tests call it too)."""
        if self.click_handler is not None:
            self.click_handler(x, y, m_per_px)


def plotly_src() -> str:
    """The URL (relative to the server root) of plotly.min.js (a browser keeps it and
    revalidates it with its ETag: a 304, not 4.8 MB, on the next page)."""
    return "static/assets/plotly.min.js"


def register_assets() -> None:
    """Serve plotly's folder as Solara static assets (``/static/assets/plotly.min.js``)."""
    from solara.server import settings

    locations = settings.assets.extra_locations
    if str(PLOTLY_DIR) not in locations:
        locations.append(str(PLOTLY_DIR))


def overlay_key(traces: list[Any]) -> str:
    """A cheap identity of a list of traces (their JSON; overlays are a few small traces)."""
    return "|".join(t.to_json() for t in traces)


_json_lock = threading.Lock()
_json: OrderedDict[int, tuple[go.Figure, str]] = OrderedDict()

CONFIG = {"scrollZoom": True, "displaylogo": False, "responsive": True,
          "modeBarButtonsToRemove": ["select2d", "lasso2d", "toImage"]}


def figure_json(fig: go.Figure) -> str:
    """``fig.to_json()``, kept for the last 64 figures (the cached city figures are reused by
    every page, so each is serialised once)."""
    key = id(fig)
    with _json_lock:
        hit = _json.get(key)
        if hit is not None and hit[0] is fig:
            _json.move_to_end(key)
            return hit[1]
    text = fig.to_json()
    with _json_lock:
        _json[key] = (fig, text)
        while len(_json) > 64:
            _json.popitem(last=False)
    return text


def overlay_json(traces: list[Any]) -> str:
    """A list of plotly traces as JSON (drawn on top of a cached figure)."""
    if not traces:
        return "[]"
    from plotly.io.json import to_json_plotly

    return str(to_json_plotly([t.to_plotly_json() for t in traces]))


@solara.component
def Plot(fig: go.Figure, on_click: Callable[[float, float, float], None] | None = None,
         config: dict[str, Any] | None = None, overlays: list[Any] | None = None):
    """Draw ``fig`` with ``overlays`` (traces) on top; ``on_click(x, y, metres_per_pixel)``
    gets clicks in data coordinates. A cached ``fig`` is serialised once; changing only the
    overlays sends only them."""
    text = figure_json(fig)
    over = overlays or []
    extra = solara.use_memo(lambda: overlay_json(over), [overlay_key(over)])
    el = PlotView.element(figure_json=text, overlay_json=extra, src=plotly_src(),
                          config=config or CONFIG)
    use_click_handler(el, PlotView, on_click)

    def keep_figure() -> None:
        w = solara.get_widget(el)
        assert isinstance(w, PlotView)
        w.figure = fig
        w.overlays = list(over)

    solara.use_effect(keep_figure, [text, extra])
    return el
