"""The city map drawn by a small canvas renderer of our own (no plotly.js on the map pages).

Measured with ``benchmarks/app.py``: of the 5-14 s from page open to the first City map,
2-3 s were the browser evaluating plotly.min.js (4.8 MB) and 0.5-1 s plotly drawing its SVG,
and 100k footprints were a PNG that pixelated when zoomed. Here the city's layers are sent
once per page as one binary buffer of float32 coordinates (relative to the city's lower
left corner) with a small JSON description of each layer; the browser keeps one ``Path2D``
per layer and redraws it under a new transform when the planner pans (drag) or zooms
(wheel, double click resets), so footprints stay sharp at any zoom. The scale bar is drawn
in screen space: it stays in the lower left whatever the view. A click that is not a drag
is sent to Python in the city's metres (``{"x", "y", "m_per_px"}``), as
:class:`citytwin.app.plotview.PlotView` does, so the same click handlers work.

Overlays (a scenario's interventions) are plotly traces converted to small JSON layers
(:func:`trace_layers`); changing them sends only them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anywidget
import numpy as np
import solara
import traitlets

from citytwin.app.maps import (
    BASEMAP_STYLE,
    FACILITY_STYLE,
    LAYERS,
    POWER_STYLE,
    CityMapData,
    _segments,
    footprint_classes,
)
from citytwin.app.widgets import use_click_handler
from citytwin.errors import InputError

__all__ = ["CanvasMap", "MapPayload", "city_layers", "trace_layers", "Map"]

_ESM = r"""
function f32(v) {
  if (!v) return new Float32Array(0);
  if (v instanceof Float32Array) return v;
  const buf = v.buffer ? v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) : v;
  return new Float32Array(buf);
}

function symbolPath(ctx, sym, x, y, r) {
  ctx.beginPath();
  if (sym === "square") { ctx.rect(x - r, y - r, 2 * r, 2 * r); }
  else if (sym === "diamond") { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y); ctx.lineTo(x, y + r); ctx.lineTo(x - r, y); ctx.closePath(); }
  else if (sym === "triangle-up") { ctx.moveTo(x, y - r); ctx.lineTo(x + r, y + r); ctx.lineTo(x - r, y + r); ctx.closePath(); }
  else if (sym === "star") {
    for (let k = 0; k < 10; k++) {
      const a = -Math.PI / 2 + k * Math.PI / 5, rr = k % 2 ? r * 0.45 : r;
      const px = x + rr * Math.cos(a), py = y + rr * Math.sin(a);
      k ? ctx.lineTo(px, py) : ctx.moveTo(px, py);
    }
    ctx.closePath();
  } else if (sym === "cross" || sym === "x") {
    const w = r * 0.35, rot = sym === "x" ? Math.PI / 4 : 0;
    const pts = [[-w, -r], [w, -r], [w, -w], [r, -w], [r, w], [w, w], [w, r], [-w, r], [-w, w], [-r, w], [-r, -w], [-w, -w]];
    pts.forEach(([a, b], k) => {
      const px = x + a * Math.cos(rot) - b * Math.sin(rot), py = y + a * Math.sin(rot) + b * Math.cos(rot);
      k ? ctx.lineTo(px, py) : ctx.moveTo(px, py);
    });
    ctx.closePath();
  } else { ctx.arc(x, y, r, 0, 2 * Math.PI); }
}

function niceLength(m) {
  const p = Math.pow(10, Math.floor(Math.log10(m)));
  for (const k of [5, 2, 1]) if (k * p <= m) return k * p;
  return p;
}

