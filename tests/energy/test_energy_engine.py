from __future__ import annotations

import mesa
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from citytwin import examples
from citytwin.city import City
from citytwin.energy import EnergyEngine, EnergyParams, run_energy
from citytwin.engine import StandaloneModel
from citytwin.errors import InputError
from citytwin.fleet import Fleet
from citytwin.traffic import TrafficParams


def _city(rated_kva: float = 100.0) -> City:
    """Six buildings on two transformers under one substation (hand-made, no geometry: the
    energy engine uses its Helsinki site)."""
    b = pd.DataFrame(
        {
            "use": ["residential", "residential", "office", "residential", "retail", "residential"],
            "floor_area_m2": [900.0, 1200.0, 2500.0, 600.0, 800.0, 1500.0],
            "footprint_m2": [300.0, 400.0, 600.0, 150.0, 800.0, 300.0],
            "levels": [3, 3, 4, 2, 1, 5],
            "vintage": ["1960_1990", "post2010", "1990_2010", "pre1960", "1960_1990", "post2010"],
            "population": [20, 30, 0, 4, 0, 35],
            "transformer": ["t0", "t0", "t0", "t1", "t1", "t1"],
        },
        index=pd.RangeIndex(6, name="building_id"),
    )
    G = nx.Graph(mv_kv=20.0)
    G.add_node("sub0", kind="substation", x=0, y=0, rated_mva=10.0, vn_kv=110)
    G.add_node("m1", kind="mv_node", x=100, y=0)
    for t, x in (("t0", 200), ("t1", 300)):
        G.add_node(t, kind="transformer", x=x, y=0, rated_kva=rated_kva, vn_hv_kv=20.0, vn_lv_kv=0.4)
    G.add_edge("sub0", "m1", kind="mv_line", length_m=100.0, element_id="line0")
    G.add_edge("m1", "t0", kind="mv_line", length_m=100.0, element_id="line1")
    G.add_edge("m1", "t1", kind="mv_line", length_m=200.0, element_id="line2")
    for i, t in enumerate(b["transformer"]):
        G.add_node(f"b{i}", kind="building", x=0, y=10, building_id=i, transformer=t)
        G.add_edge(t, f"b{i}", kind="service", length_m=20.0, element_id=f"s{i}")
    return examples.assembled(buildings=b, power=G, name="six-buildings")


def _model(city, *, hours=24.0, start="2026-07-01", seed=3, fleet=None):
    return StandaloneModel(city, seed=seed, start=start, duration_s=hours * 3600.0, fleet=fleet)


ALL_EV = Fleet(ev_share=1.0)


def _run(params, **kw):
    e = EnergyEngine(_model(_city(), **kw), params)
    e.advance(e.duration_s)
    return e


NO_PF = {"power_flow": False}


def test_standin_model_runs_and_reports_contract_tables():
    e = _run(EnergyParams(**NO_PF, pv_share=0.5, heat_pump_share=0.5), fleet=ALL_EV)
    t = e.tables()
    assert list(t["timeseries"].columns) == ["series", "time_s", "value"]
    assert list(t["assets"].columns) == ["asset_id", "kind", "time_s", "loading_pct", "vm_pu"]
    assert t["timeseries"]["time_s"].nunique() == 96
    k = e.kpis()
    w = e.series()
    # energy by use adds up to the demand series
    assert sum(k[f"energy_{u}_kwh"] for u in ("residential", "office", "retail")) == pytest.approx(
        k["energy_total_kwh"])
    assert k["energy_total_kwh"] == pytest.approx(w["demand_kw"].sum() * 0.25)
    assert k["ev_energy_kwh"] > 0 and k["pv_generation_kwh"] > 0
    assert 0 < k["pv_self_consumption_pct"] <= 100
    assert k["co2_t"] == pytest.approx(k["grid_import_kwh"] * 80 / 1e6)
    assert (w["demand_kw"] == w["base_kw"] + w["ev_kw"]).all() or np.allclose(
        w["demand_kw"], w["base_kw"] + w["ev_kw"])


