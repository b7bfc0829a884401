"""Synthetic cities: deterministic, plausible, and loaded through the same path as real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from citytwin.city import City
from citytwin.errors import InputError
from citytwin.synth import SYNTH_CRS, synthetic_layers, write_synthetic_city


def test_same_seed_same_city_other_seed_differs() -> None:
    a = synthetic_layers(500, seed=3)
    b = synthetic_layers(500, seed=3)
    c = synthetic_layers(500, seed=4)
    for name in a:
        assert a[name].equals(b[name]), name
    assert not a["buildings"].equals(c["buildings"])


def test_layers_are_plausible() -> None:
    layers = synthetic_layers(25_000, seed=1)
    b, r, f, p = (layers[k] for k in ("buildings", "roads", "facilities", "power"))
    assert len(b) == 25_000 and b.crs.to_string() == SYNTH_CRS
    assert b.geometry.is_valid.all() and (b.geometry.area > 50).all()
    # footprints never overlap each other nor the streets
    assert not b.geometry.iloc[:2000].union_all().intersects(r.geometry.union_all())
    assert b.sindex.query(b.geometry.iloc[:500], predicate="overlaps").size == 0
    shares = b["building"].value_counts(normalize=True)
    assert 0.5 < shares["residential"] < 0.8 and shares["office"] > 0.04
    # 56 blocks (5.6 km) across: trunk roads on the arterial lines 20 and 40, in both directions
    assert set(r["highway"]) == {"trunk", "primary", "residential"}
    assert sorted(set(r.loc[r["highway"] == "trunk", "name"])) == [
        "Trunk H20", "Trunk H40", "Trunk V20", "Trunk V40"]
    assert 0.15 < r["highway"].isin(["primary", "trunk"]).mean() < 0.3
    assert (p["power"] == "substation").sum() == 2  # one per ~10k buildings
    kinds = f["kind"].value_counts()
    assert kinds["fire_station"] == 5 and kinds["hospital"] == 1 and kinds["police"] == 2


def test_synth_city_builds_through_the_normal_path(tmp_path: Path) -> None:
    path = write_synthetic_city(tmp_path / "s.gpkg", n_buildings=400, seed=0)
    city = City.from_path(path, use_cache=False)
    assert len(city.buildings) == 400
    assert (city.buildings["use_source"] == "building_tag").all()
    assert city.report.inferred.get("road speed from highway class", 0) == 0
    speeds = {d["highway"]: d["speed_kph"] for _, _, d in city.roads.edges(data=True)}
    assert speeds == {"primary": 50.0, "residential": 30.0}
    lanes = {d["highway"]: d["lanes"] for _, _, d in city.roads.edges(data=True)}
    assert lanes == {"primary": 2, "residential": 1}
    assert set(city.facilities["kind"]) == {"fire_station", "ambulance_station", "hospital",
                                            "police"}
    assert city.buildings["transformer"].notna().all()
    subs = [n for n, d in city.power.nodes(data=True) if d["kind"] == "substation"]
    assert len(subs) == 1
    assert np.isfinite(city.buildings["year_built"]).all()


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="n_buildings must be >= 1"):
        synthetic_layers(0)


def test_small_cities_have_no_trunk_road() -> None:
    for n in (48, 2000, 10_000):  # up to 36 blocks (3.6 km) across
        r = synthetic_layers(n, seed=3)["roads"]
        assert set(r["highway"]) == {"primary", "residential"}, n
        assert (shapely.length(r.geometry.values) == 100.0).all()


def test_trunk_roads_are_grade_separated_and_join_at_arterials() -> None:
    r = synthetic_layers(40_000, seed=3)["roads"]  # 71 blocks across
    trunk = r[r["highway"] == "trunk"]
    assert sorted(set(trunk["name"].str[7:])) == ["25", "45", "5", "65"]
    assert (trunk["maxspeed"] == 80).all() and (trunk["lanes"] == 6).all()
    xy = shapely.get_coordinates(trunk.geometry.values).reshape(-1, 2, 2)
    assert shapely.get_num_coordinates(trunk.geometry.values).max() == 2  # no interior vertex
    x0, y0 = r.total_bounds[:2]
    ends = np.rint((xy - [x0, y0]) / 100.0).astype(int)  # end points in street lines
    along = np.where(ends[:, 0, 1] == ends[:, 1, 1], ends[..., 0].T, ends[..., 1].T)
    # every trunk stretch ends at an arterial line (an interchange) or the city edge
    assert ((along % 5 == 0) | (along == 71)).all()
    city = City.from_layers(synthetic_layers(40_000, seed=3), name="s40k")
    deg = {n: city.roads.degree(n) for n in city.roads.nodes}
    # a residential street crossing a trunk road between interchanges meets nothing there:
    # the node on the trunk line has only the crossing street's 2 x 2 directed links
    node = next(n for n, d in city.roads.nodes(data=True)
                if round((d["x"] - x0) / 100) == 12 and round((d["y"] - y0) / 100) == 25)
    assert deg[node] == 4
    assert {d["highway"] for _, _, d in city.roads.edges(node, data=True)} == {"residential"}


def test_office_core_keeps_a_real_cbd_size() -> None:
    b = synthetic_layers(100_000, seed=3)["buildings"]
    c = b.geometry.centroid
    r = np.hypot(c.x - c.x.mean(), c.y - c.y.mean())
    office = b["building"] == "office"
    # the dense office core is 1 km in radius (not a fifth of the 11 km city)
    assert office[r < 900].mean() > 0.2 and office[(r > 1100) & (r < 2200)].mean() < 0.1


def test_big_cities_thin_out_by_clarks_law() -> None:
    # 10k: 36 blocks (3.6 km) across, no gradient, the same city as a uniform one
    small = synthetic_layers(10_000, seed=3)
    uniform = synthetic_layers(10_000, seed=3, density_gradient_per_km=0.0)
    for name in small:
        assert small[name].equals(uniform[name]), name
    b = synthetic_layers(25_000, seed=1)["buildings"]  # 5.6 km across
    u = synthetic_layers(25_000, seed=1, density_gradient_per_km=0.0)["buildings"]
    res = (b["building"] == "residential").to_numpy()
    lv, lu = b["levels"].to_numpy(), u["levels"].to_numpy()
    # only residential levels change; every other column (and the later draws) stay the same
    assert (lv[~res] == lu[~res]).all() and b.drop(columns="levels").equals(u.drop(columns="levels"))
    c = b.geometry.centroid
    r_km = np.hypot(c.x - 0.5 * (c.x.min() + c.x.max()), c.y - 0.5 * (c.y.min() + c.y.max())) / 1e3
    r_km = r_km.to_numpy()
    # the law is taken at the block's centre, within 71 m of the building's: at most one level off
    law = np.maximum(1, np.rint(lu * np.exp(-0.3 * r_km)))
    assert (np.abs(lv - law)[res] <= 1).all() and (lv[res] == law[res]).mean() > 0.9
    inner, outer = res & (r_km < 1), res & (r_km > 2.5)
    assert lv[inner].mean() > 3.5 and 1 <= lv[outer].min() and lv[outer].mean() < 2.0
    # residents per km2 (40 m2 of floor each): uniform ~22,000, with the gradient about half
    area = 5.6 ** 2
    per_km2 = [float(np.rint(b.geometry.area.to_numpy() * lev / 40.0)[res].sum()) / area
               for lev in (lv, lu)]
    assert 10_000 < per_km2[0] < 14_000 < 20_000 < per_km2[1] < 24_000
    with pytest.raises(InputError, match="density_gradient_per_km"):
        synthetic_layers(10, density_gradient_per_km=-1.0)
