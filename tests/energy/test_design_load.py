"""One design load: the grid the twin designs is sized from the loads its energy engine runs
(issue: offices sized at 20 W/m² on the grid side peaked at 45.8 W/m² on the demand side;
31 of 220 transformers over 100 % on a January weekday from base load alone)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from citytwin import examples
from citytwin.energy.engine import EnergyEngine, EnergyParams
from citytwin.energy.loads import compute_loads
from citytwin.energy.weather import temperature_at, typical_year
from citytwin.engine import StandaloneModel
from citytwin.fleet import Fleet
from citytwin.network.power import COS_PHI, RESERVE


def _transformers(city) -> pd.DataFrame:
    G = city.power
    rows = [(n, d["rated_kva"] * d.get("parallel", 1)) for n, d in G.nodes(data=True)
            if d.get("kind") == "transformer"]
    return pd.DataFrame(rows, columns=["id", "kva"]).set_index("id")


@pytest.mark.parametrize("name", ["grid", "synthetic400", "kotka"])
def test_base_load_all_year_fits_the_designed_grid(name):
    """Every hour of the typical year, every transformer's base load (no EV, no PV, no heat
    pump) stays within its rating less the planning reserve."""
    city = {"grid": examples.grid, "synthetic400": lambda: examples.synthetic(400),
            "kotka": examples.kotka}[name]()
    b = city.buildings
    idx = pd.date_range("2001-01-01", "2001-12-31 23:45", freq="15min")
    loads = compute_loads(b, temperature_at(typical_year(), idx + pd.Timedelta(minutes=7.5)),
                          index=idx, step_minutes=15)
    tr = _transformers(city)
    code = pd.Index(tr.index).get_indexer(b["transformer"].astype(str))
    assert (code >= 0).all()
    agg = sparse.csr_matrix((np.ones(len(b), np.float32), (code, np.arange(len(b)))),
                            shape=(len(tr), len(b)))                 # transformer × building
    worst = 0.0
    for sl in (slice(k, k + 96 * 61) for k in range(0, len(idx), 96 * 61)):
        per_tr = agg @ loads.electric_kw(sl)                         # (transformers, t) kW
        worst = max(worst, float((per_tr / COS_PHI / tr["kva"].to_numpy()[:, None]).max()))
    assert worst <= 1.0 - RESERVE + 1e-6, f"{name}: base load reaches {worst:.0%} of a rating"
    assert worst > 0.2   # and the grid is not absurdly oversized for its loads


def test_engine_sees_no_base_load_overload_in_a_cold_winter_week():
    """The same through the energy engine (its own loading KPI), a week from a January Monday
    with a −12 K cold snap and no EVs: no transformer beyond its planning limit."""
    from citytwin.energy.weather import TemperatureShift

    city = examples.kotka()
    model = StandaloneModel(city, seed=2, start="2024-01-08", duration_s=7 * 86400.0,
                            fleet=Fleet(ev_share=0.0))
    eng = EnergyEngine(model, EnergyParams(power_flow=False, temperature_shifts=(
        TemperatureShift(delta_c=-12.0, duration_h=7 * 24.0),)))
    eng.advance(model.duration_s)
    k = eng.kpis()
    assert k["peak_transformer_loading_pct"] <= 100.0 * (1 - RESERVE) + 1e-6
    assert k["transformer_overload_hours_h"] == 0.0