def test_same_seed_identical_tables_other_seed_differs():
    p = EnergyParams(**NO_PF, pv_share=0.5, heat_pump_share=0.5)
    a, b = _run(p, fleet=ALL_EV).tables(), _run(p, fleet=ALL_EV).tables()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    c = _run(p, seed=4, fleet=ALL_EV).tables()
    assert not a["timeseries"].equals(c["timeseries"])


def test_line_failure_cuts_exactly_the_buildings_below_it():
    p = EnergyParams(**NO_PF, failures=[{"asset": "line2", "at_h": 1.0,
                                          "duration_h": 2.0}])
    e = EnergyEngine(_model(_city()), p)
    e.advance(3600.0)
    assert not e.unsupplied_buildings().any()
    e.advance(3600.0 + 900.0)
    np.testing.assert_array_equal(e.unsupplied_buildings(), [False] * 3 + [True] * 3)
    e.advance(e.duration_s)
    k = e.kpis()
    w = e.series()
    ref = _run(EnergyParams(**NO_PF))
    # ENS = the demand of buildings 3..5 during the two failed hours
    full = ref.loads.electric_kw()[3:, 4:12].sum() * 0.25
    assert k["energy_not_served_kwh"] == pytest.approx(full, rel=1e-5)
    assert k["customer_interruption_min"] == pytest.approx(3 * 120)
    assert k["energy_served_kwh"] == pytest.approx(k["energy_total_kwh"] - k["energy_not_served_kwh"])
    assert w["unsupplied_buildings"].max() == 3


def test_unknown_failure_asset_named():
    p = EnergyParams(**NO_PF, failures=[{"asset": "nope", "at_h": 0},
                                         {"asset": "line9", "at_h": 0}])
    with pytest.raises(InputError) as e:
        EnergyEngine(_model(_city()), p)
    assert "'nope'" in str(e.value) and "'line9'" in str(e.value)
    assert len(e.value.problems) == 2


def test_params_are_frozen_and_strict():
    with pytest.raises(ValueError, match="heat_pump_shar"):
        EnergyParams(heat_pump_shar=0.3)
    with pytest.raises(ValueError):
        EnergyParams(step_minutes=7)
    p = EnergyParams()
    with pytest.raises(ValueError):
        p.pv_share = 0.5


def test_heat_wave_raises_cooling_and_cold_snap_raises_heat_pump_load():
    no_ev = Fleet(ev_share=0.0)  # (EVs use more per km with the A/C on: tested with the EVs)
    base = _run(EnergyParams(**NO_PF), fleet=no_ev).kpis()
    hot = _run(EnergyParams(**NO_PF, temperature_shifts=[{"delta_c": 10.0, "duration_h": 24}]),
               fleet=no_ev).kpis()
    assert hot["energy_office_kwh"] > base["energy_office_kwh"]  # cooled use
    assert hot["energy_residential_kwh"] == pytest.approx(base["energy_residential_kwh"])
    jan = {"start": "2026-01-15"}
    hp = EnergyParams(**NO_PF, heat_pump_share=1.0)
    normal = _run(hp, **jan).kpis()
    cold = _run(EnergyParams(**NO_PF, heat_pump_share=1.0, temperature_shifts=[{"delta_c": -15.0}]), **jan).kpis()
    assert cold["energy_residential_kwh"] > 1.2 * normal["energy_residential_kwh"]
    assert cold["heat_demand_kwh"] > normal["heat_demand_kwh"]


def test_smart_charging_keeps_transformers_below_uncontrolled_peak():
    city = _city(rated_kva=100.0)
    arr = pd.DataFrame({"vehicle_id": np.arange(12), "building_id": np.repeat(np.arange(6), 2),
                        "arrive_s": 17.5 * 3600.0, "distance_km": 150.0, "purpose": "home"})

    def run(policy):
        e = EnergyEngine(_model(city, hours=36, fleet=Fleet(charging=policy)),
                         EnergyParams(**NO_PF), ev_arrivals=arr)
        e.advance(e.duration_s)
        w = e.series()
        return {**e.kpis(), "first_ev_h": w.loc[w["ev_kw"] > 0, "time_s"].min() / 3600}

    unc, smart, delayed = run("uncontrolled"), run("smart"), run("delayed")
    assert unc["peak_transformer_loading_pct"] > 100.0
    assert smart["peak_transformer_loading_pct"] <= 100.0 + 1e-6
    assert smart["transformer_overload_hours_h"] == 0
    assert delayed["ev_energy_kwh"] == pytest.approx(unc["ev_energy_kwh"], rel=1e-6)
    assert smart["ev_energy_kwh"] == pytest.approx(unc["ev_energy_kwh"], rel=1e-6)  # all by 07:00
    assert (unc["first_ev_h"], delayed["first_ev_h"]) == (17.5, 22.0)


