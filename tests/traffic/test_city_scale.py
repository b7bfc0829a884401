"""Issue 16 at city scale: a big synthetic city must not gridlock at its shipped demand.

The old synthetic layout (a uniform grid of 30 km/h streets and 50 km/h arterials, an office
core a fifth of the city's width in radius) scales its central business district and its trip
lengths with the city, but not its roads: from ~30k buildings on the inbound arterials of the
core fill up in the morning peak and the stuck timer pushes cars through (100k: ~30 % of
trips). The synthetic city now grows a road hierarchy (grade-separated trunk roads every 2 km)
and keeps its office core at a real CBD's size (1 km radius). This lowers the forced share;
the 100k city still needs more (see the issue: demand density and the engine's stuck timer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citytwin import interventions
from citytwin.city import City
from citytwin.scenario import load_scenario
from citytwin.synth import synthetic_layers
from citytwin.traffic.demand import generate_demand
from citytwin.traffic.engine import run_traffic

ROOT = Path(__file__).resolve().parents[2]
N = 30_000
AM_END_S = 11 * 3600.0  # the morning peak (departures 4-11 h), where the old layout jams


def _forced_share_am(**layout) -> tuple[float, float]:
    """(forced-through share, completed share) of the morning's trips on synthetic(N)."""
    city = City.from_layers(synthetic_layers(N, seed=3, **layout), name=f"synthetic{N}")
    spec = load_scenario(ROOT / "scenarios" / "baseline.toml")
    setup = interventions.apply(spec, city)
    p = setup.traffic
    assert p is not None and p.sample == pytest.approx(0.1)
    trips = generate_demand(setup.city, p, seed=int(spec.seed))
    am = trips[trips["depart_s"] < AM_END_S].reset_index(drop=True)
    eng = run_traffic(setup.city, p, seed=int(spec.seed), trips=am, fleet=setup.fleet,
                      duration_s=AM_END_S + 3 * 3600)
    k = eng.kpis()
    return (k["trips_forced_through"] / max(k["trips_departed"], 1.0),
            k["trips_completed"] / max(k["trips_planned"], 1.0))


@pytest.mark.slow
def test_big_synthetic_city_does_not_gridlock_in_the_morning_peak() -> None:
    old_forced, _ = _forced_share_am(trunk_every=0, core_max_m=np.inf)
    forced, completed = _forced_share_am()
    msg = f"forced through: old layout {100 * old_forced:.2f} %, now {100 * forced:.2f} %"
    assert old_forced > 0.02, msg  # the mechanism: the old layout jams at this size
    # measured 5.45 % -> 3.10 %: better, but not yet below issue 16's 2 % (1.9 % when the
    # engine is advanced every 60 s instead of run_traffic's 900 s: the burst estimate depends
    # on the call cadence -- an engine matter, reported on the issue)
    assert forced < 0.75 * old_forced, msg
    assert completed > 0.99
