"""All three domains on one clock, on a tiny synthetic city: wiring, coupling, determinism."""

from __future__ import annotations

import pytest

from citytwin.model import CityModel, run_scenario
from citytwin.scenario import scenario_from_dict


def _full(city_path, **extra):
    data = {
        "name": "full", "city": str(city_path), "duration_h": 12, "step_s": 1800, "seed": 2,
        "traffic": {"sample": 0.5, "step_s": 2.0},
        "energy": {"power_flow_numba": False, "step_minutes": 30},
        "emergency": {"rate_multiplier": 20.0},
    }
    data.update(extra)
    return scenario_from_dict(data)


@pytest.fixture(scope="module")
def runs(tiny_city_path, tiny_city):
    base = run_scenario(_full(tiny_city_path), city=tiny_city)
    again = run_scenario(_full(tiny_city_path), city=tiny_city)
    other_seed = run_scenario(_full(tiny_city_path), seed=3, city=tiny_city)
    outage = run_scenario(_full(tiny_city_path, name="outage", interventions=[
        {"type": "asset_failure", "asset": "t0", "at_h": 8, "duration_h": 2},
        {"type": "ev_share", "share": 0.9},
    ]), city=tiny_city)
    return base, again, other_seed, outage


def test_engines_are_created_in_order_and_share_the_model(tiny_city_path, tiny_city) -> None:
    model = CityModel(_full(tiny_city_path), city=tiny_city)
    assert list(model.engines) == ["traffic", "energy", "emergency"]
    assert model.traffic is model.engines["traffic"] and model.emergency.model is model
    assert len(model.agents) > 0  # vehicles, buildings and units are Mesa agents of this model


def test_every_domain_reports(runs) -> None:
    base = runs[0]
    domains = set(base.kpis["domain"])
    assert domains == {"traffic", "energy", "emergency"}
    assert len(base["trips"]) > 0 and len(base["links"]) > 0
    assert len(base["timeseries"]) > 0 and set(base["timeseries"]["domain"]) >= {"energy"}
    assert base.kpi("trips_completed") > 0
    assert base.kpi("energy_total_kwh") > 0
    assert base.kpi("calls_n") > 0
    assert base.manifest["domains"] == ["traffic", "energy", "emergency"]


def test_same_seed_same_tables_other_seed_differs(runs) -> None:
    base, again, other_seed, _ = runs
    assert base.digest() == again.digest()
    assert base.digest() != other_seed.digest()


def test_outage_and_ev_interventions_reach_the_engines(runs) -> None:
    base, _, _, outage = runs
    assert base.kpi("energy_not_served_kwh") == 0
    assert outage.kpi("energy_not_served_kwh") > 0
    assert outage.kpi("saidi_min") > 0
    # EV trips simulated by traffic charge in the energy domain
    assert outage.kpi("vehicle_km_ev_km") > base.kpi("vehicle_km_ev_km")
    assert outage.kpi("ev_energy_kwh") > base.kpi("ev_energy_kwh") > 0