export default {
  render({ model, el }) {
    el.style.position = "relative";
    el.style.width = "100%";
    const spin = document.createElement("div");
    spin.className = "citytwin-plot-loading";
    spin.textContent = "drawing…";
    spin.style.cssText = "position:absolute;top:8px;right:12px;z-index:5;padding:2px 8px;" +
      "background:#fff8;border-radius:4px;font-size:12px;color:#555";
    const cv = document.createElement("canvas");
    cv.className = "citytwin-canvas";
    cv.style.cssText = "width:100%;display:block;cursor:grab;touch-action:none;background:#fff";
    const legend = document.createElement("div");
    legend.className = "citytwin-map-legend";
    legend.style.cssText = "display:flex;flex-wrap:wrap;gap:2px 12px;font-size:12px;" +
      "color:#333;padding:2px 4px";
    el.appendChild(spin);
    el.appendChild(legend);
    el.appendChild(cv);
    const timing = { start_ms: performance.now() };
    (window.__citytwinPlots = window.__citytwinPlots || []).push(timing);
    let meta = null, layers = [], overlays = [], view = null, extentKey = "", seq = 0;

    // a Path2D from an SVG path string: Chromium builds it natively in linear time, while
    // moveTo/lineTo calls on a Path2D grew quadratically (measured: 100k footprints 80 s
    // that way, 0.4 s this way; filling it then takes ~10 ms)
    const pathOf = (L) => {
      const x = L.x, y = L.y, n = x.length, poly = L.kind !== "line", parts = [];
      let open = false;
      for (let i = 0; i < n; i++) {
        const a = x[i];
        if (a !== a) { if (open && poly) parts.push("Z"); open = false; continue; }
        parts.push((open ? "L" : "M") + a.toFixed(1) + " " + y[i].toFixed(1));
        open = true;
      }
      if (open && poly) parts.push("Z");
      return new Path2D(parts.join(""));
    };

    const load = () => {
      meta = JSON.parse(model.get("meta_json") || "{}");
      const buf = f32(model.get("buffer"));
      layers = (meta.layers || []).map((L) => {
        const out = { ...L, x: buf.subarray(L.off, L.off + L.n), y: buf.subarray(L.off + L.n, L.off + 2 * L.n) };
        if (L.kind !== "points") out.path = pathOf(out);
        return out;
      });
      const key = JSON.stringify(meta.extent || []);
      if (key !== extentKey) { view = null; extentKey = key; }
      loadOverlays();
      legend.innerHTML = "";
      [...layers, ...overlays].filter((L) => L.legend).forEach((L) => {
        const s = document.createElement("span");
        const sw = document.createElement("span");
        sw.style.cssText = "display:inline-block;width:12px;height:" + (L.kind === "line" ? "3px" : "10px") +
          ";margin-right:4px;vertical-align:middle;background:" + (L.fill || L.color);
        s.appendChild(sw);
        s.appendChild(document.createTextNode(L.name));
        legend.appendChild(s);
      });
    };
    const loadOverlays = () => {
      const o = (meta && meta.origin) || [0, 0];
      overlays = JSON.parse(model.get("overlay_json") || "[]").map((L) => {
        const out = { ...L, x: Float32Array.from(L.x, (v) => (v === null ? NaN : v - o[0])),
                      y: Float32Array.from(L.y, (v) => (v === null ? NaN : v - o[1])) };
        if (L.kind !== "points") out.path = pathOf(out);
        return out;
      });
    };

    const size = () => {
      const w = Math.max(cv.clientWidth || el.clientWidth || 600, 50);
      const h = model.get("height") || 620;
      const dpr = window.devicePixelRatio || 1;
      if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
        cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
        cv.style.height = h + "px";
      }
      return [w, h, dpr];
    };
    const fit = (w, h) => {
      const e = meta.extent || [0, 0, 1, 1];
      const ew = Math.max(e[2] - e[0], 1), eh = Math.max(e[3] - e[1], 1);
      const s = Math.min((w - 20) / ew, (h - 40) / eh);
      return { cx: ew / 2, cy: eh / 2, s: s > 0 ? s : 1 };
    };
    // data (relative to origin) -> css pixel, and back
    const d2p = (x, y, w, h) => [w / 2 + (x - view.cx) * view.s, h / 2 - (y - view.cy) * view.s];
    const p2d = (px, py, w, h) => [view.cx + (px - w / 2) / view.s, view.cy - (py - h / 2) / view.s];

    const drawLayer = (ctx, L, w, h, dpr) => {
      if (L.kind === "points") {
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.fillStyle = L.color;
        ctx.strokeStyle = L.line || "#fff";
        ctx.lineWidth = 1;
        const r = (L.size || 8) / 2;
        for (let i = 0; i < L.x.length; i++) {
          if (L.x[i] !== L.x[i]) continue;
          const [px, py] = d2p(L.x[i], L.y[i], w, h);
          if (px < -r || py < -r || px > w + r || py > h + r) continue;
          symbolPath(ctx, L.symbol, px, py, r);
          ctx.fill();
          if (L.line) ctx.stroke();
        }
        return;
      }
      const s = view.s * dpr;
      ctx.setTransform(s, 0, 0, -s, dpr * (w / 2) - s * view.cx, dpr * (h / 2) + s * view.cy);
      if (L.kind === "poly") {
        ctx.fillStyle = L.fill;
        ctx.fill(L.path);
        if (L.line && view.s > 0.6) { ctx.strokeStyle = L.line; ctx.lineWidth = (L.width || 0.5) / view.s; ctx.stroke(L.path); }
      } else {
        ctx.strokeStyle = L.color;
        ctx.lineWidth = (L.width || 1) / view.s;
        ctx.setLineDash(L.dash ? [4 / view.s, 3 / view.s] : []);
        ctx.stroke(L.path);
        ctx.setLineDash([]);
      }
    };

    const scaleBar = (ctx, w, h, dpr) => {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const m = niceLength(120 / view.s);
      const px = m * view.s, x0 = 14, y0 = h - 16;
      ctx.fillStyle = "rgba(255,255,255,0.8)";
      ctx.fillRect(x0 - 6, y0 - 20, px + 12, 28);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x0 + px, y0); ctx.stroke();
      ctx.fillStyle = "#000"; ctx.font = "11px sans-serif"; ctx.textAlign = "center";
      const label = m >= 1000 ? (m / 1000) + " km" : m + " m";
      ctx.fillText(label, x0 + px / 2, y0 - 6);
      cv.dataset.scale = label;  // what the bar says (tests read it)
    };

    let pending = false;
    const draw = () => {
      pending = false;
      if (!meta) return;
      const [w, h, dpr] = size();
      if (!view) view = fit(w, h);
      const ctx = cv.getContext("2d");
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, cv.width, cv.height);
      for (const L of layers) drawLayer(ctx, L, w, h, dpr);
      for (const L of overlays) drawLayer(ctx, L, w, h, dpr);
      scaleBar(ctx, w, h, dpr);
      const mine = ++seq;
      spin.style.display = "none";
      cv.dataset.drawn = String(mine);
      if (!timing.drawn_ms) timing.drawn_ms = performance.now();
    };
    const redraw = () => { if (!pending) { pending = true; requestAnimationFrame(draw); } };

    const api = {
      // data coordinates (metres, the city's CRS) -> viewport pixel (for tests)
      d2p: (x, y) => {
        const o = meta.origin || [0, 0], bb = cv.getBoundingClientRect();
        const [px, py] = d2p(x - o[0], y - o[1], bb.width, bb.height);
        return [bb.left + px, bb.top + py];
      },
      view: () => ({ ...view }),
      zoom: (f) => { view.s *= f; draw(); },
    };
    el.__citytwinMap = api;
    cv.__citytwinMap = api;

    let down = null, last = null;
    const onDown = (e) => { down = [e.clientX, e.clientY]; last = down; cv.style.cursor = "grabbing"; e.preventDefault(); };
    const onMove = (e) => {
      if (!down || !view) return;
      view.cx -= (e.clientX - last[0]) / view.s;
      view.cy += (e.clientY - last[1]) / view.s;
      last = [e.clientX, e.clientY];
      redraw();
    };
    const onUp = (e) => {
      const d = down;
      down = null;
      cv.style.cursor = "grab";
      if (!d || !view || Math.hypot(e.clientX - d[0], e.clientY - d[1]) > 4) return;
      const bb = cv.getBoundingClientRect();
      const [x, y] = p2d(e.clientX - bb.left, e.clientY - bb.top, bb.width, bb.height);
      const o = (meta && meta.origin) || [0, 0];
      model.send({ event: "click", x: x + o[0], y: y + o[1], m_per_px: 1 / view.s });
    };
    const onWheel = (e) => {
      if (!view) return;
      e.preventDefault();
      const bb = cv.getBoundingClientRect();
      const px = e.clientX - bb.left, py = e.clientY - bb.top;
      const [x, y] = p2d(px, py, bb.width, bb.height);
      view.s *= Math.exp(-e.deltaY * 0.0015);
      // keep the point under the cursor where it was
      view.cx = x - (px - bb.width / 2) / view.s;
      view.cy = y + (py - bb.height / 2) / view.s;
      redraw();
    };
    const onDbl = () => { view = null; redraw(); };
    cv.addEventListener("mousedown", onDown);
    window.addEventListener("mousemove", onMove);
    window.addEventListener("mouseup", onUp);
    cv.addEventListener("wheel", onWheel, { passive: false });
    cv.addEventListener("dblclick", onDbl);
    const ro = new ResizeObserver(() => redraw());
    ro.observe(el);
    const onData = () => { spin.style.display = "block"; load(); redraw(); };
    const onOver = () => { loadOverlays(); load(); redraw(); };
    model.on("change:buffer", onData);
    model.on("change:meta_json", onData);
    model.on("change:overlay_json", onOver);
    model.on("change:height", redraw);
    timing.parsed_ms = performance.now();
    load();
    draw();
    return () => {
      ro.disconnect();
      window.removeEventListener("mousemove", onMove);
      window.removeEventListener("mouseup", onUp);
      model.off("change:buffer", onData);
      model.off("change:meta_json", onData);
      model.off("change:overlay_json", onOver);
      model.off("change:height", redraw);
    };
  },
};
"""


class CanvasMap(anywidget.AnyWidget):
    """The city's layers (``buffer``: float32 coordinates; ``meta_json``: what each layer is)
    drawn on a canvas in the browser, with ``overlay_json`` layers on top."""

    _esm = _ESM
    buffer = traitlets.Bytes(b"").tag(sync=True)
    meta_json = traitlets.Unicode("{}").tag(sync=True)
    overlay_json = traitlets.Unicode("[]").tag(sync=True)
    height = traitlets.Int(620).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.click_handler: Callable[[float, float, float], None] | None = None
        self.payload: MapPayload | None = None  # the Python side (tests, click lookups)
        self.on_msg(self._on_msg)

    def _on_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("event") == "click":
            self.click(float(content["x"]), float(content["y"]),
                       float(content.get("m_per_px") or 1.0))

    def click(self, x: float, y: float, m_per_px: float = 1.0) -> None:
        """A click at (x, y) in the city's metres (what the browser sends; tests call it)."""
        if self.click_handler is not None:
            self.click_handler(x, y, m_per_px)


