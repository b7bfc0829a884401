"""Editing a scenario by clicking its map: close a street, place a station, fail an asset.

A click arrives as data coordinates in the city's metric CRS (see
:mod:`citytwin.app.plotview`). :func:`click_lever` turns it into one lever and its values,
which the Scenarios page writes into the draft with :func:`citytwin.app.levers.set_lever`
(so the forms, the JSON and the TOML view all show it, and the intervention class validates
it exactly as it validates a TOML file).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from citytwin.app.maps import CityMapData, nearest_feature
from citytwin.errors import InputError

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["MODES", "MapEdit", "click_lever"]

#: click mode -> button label
MODES: dict[str, str] = {
    "inspect": "inspect",
    "close_road": "close street",
    "add_station": "place station",
    "asset_failure": "fail asset",
}


@dataclass(frozen=True)
class MapEdit:
    """One lever to set from a click, and what to tell the planner."""

    lever: str
    values: dict[str, Any]
    message: str


def click_lever(mode: str, city: City, data: CityMapData, x: float, y: float, *,
                m_per_px: float = 1.0, station_kind: str = "fire_station",
                station_name: str = "new station", fail_at_h: float = 8.0,
                fail_hours: float = 4.0) -> MapEdit:
    """The lever a click at (x, y) sets in ``mode`` (see :data:`MODES`, not ``inspect``).

    ``close_road``: the nearest road link within 10 px closes its whole street when it has a
    name, else that link. ``add_station``: a station of ``station_kind`` at the clicked point
    (converted to lon/lat, as the scenario stores it). ``asset_failure``: the substation or
    transformer within 10 px fails at ``fail_at_h`` for ``fail_hours``. Raises
    :class:`InputError` saying what was expected when nothing suitable is under the click.
    """
    tol = max(10.0 * m_per_px, 3.0)
    if mode == "close_road":
        hit = nearest_feature(city, data, x, y, tol_m=tol, layers=("roads",))
        if hit is None:
            raise InputError(f"no road link within {tol:.0f} m of the click: click on a street "
                             "to close it")
        eid = int(hit[1])
        name = str(data.road_mid["name"].iloc[eid] or "").strip()
        if name and not name.startswith("["):
            n = int((data.road_mid["name"] == name).sum())
            return MapEdit("close_road", {"street": name},
                           f"closed the street {name!r} ({n} link(s))")
        return MapEdit("close_road", {"edges": [eid]}, f"closed the unnamed road link {eid}")
    if mode == "add_station":
        from pyproj import Transformer

        lon, lat = Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True).transform(x, y)
        return MapEdit("add_station", {"kind": station_kind, "name": station_name,
                                       "lon": round(float(lon), 6), "lat": round(float(lat), 6)},
                       f"placed {station_kind.replace('_', ' ')} {station_name!r} at "
                       f"{lat:.5f} N, {lon:.5f} E")
    if mode == "asset_failure":
        hit = nearest_feature(city, data, x, y, tol_m=tol, layers=("power",))
        if hit is None:
            raise InputError(f"no substation or transformer within {tol:.0f} m of the click: "
                             "click on a star (substation) or a dot (transformer)")
        kind = city.power.nodes[hit[1]].get("kind", "asset")
        return MapEdit("asset_failure", {"asset": hit[1], "at_h": float(fail_at_h),
                                         "duration_h": float(fail_hours)},
                       f"{kind} {hit[1]} fails at hour {fail_at_h:g} for {fail_hours:g} h")
    raise InputError(f"unknown map mode {mode!r} (expected one of {list(MODES)})")
