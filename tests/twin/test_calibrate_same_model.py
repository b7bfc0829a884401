"""Calibration fits the load model the energy engine runs: the scenario's weather shifts,
heat-pump share and per-use factors included, and the calibrated scenario reproduces it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from citytwin.city import City
from citytwin.cli import main
from citytwin.rng import stream
from citytwin.scenario import load_scenario
from citytwin.synth import write_synthetic_city
from citytwin.twin.sync import scenario_loads

TRUE_K = {"residential": 1.3, "office": 0.7, "retail": 1.1}


@pytest.fixture(scope="module")
def heat_wave_world(tmp_path_factory):
    d = tmp_path_factory.mktemp("hw")
    gpkg = write_synthetic_city(d / "city.gpkg", n_buildings=80, seed=4)
    city = City.from_path(gpkg, cache_dir=d / "cache")
    (d / "hot.toml").write_text(
        'name = "hot"\ncity = "city.gpkg"\nseed = 5\nstart = 2024-07-08\nduration_h = 48\n'
        "[energy]\npower_flow = false\nheat_pump_share = 0.4\n"
        '[[interventions]]\ntype = "heat_wave"\ndelta_c = 12\nstart_h = 0\nduration_h = 48\n',
        encoding="utf-8")
    return d, city, load_scenario(d / "hot.toml")


def _meters(city, truth_loads, start) -> pd.DataFrame:
    b = city.buildings
    times = pd.Timestamp(start) + pd.to_timedelta(np.arange(truth_loads.shape[1]), unit="h")
    rows = []
    for t in sorted(b["transformer"].astype(str).unique()):
        sel = (b["transformer"].astype(str) == t).to_numpy()
        rows.append(pd.DataFrame({"transformer": t, "time": times.astype(str),
                                  "value": truth_loads[sel].sum(axis=0), "unit": "kWh"}))
    for use in sorted(b["use"].astype(str).unique()):
        for i in np.flatnonzero(b["use"].astype(str).to_numpy() == use)[:2]:
            rows.append(pd.DataFrame({"building_id": int(b.index[i]), "time": times.astype(str),
                                      "value": truth_loads[i], "unit": "kWh"}))
    df = pd.concat(rows, ignore_index=True)
    df["value"] *= 1 + 0.02 * stream(9, "observation-noise").standard_normal(len(df))
    return df


def test_meters_of_a_heat_wave_scenario_recover_the_truth(heat_wave_world) -> None:
    d, city, spec = heat_wave_world
    truth_spec = spec.with_updates(energy={**spec.energy.model_dump(), "use_load_factors": TRUE_K})
    truth = scenario_loads(truth_spec, city)  # what the engine of the true city would draw
    # the heat wave and the heat pumps matter: the model without them is another model
    plain = spec.with_updates(interventions=(), energy={"power_flow": False})
    assert np.abs(scenario_loads(plain, city) - scenario_loads(spec, city)).sum() > \
        0.05 * scenario_loads(spec, city).sum()
    obs = d / "obs"
    obs.mkdir()
    _meters(city, truth, spec.start).to_csv(obs / "meters.csv", index=False)
    out = d / "out"
    assert main(["calibrate", str(d / "hot.toml"), str(obs), "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    uses = set(city.buildings["use"].astype(str))
    for use, k in TRUE_K.items():
        if use in uses:
            assert rep["energy"]["multipliers_by_use"][use] == pytest.approx(k, rel=0.03)
    # the written scenario carries the fitted factors and reproduces the truth
    cal = load_scenario(out / "hot_calibrated.toml")
    assert set(cal.energy.use_load_factors) >= (uses & set(TRUE_K))
    assert cal.interventions == spec.interventions  # inherited heat wave
    rerun = scenario_loads(cal, city)
    assert np.abs(rerun - truth).sum() < 0.03 * truth.sum()