def test_mesa_model_gets_building_agents():
    city = _city()
    model = mesa.Model(rng=1)
    model.city, model.seed, model.start, model.duration_s = city, 1, pd.Timestamp("2026-07-01"), 7200.0
    model.traffic = None
    e = EnergyEngine(model, EnergyParams(**NO_PF))
    model.energy = e
    agents = list(model.agents)
    assert len(agents) == 6
    assert sorted(a.building_id for a in agents) == list(range(6))
    e.advance(900.0)
    a0 = next(a for a in agents if a.building_id == 2)
    assert a0.use == "office" and a0.load_kw() == pytest.approx(e.last_demand_kw[2])


def test_run_energy_standalone_with_traffic_like_arrivals():
    arr = pd.DataFrame({"vehicle_id": [1, 2], "building_id": [0, 5], "arrive_s": [3600.0, 7000.0],
                        "distance_km": [20.0, 30.0], "purpose": ["home", "home"]})
    e = run_energy(_city(), EnergyParams(**NO_PF), seed=2, ev_arrivals=arr, duration_s=6 * 3600)
    assert e.kpis()["ev_sessions_count"] == 2
    assert len(e.series()) == 24


@pytest.fixture(scope="module")
def tiny_city():
    from pathlib import Path

    from citytwin.city import City

    return City.from_path(Path(__file__).resolve().parents[1] / "data" / "tiny.gpkg",
                          use_cache=False)


def test_power_flow_energy_balance_and_agreement_with_aggregate(tiny_city):
    p = dict(pv_share=0.6, heat_pump_share=0.5, power_flow_numba=False)
    start = "2026-07-01 10:00"
    pf = run_energy(tiny_city, EnergyParams(**p), seed=1, start=start, duration_s=3 * 3600,
                    fleet=ALL_EV)
    agg = run_energy(tiny_city, EnergyParams(**p, power_flow=False), seed=1, start=start,
                     duration_s=3 * 3600, fleet=ALL_EV)
    w = pf.series()
    assert (w["converged"] == 1).all()
    # external grid = loads + losses − generation, every step
    np.testing.assert_allclose(w["grid_import_kw"], w["demand_kw"] + w["losses_kw"] - w["pv_kw"],
                               rtol=1e-6)
    assert w["pv_kw"].max() > 0
    # transformer loading from pandapower vs S = P / cos φ per transformer: within 3 %
    np.testing.assert_allclose(w["max_trafo_loading_pct"], agg.series()["max_trafo_loading_pct"],
                               rtol=0.03)
    k = pf.kpis()
    assert 0.9 < k["min_voltage_pu"] <= 1.05
    a = pf.tables()["assets"]
    assert set(a["kind"]) >= {"transformer", "line"}
    assert a["time_s"].nunique() == 12


def test_tie_restores_supply_after_switching_time_and_aging_is_reported():
    city = _city(rated_kva=400.0)
    city.power.add_edge("t0", "t1", kind="tie", length_m=150.0, element_id="tie0")
    fail = [{"asset": "line2", "at_h": 1.0, "duration_h": 4.0}]
    with_tie = _run_city(city, EnergyParams(**NO_PF, failures=fail, switching_time_s=1800.0))
    no_tie = _run_city(city, EnergyParams(**NO_PF, failures=fail, restore_with_ties=False))
    w = with_tie.series().set_index("time_s")["unsupplied_buildings"]
    assert w[3600.0] == 3 and w[3600.0 + 900] == 3
    assert w[3600.0 + 1800] == 0  # tie closed after the switching time
    k1, k0 = with_tie.kpis(), no_tie.kpis()
    assert k0["customer_interruption_min"] == pytest.approx(3 * 240)
    assert k1["customer_interruption_min"] == pytest.approx(3 * 30)
    assert k1["energy_not_served_kwh"] < k0["energy_not_served_kwh"]
    assert k1["saifi_count"] == pytest.approx(0.5)  # 3 of 6 single-customer buildings, once
    aging = with_tie.tables()["aging"]
    assert sorted(aging["asset_id"]) == ["t0", "t1"] and (aging["day"] == 0).all()
    assert (aging["f_eqa"] < 1).all()  # lightly loaded: ages slower than at 110 °C
    assert k1["max_hot_spot_c"] < 110