@dataclass(frozen=True)
class MapPayload:
    """What a :class:`CanvasMap` is sent for one city view: the coordinates and the layers."""

    buffer: bytes
    meta_json: str
    layers: tuple[dict[str, Any], ...]  # the layer descriptions (also in meta_json)

    def layer(self, name: str) -> dict[str, Any]:
        """The description of the layer called ``name`` (KeyError when there is none)."""
        for lay in self.layers:
            if lay["name"] == name:
                return lay
        raise KeyError(name)

    def coords(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The x, y (relative to the origin, NaN between parts) of the layer ``name``."""
        lay = self.layer(name)
        arr = np.frombuffer(self.buffer, dtype=np.float32)
        return arr[lay["off"]:lay["off"] + lay["n"]], arr[lay["off"] + lay["n"]:
                                                           lay["off"] + 2 * lay["n"]]


class _Builder:
    def __init__(self, origin: tuple[float, float]) -> None:
        self.origin = origin
        self.parts: list[np.ndarray] = []
        self.off = 0
        self.layers: list[dict[str, Any]] = []

    def add(self, kind: str, name: str, x: np.ndarray, y: np.ndarray, **style: Any) -> None:
        x = np.asarray(x, dtype=float)
        if not len(x):
            return
        y = np.asarray(y, dtype=float)
        if kind == "poly":  # the ring's closing vertex repeats its first: the canvas closes it
            nan = np.isnan(x)
            last = np.zeros(len(x), dtype=bool)
            last[:-1] = nan[1:]
            last[-1] = not nan[-1]
            x, y = x[~last], y[~last]
        self.parts += [(x - self.origin[0]).astype(np.float32),
                       (y - self.origin[1]).astype(np.float32)]
        self.layers.append({"kind": kind, "name": name, "off": self.off, "n": len(x), **style})
        self.off += 2 * len(x)

    def payload(self, extent: tuple[float, float, float, float]) -> MapPayload:
        buf = np.concatenate(self.parts).tobytes() if self.parts else b""
        x0, y0 = self.origin
        rel = [0.0, 0.0, extent[2] - x0, extent[3] - y0]
        meta = {"origin": [x0, y0], "extent": rel, "layers": self.layers}
        return MapPayload(buffer=buf, meta_json=json.dumps(meta), layers=tuple(self.layers))


def city_layers(data: CityMapData, *, layers: Sequence[str] = LAYERS,
                closed_edges: Iterable[int] = (), color_by: str = "use") -> MapPayload:
    """The City map as canvas layers: the basemap (the city's land use), footprints coloured
    by ``color_by`` (as :func:`citytwin.app.maps.footprint_classes`), roads (closed links
    red), MV feeders, substations and transformers, facilities."""
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        raise InputError(f"unknown map layers {unknown} (expected some of {list(LAYERS)})")
    b = _Builder((data.extent[0], data.extent[1]))
    for cls, color in BASEMAP_STYLE.items():
        sel = data.lu_class == cls
        if sel.any():
            b.add("poly", f"basemap: {cls}", data.lu_x[sel], data.lu_y[sel], fill=color)
    if "buildings" in layers:
        for name, color, sel in footprint_classes(data, color_by=color_by):
            b.add("poly", name, data.fp_x[sel], data.fp_y[sel], fill=color, line="#616161",
                  width=0.5, legend=True)
    if "roads" in layers:
        b.add("line", "roads", data.road_x, data.road_y, color="#9e9e9e", width=1.2)
        closed = sorted({int(e) for e in closed_edges if 0 <= int(e) < len(data.edge_xy)})
        if closed:
            cx, cy = _segments(data.edge_xy[closed])
            b.add("line", "closed", cx, cy, color="#d62728", width=4, legend=True)
    if "power" in layers:
        b.add("line", "MV feeders", data.mv_x, data.mv_y, color="#8e44ad", width=1.5,
              legend=True)
        pn = data.power_nodes
        for kind, (color, symbol, size) in POWER_STYLE.items():
            part = pn[pn["kind"] == kind]
            b.add("points", kind + "s", part["x"].to_numpy(float), part["y"].to_numpy(float),
                  color=color, symbol=symbol, size=size, line="#ffffff", legend=True)
    if "facilities" in layers:
        f = data.facilities
        for kind, (color, symbol) in FACILITY_STYLE.items():
            part = f[f["kind"] == kind]
            b.add("points", kind.replace("_", " "), part["x"].to_numpy(float),
                  part["y"].to_numpy(float), color=color, symbol=symbol, size=12,
                  line="#ffffff", legend=True)
    return b.payload(data.extent)


def trace_layers(traces: Sequence[Any]) -> str:
    """Plotly scatter traces (lines or markers; a scenario's interventions) as the canvas
    map's overlay layers (JSON, absolute coordinates)."""
    out = []
    for t in traces:
        x = [None if not np.isfinite(v) else round(float(v), 2)
             for v in np.asarray(t.x, dtype=float)]
        y = [None if not np.isfinite(v) else round(float(v), 2)
             for v in np.asarray(t.y, dtype=float)]
        name = str(t.name or "")
        if "markers" in (t.mode or ""):
            m = t.marker
            out.append({"kind": "points", "name": name, "x": x, "y": y,
                        "color": m.color or "#000", "symbol": m.symbol or "circle",
                        "size": m.size or 10, "line": "#000000", "legend": True})
        else:
            out.append({"kind": "line", "name": name, "x": x, "y": y,
                        "color": t.line.color or "#000", "width": t.line.width or 2,
                        "dash": bool(t.line.dash and t.line.dash != "solid"), "legend": True})
    return json.dumps(out)


@solara.component
def Map(payload: MapPayload, on_click: Callable[[float, float, float], None] | None = None,
        overlays: Sequence[Any] | None = None, height: int = 620):
    """Draw ``payload`` (a cached :func:`city_layers`) with ``overlays`` (plotly traces) on
    top; ``on_click(x, y, metres_per_pixel)`` gets clicks in the city's metres."""
    over = list(overlays or [])
    over_json = solara.use_memo(lambda: trace_layers(over),
                                ["|".join(t.to_json() for t in over)])
    el = CanvasMap.element(buffer=payload.buffer, meta_json=payload.meta_json,
                           overlay_json=over_json, height=height)
    use_click_handler(el, CanvasMap, on_click)

    def keep() -> None:
        w = solara.get_widget(el)
        assert isinstance(w, CanvasMap)
        w.payload = payload

    solara.use_effect(keep, [payload])
    return el
