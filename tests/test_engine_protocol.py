"""The engine protocol: every domain engine satisfies it, and one standalone host with the
scenario's defaults runs any engine alone."""

from __future__ import annotations

import pandas as pd

from citytwin.city import City
from citytwin.emergency.engine import EmergencyEngine, run_emergency
from citytwin.energy.engine import EnergyEngine, EnergyParams, run_energy
from citytwin.engine import DEFAULT_START, Engine, StandaloneModel
from citytwin.model import ENGINES, CityModel
from citytwin.scenario import DOMAINS, Scenario, scenario_from_dict
from citytwin.traffic.engine import TrafficEngine, run_traffic


def test_model_builds_the_engine_classes_it_names(grid_city: City, tmp_path) -> None:
    assert tuple(ENGINES) == DOMAINS
    assert ENGINES == {"traffic": TrafficEngine, "energy": EnergyEngine,
                       "emergency": EmergencyEngine}
    spec = scenario_from_dict({"name": "p", "city": str(tmp_path / "c.gpkg"), "duration_h": 2,
                               "traffic": {}, "energy": {"power_flow": False}, "emergency": {}})
    m = CityModel(spec, city=grid_city)
    for domain, eng in m.engines.items():
        assert isinstance(eng, Engine) and eng.domain == domain
        assert type(eng) is ENGINES[domain]
    m.run()
    res = m.results()
    assert set(res.kpis["domain"]) == set(DOMAINS)


def test_one_standalone_host_with_the_scenario_defaults(grid_city: City) -> None:
    assert Scenario.model_fields["start"].default == DEFAULT_START
    host = StandaloneModel(grid_city, seed=1)
    assert host.start == pd.Timestamp(DEFAULT_START) and host.duration_s == 86_400.0
    e = run_energy(grid_city, EnergyParams(power_flow=False), seed=1, duration_s=3600.0)
    em = run_emergency(grid_city, seed=1, duration_s=3600.0)
    tr = run_traffic(grid_city, seed=1, duration_s=3600.0)
    for eng in (e, em, tr):
        assert isinstance(eng, Engine)
        assert pd.Timestamp(eng.model.start) == pd.Timestamp(DEFAULT_START)