def _run_city(city, params):
    e = EnergyEngine(_model(city), params)
    e.advance(e.duration_s)
    return e


def test_weather_csv_param_used_and_coverage_checked(tmp_path):
    times = pd.date_range("2026-07-01", periods=30, freq="h")
    path = tmp_path / "wx.csv"
    pd.DataFrame({"time": times, "temp_c": 30.0}).to_csv(path, index=False)
    e = _run(EnergyParams(**NO_PF, weather=str(path)))
    assert np.allclose(e.series()["temp_c"], 30.0)
    short = tmp_path / "short.csv"
    pd.DataFrame({"time": times[:5], "temp_c": 30.0}).to_csv(short, index=False)
    with pytest.raises(InputError, match="weather covers"):
        EnergyEngine(_model(_city()), EnergyParams(**NO_PF, weather=str(short)))


def test_whole_grid_outage_with_power_flow_does_not_end_the_run(tiny_city):
    p = EnergyParams(power_flow_numba=False,
                     failures=[{"asset": "sub0", "at_h": 1.0, "duration_h": 1.0}])
    e = run_energy(tiny_city, p, seed=1, start="2026-07-01 16:00", duration_s=3 * 3600)
    w = e.series().set_index("time_s")
    n = len(tiny_city.buildings)
    assert (w.loc[3600.0:6300.0, "unsupplied_buildings"] == n).all()
    assert (w.loc[:2700.0, "unsupplied_buildings"] == 0).all()
    assert (w.loc[7200.0:, "converged"] == 1).all()
    k = e.kpis()
    assert k["energy_not_served_kwh"] == pytest.approx(w.loc[3600.0:6300.0, "demand_kw"].sum() * 0.25)
    a = e.tables()["assets"]
    assert a["time_s"].nunique() == 12


def test_ev_arrivals_from_a_sampled_traffic_engine_are_scaled():
    class Traffic:
        params = TrafficParams(sample=0.25)

        def ev_arrivals(self, since_s, until_s):
            a = pd.DataFrame({"vehicle_id": [7], "building_id": [1], "arrive_s": [18 * 3600.0],
                              "distance_km": [40.0], "purpose": ["home"]})
            return a[(a["arrive_s"] >= since_s) & (a["arrive_s"] < until_s)]

    m = _model(_city())
    m.traffic = Traffic()
    e = EnergyEngine(m, EnergyParams(**NO_PF))
    e.advance(e.duration_s)
    s = e.tables()["ev_sessions"]
    assert len(s) == 1 and s["vehicles"].iloc[0] == 4.0
    assert e.kpis()["ev_energy_kwh"] == pytest.approx(s["delivered_kwh"].sum())
    assert e.series()["ev_kw"].max() == pytest.approx(4 * 11.0)


def test_headroom_fills_the_rating_exactly():
    from citytwin.energy.engine import TAN_PHI, _headroom_kw

    rated = np.array([100.0, 100.0, 100.0])
    load = np.array([50.0, 80.0, 120.0])
    pv = np.array([0.0, 40.0, 0.0])
    x = _headroom_kw(rated, load - pv, load)
    s = np.hypot(load - pv + x, (load + x) * TAN_PHI)
    np.testing.assert_allclose(s[:2], 100.0)
    assert x[2] == 0.0  # already overloaded
    np.testing.assert_allclose(x[0], 100 * 0.95 - 50)  # no PV: P/cos φ = rated
