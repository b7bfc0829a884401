"""City page: roads, buildings by use, the power network and facilities; click to inspect."""

from __future__ import annotations

from typing import Any, cast

import solara

from citytwin.app.canvasmap import Map
from citytwin.app.config import safe_join
from citytwin.app.data import city_layers_cached, load_city, load_map_data
from citytwin.app.maps import COLOR_BY, LAYERS, inspect, nearest_feature
from citytwin.app.state import use_app
from citytwin.app.upload import save_upload
from citytwin.app.widgets import KeyValueTable, Para
from citytwin.errors import CitytwinError, InputError

__all__ = ["Page", "CityMap"]



def _toggle(layers: Any, layer: str) -> Any:
    """The checkbox handler that shows or hides ``layer`` (order kept as in ``LAYERS``)."""

    def on_value(on: bool) -> None:
        layers.set([x for x in LAYERS if (x in layers.value or x == layer) and (on or x != layer)])

    return on_value

@solara.component
def InspectPanel(info: dict[str, Any] | None, on_close_road: Any = None):
    if not info:
        solara.Info("Click a building, road link, power node or facility to inspect it.")
        return
    with solara.Card(info.get("layer", "feature"), classes=["citytwin-inspect"]):
        KeyValueTable({k: v for k, v in info.items() if k != "layer"})
        if info.get("layer") == "road link" and on_close_road is not None:
            solara.Button("Close this link in my scenario draft",
                          on_click=lambda: on_close_road(int(info["edge_id"])), outlined=True)


@solara.component
def CityMap(city_file: str, layers: list[str], closed_edges: list[int],
            on_pick: Any = None, color_by: str = "use"):
    """The map of one city file (inside the data folder) with the chosen layers; a click
    is resolved to the nearest feature on the server (``maps.nearest_feature``)."""
    app = use_app()
    path = solara.use_memo(lambda: safe_join(app.config.data_dir, city_file, what="city file"),
                           [city_file])
    payload = solara.use_memo(
        lambda: city_layers_cached(path, layers=tuple(layers),
                                   closed_edges=tuple(sorted(set(closed_edges))),
                                   color_by=color_by),
        [path, tuple(layers), tuple(closed_edges), color_by])

    def on_click(x: float, y: float, m_per_px: float) -> None:
        if on_pick is None:
            return
        hit = nearest_feature(load_city(path), load_map_data(path), x, y,
                              tol_m=max(8.0 * m_per_px, 2.0), layers=layers)
        if hit is not None:
            on_pick(*hit)

    with solara.Div(classes=["citytwin-city-map"]):
        Map(payload, on_click=on_click)


@solara.component
def Page():
    app = use_app()
    layers = solara.use_reactive(list(LAYERS))
    color_by = solara.use_reactive("use")
    picked = solara.use_reactive(cast(dict[str, Any] | None, None))
    error = solara.use_reactive("")
    uploads = solara.use_reactive(0)
    files = solara.use_memo(app.config.city_files, [uploads.value])
    path = safe_join(app.config.data_dir, app.city.value, what="city file")
    city = solara.use_memo(lambda: load_city(path), [path])

    def pick(layer: str, ident: str) -> None:
        try:
            picked.value = inspect(city, load_map_data(path), layer, ident)
            error.value = ""
        except CitytwinError as exc:
            error.value = str(exc)

    def on_file(info: dict[str, Any]) -> None:
        try:
            if info["size"] > app.config.max_upload_bytes:
                raise InputError(f"uploaded file {info['name']!r} is {info['size']:,} bytes; "
                                 f"the limit is {app.config.max_upload_bytes:,} bytes")
            data = info["file_obj"].read(app.config.max_upload_bytes + 1)
            saved = save_upload(app.config, info["name"], data)
            uploads.value += 1
            app.city.value = saved.name
            error.value = ""
        except (CitytwinError, ValueError) as exc:
            error.value = str(exc)

    def close_road(edge_id: int) -> None:
        if edge_id not in app.closed_edges.value:
            app.closed_edges.value = [*app.closed_edges.value, edge_id]

    solara.Title("citytwin · City")
    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Select("City file", values=files, value=app.city, style={"max-width": "260px"},
                      classes=["citytwin-city-select"])
        for layer in LAYERS:
            solara.Checkbox(label=layer, value=layer in layers.value,
                            on_value=_toggle(layers, layer))
        solara.Select("Colour buildings by", values=list(COLOR_BY), value=color_by,
                      style={"max-width": "200px"}, classes=["citytwin-color-by"])
    s = city.summary()
    Para(
        f" · {city.roads.number_of_nodes():,} road nodes · "
        f"{city.roads.number_of_edges():,} road links · {len(city.buildings):,} buildings · "
        f"{len(city.facilities):,} facilities · {city.power.number_of_nodes():,} power nodes"
        + (f" · CRS {s.get('crs')}" if isinstance(s, dict) and s.get("crs") else ""),
        bold_prefix=city.name,
    )
    with solara.Columns([3, 1]):
        CityMap(app.city.value, layers.value, app.closed_edges.value, on_pick=pick,
                color_by=color_by.value)
        with solara.Column():
            if error.value:
                solara.Error(error.value)
            InspectPanel(picked.value, on_close_road=close_road)
            solara.FileDrop(label="Drop a city file (GeoPackage, GeoJSON, GeoParquet, .osm.pbf) "
                                  f"up to {app.config.max_upload_bytes // 2**20} MB",
                            on_file=on_file, lazy=True)
            if app.closed_edges.value:
                Para(f"Draft closures (edge ids): {app.closed_edges.value}")
                solara.Button("Clear draft closures", text=True,
                              on_click=lambda: app.closed_edges.set([]))
