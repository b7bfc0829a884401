"""A "truth" feed: the day a city really had, derived from a scenario run with perturbations the
twin is not told about.

:func:`truth_feed` runs the energy engine (:func:`citytwin.twin.forecast.simulate`) on the
scenario's city with

- a hidden demand multiplier on the building electricity (``use_load_factors`` × m),
- a hidden transformer fault: the transformer's effective rating reduced to ``rating_factor``
  of its nameplate (aged insulation, a blocked radiator, a wrong tap) — the city's power graph
  is copied with the reduced ``rated_kva``, so the engine's loading (aggregate or power flow)
  is computed against it,
- its own seed (the real city's EV arrivals and heat pumps are not the twin's draw),
- with a traffic setup, a hidden multiplier of the car trips (``demand_scale`` ×) in a
  traffic run of the day, read by loop detectors on the busiest links (hourly counts),

and turns the result into SensorThings observations on a datastream catalogue
(:func:`catalogue`): per transformer a smart meter (``load``, kW, the 15-min mean of its
buildings' demand), its ``loading`` (% of the *nameplate* rating, as the substation's meter
reports it) and its top-oil temperature (``top_oil``: C57.91 from the true loading, as
:mod:`citytwin.twin.thermal`), plus the air temperature; each reading with sensor noise. The
feed is JSON lines ``{"datastream", "time_s", "result"}`` (what ``citytwin publish`` streams),
sorted by time.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from citytwin.energy.aging import ThermalParams
from citytwin.errors import InputError
from citytwin.rng import stream
from citytwin.twin.forecast import EnergyRun, EnergySetup, simulate
from citytwin.twin.sensorthings import Datastream
from citytwin.twin.thermal import top_oil_series

__all__ = ["Hidden", "catalogue", "truth_run", "truth_feed", "write_feed", "read_streams"]


@dataclass(frozen=True)
class Hidden:
    """The perturbations of the truth the twin must find."""

    demand_multiplier: float = 1.0
    fault_transformer: str | None = None
    rating_factor: float = 1.0
    seed: int | None = None  # None: the scenario's seed + 1000
    meter_noise: float = 0.02  # relative sd of a meter reading
    loading_noise: float = 0.01  # relative sd of a loading reading
    top_oil_noise_c: float = 0.5  # sd of a top-oil reading
    traffic_multiplier: float = 1.0  # hidden multiplier of the car trips (demand_scale ×)
    loops: int = 20  # loop detectors on the busiest links (with a traffic setup)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def catalogue(transformers: Sequence[str], *, kinds: Sequence[str] = ("load", "loading",
              "top_oil"), loops: Sequence[int] = ()) -> dict[int, Datastream]:
    """Datastream ids: ``1`` air temperature, then for the i-th transformer (sorted ids)
    ``1000·(k+1) + i`` for the k-th kind of ``kinds``; ``4000 + i`` the loop detector (hourly
    ``count``) on the i-th of ``loops`` (edge ids)."""
    out = {1: Datastream(1, "temperature", "city")}
    for k, kind in enumerate(kinds):
        for i, t in enumerate(transformers):
            ds = 1000 * (k + 1) + i
            out[ds] = Datastream(ds, kind, str(t))
    for i, e in enumerate(loops):
        out[4000 + i] = Datastream(4000 + i, "count", str(int(e)))
    return out


def _faulted_city(setup: EnergySetup, hidden: Hidden) -> Any:
    if hidden.fault_transformer is None:
        return setup.city
    G = setup.city.power
    t = hidden.fault_transformer
    if t not in G or G.nodes[t].get("kind") != "transformer":
        raise InputError([f"fault_transformer {t!r}: not a transformer of the city's power graph "
                          f"(e.g. {setup.transformers()[:3]})"], source="twin.truth")
    if not 0 < hidden.rating_factor <= 1:
        raise InputError([f"rating_factor {hidden.rating_factor:g}: expected 0 < f <= 1"],
                         source="twin.truth")
    P = G.copy()
    P.nodes[t]["rated_kva"] = float(P.nodes[t]["rated_kva"]) * hidden.rating_factor
    return dataclasses.replace(setup.city, power=P)


def truth_run(setup: EnergySetup, hidden: Hidden) -> EnergyRun:
    """The true day: the energy engine with the hidden multiplier, fault and seed."""
    seed = setup.seed + 1000 if hidden.seed is None else int(hidden.seed)
    return simulate(setup, seed=seed, multiplier=hidden.demand_multiplier,
                    city=_faulted_city(setup, hidden))


def truth_feed(setup: EnergySetup, hidden: Hidden, *, thermal: ThermalParams | None = None
               ) -> tuple[list[dict[str, Any]], dict[int, Datastream], EnergyRun]:
    """(feed records sorted by time, datastreams, the true run) — see module docstring. The
    loading reported is against the nameplate, so the fault shows as a loading above what
    the meters' kW imply."""
    run = truth_run(setup, hidden)
    ids = run.trafo_ids
    seed = setup.seed + 1000 if hidden.seed is None else int(hidden.seed)
    counts = None
    if setup.traffic is not None and hidden.loops > 0:
        from citytwin.twin.forecast import hourly_counts

        c = hourly_counts(setup, seed=seed, demand_multiplier=hidden.traffic_multiplier)
        busiest = (c.groupby("edge_id")["count"].sum().reset_index()
                   .sort_values(["count", "edge_id"], ascending=[False, True])["edge_id"])
        edges = [int(e) for e in busiest.head(hidden.loops)]
        hours = np.arange(1, int(np.ceil(setup.duration_s / 3600.0)) + 1) * 3600.0
        counts = (c[c["edge_id"].isin(edges)].pivot(index="time_s", columns="edge_id",
                                                    values="count")
                  .reindex(index=hours, columns=edges).fillna(0.0))
    streams = catalogue(ids, loops=[] if counts is None else list(counts.columns))
    rng = stream(seed, "truth_noise")
    nameplate = setup.ratings_kva()
    fault_f = np.ones(len(ids))
    if hidden.fault_transformer is not None:
        fault_f[ids.index(hidden.fault_transformer)] = hidden.rating_factor
    true_loading = run.loading_pct  # against the effective (faulted) rating
    reported = true_loading * fault_f[None, :]  # the same kVA against the nameplate
    top, _hot = top_oil_series(true_loading / 100.0, run.temp_c, step_s=setup.dt_s,
                               params=thermal)
    recs: list[dict[str, Any]] = []
    n_t, n_a = run.loading_pct.shape
    ds_load = {t: 1000 + i for i, t in enumerate(ids)}
    for k in range(n_t):
        t_s = float(run.time_s[k])
        if k % max(1, round(3600 / setup.dt_s)) == 0:
            recs.append({"datastream": 1, "time_s": t_s,
                         "result": round(float(run.temp_c[k] + rng.normal(0, 0.2)), 2)})
        m = run.demand_kw[k] * rng.lognormal(0.0, hidden.meter_noise, n_a)
        lo = reported[k] * rng.lognormal(0.0, hidden.loading_noise, n_a)
        to = top[k] + rng.normal(0.0, hidden.top_oil_noise_c, n_a)
        for i, t in enumerate(ids):
            if nameplate[i] <= 0:
                continue
            base = ds_load[t]
            recs.append({"datastream": base, "time_s": t_s, "result": round(float(m[i]), 3)})
            recs.append({"datastream": base + 1000, "time_s": t_s,
                         "result": round(float(lo[i]), 3)})
            recs.append({"datastream": base + 2000, "time_s": t_s,
                         "result": round(float(to[i]), 3)})
        if counts is not None and t_s in counts.index:
            for i, v in enumerate(counts.loc[t_s].to_numpy(float)):
                recs.append({"datastream": 4000 + i, "time_s": t_s, "result": round(v, 1)})
    return recs, streams, run


def write_feed(folder: str | Path, recs: list[dict[str, Any]], streams: dict[int, Datastream],
               *, truth: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """``feed.jsonl``, ``streams.json`` (and ``truth.json``) in ``folder``."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    feed = d / "feed.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    st = d / "streams.json"
    st.write_text(json.dumps([{"id": s.id, "kind": s.kind, "key": s.key}
                              for s in streams.values()], indent=0), encoding="utf-8")
    if truth is not None:
        (d / "truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return feed, st


def read_streams(path: str | Path) -> dict[int, Datastream]:
    """A datastreams JSON (``[{id, kind, key}, ...]``); errors name the row and key."""
    from citytwin.twin.sensorthings import KINDS

    p = Path(path)
    try:
        rows = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError([f"{p}: not a readable JSON file ({exc})"], source=str(p)) from exc
    problems, out = [], {}
    if not isinstance(rows, list):
        raise InputError([f"{p}: expected a list of {{id, kind, key}}"], source=str(p))
    for n, r in enumerate(rows):
        if not isinstance(r, dict) or not {"id", "kind", "key"} <= set(r):
            problems.append(f"{p} row {n}: expected keys id, kind, key")
        elif r["kind"] not in KINDS:
            problems.append(f"{p} row {n}: kind {r['kind']!r}, expected one of {sorted(KINDS)}")
        else:
            out[int(r["id"])] = Datastream(int(r["id"]), str(r["kind"]), str(r["key"]))
    if problems:
        raise InputError(problems, source=str(p))
    return out
