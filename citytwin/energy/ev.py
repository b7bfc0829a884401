"""EV charging from the vehicles' own trips, with three charging policies.

Input: EV arrivals (contract ``ev_arrivals``: ``vehicle_id``, ``building_id``, ``arrive_s``,
``distance_km``, ``purpose``) from the traffic engine, a user table, or — when traffic is off —
:func:`synthetic_ev_arrivals` (evening home arrivals of the residents' EVs).

Model (assumptions named in :class:`EVAssumptions`):

* Each vehicle starts the period at ``target_soc`` (it left a completed overnight session; a
  ``soc_start_range`` may instead draw it from a hash of the vehicle id keyed by the run's
  ``"ev"`` stream). Every trip uses ``distance_km × consumption_kwh_per_km ×``
  :func:`consumption_factor` (its mean speed and the outdoor temperature, when the arrival
  carries ``duration_s`` / ``temp_c``); the state of charge is carried along the car's trip
  chain and from day to day, so a run charges what its cars drive (no per-day refill).
* Consumption by temperature and speed (``consumption_kwh_per_km`` is the value at 20 °C and
  a mixed-cycle mean speed of 46.5 km/h, WLTP's): cabin heating and a cold battery add
  1.23 %/K below 20 °C — 25 % more at 0 °C, i.e. the ~20 % range loss at freezing that
  fleet telematics report (Recurrent 2022; the Norwegian Automobile Association's winter
  tests found 18.5 % on average) — and air conditioning 2.5 %/K above 27 °C (AAA 2019: 17 %
  less range at 35 °C with the A/C on); the factor is capped at 1.7. Speed: of the energy
  per km at 46.5 km/h, 10 % is aerodynamic drag (∝ v²) and 7 % auxiliaries (∝ 1/v, a
  constant power), the rest rolling and drivetrain losses (∝ 1) — from a 1.8 t car with
  c_r 0.010, c_d·A 0.65 m² and 0.6 kW of auxiliaries; this gives +33 % at 100 km/h and
  +16 % crawling at 10 km/h. Speeds are clipped to 5–130 km/h.
* Arriving ``home`` the car plugs in (home charger, ``home_kw``) until the next ``home_depart_h``
  (at least one hour); arriving at ``work`` it finds a charger with probability
  ``work_charger_share`` (``work_kw``) and stays ``work_dwell_h``. Other purposes do not charge
  (public charging is not modelled). A session asks for the energy up to ``target_soc``.
  The car's next arrival closes the session (it left ~distance / 30 km/h earlier): the next
  trip starts from the SoC at plug-in + the energy actually delivered (a session cut short by
  a policy, an outage or an early departure leaves the car emptier; energy still missing at
  unplug is ``unmet_kwh``). Cars at an unsupplied building charge nothing.
* Policies: ``uncontrolled`` — full power from plug-in; ``delayed`` — home sessions plugged in
  between ``offpeak_end_h`` and ``offpeak_start_h`` wait until ``offpeak_start_h``; ``smart`` —
  full power from plug-in but, per step, the sum on each transformer is capped by its
  headroom (rated kVA × cos φ − the rest of its load), shared in proportion to each car's
  request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from citytwin.errors import InputError
from citytwin.rng import stream

__all__ = ["EVAssumptions", "ChargingState", "EV_COLUMNS", "consumption_factor",
           "synthetic_ev_arrivals"]

log = logging.getLogger(__name__)

EV_COLUMNS = ("vehicle_id", "building_id", "arrive_s", "distance_km", "purpose")
Policy = Literal["uncontrolled", "delayed", "smart"]


@dataclass(frozen=True)
class EVAssumptions:
    battery_kwh: float = 60.0
    consumption_kwh_per_km: float = 0.18
    home_kw: float = 11.0
    work_kw: float = 11.0
    work_charger_share: float = 0.3
    target_soc: float = 0.9
    #: start-of-run SoC range; ``None`` (default): every car starts at ``target_soc`` (it left a
    #: completed overnight session), so the run charges exactly what the cars drive
    soc_start_range: tuple[float, float] | None = None
    soc_min: float = 0.05
    home_depart_h: float = 7.0
    work_dwell_h: float = 8.0
    offpeak_start_h: float = 22.0
    offpeak_end_h: float = 6.0


#: speed at which ``consumption_kwh_per_km`` holds (WLTP's mean speed), km/h
REF_SPEED_KMH = 46.5
_AERO_SHARE, _AUX_SHARE = 0.10, 0.07


def consumption_factor(temp_c: np.ndarray | float | None = None,
                       speed_kmh: np.ndarray | float | None = None) -> np.ndarray:
    """Energy per km relative to ``consumption_kwh_per_km`` (20 °C, 46.5 km/h), by outdoor
    temperature (°C) and mean trip speed (km/h); None or NaN: the reference (module doc)."""
    t = np.asarray(20.0 if temp_c is None else temp_c, float)
    t = np.where(np.isfinite(t), t, 20.0)
    f_t = 1.0 + 0.0123 * np.maximum(0.0, 20.0 - t) + 0.025 * np.maximum(0.0, t - 27.0)
    v = np.asarray(REF_SPEED_KMH if speed_kmh is None else speed_kmh, float)
    v = np.clip(np.where(np.isfinite(v) & (v > 0), v, REF_SPEED_KMH), 5.0, 130.0) / REF_SPEED_KMH
    f_v = (1.0 - _AERO_SHARE - _AUX_SHARE) + _AERO_SHARE * v**2 + _AUX_SHARE / v
    return np.asarray(np.minimum(f_t, 1.7) * f_v)


def _unit_hash(values: np.ndarray, key: int) -> np.ndarray:
    """Uniform [0, 1) numbers from ids, keyed (splitmix64 of pandas' id hash XOR key)."""
    h = pd.util.hash_array(np.asarray(values).astype(str)).astype(np.uint64)
    z = h ^ np.uint64(key)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def validate_arrivals(arrivals: pd.DataFrame, *, building_ids: np.ndarray,
                      source: str = "ev_arrivals") -> list[str]:
    problems = [f"missing column '{c}'" for c in EV_COLUMNS if c not in arrivals.columns]
    if problems:
        return problems
    known = np.isin(arrivals["building_id"].to_numpy(), building_ids)
    if not known.all():
        bad = arrivals.index[~known][:10].tolist()
        ids = arrivals["building_id"].to_numpy()[~known][:10].tolist()
        problems.append(f"rows {bad}: building_id {ids} not in the city's buildings")
    for col in ("arrive_s", "distance_km"):
        x = arrivals[col]
        v = (x.to_numpy(float) if isinstance(x.dtype, np.dtype) and x.dtype.kind in "iuf"
             else pd.to_numeric(x, errors="coerce").to_numpy(float))
        bad_rows = np.flatnonzero(~np.isfinite(v) | (v < 0))
        if bad_rows.size:
            problems.append(f"rows {arrivals.index[bad_rows][:10].tolist()}: '{col}' must be a "
                            "number ≥ 0")
    return problems


def _sorted_columns(arrivals: pd.DataFrame, temp_c: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:
    """The arrivals' columns (contract ones and ``temp_c``/``duration_s`` when present;
    ``temp_c`` given replaces the column) as arrays, rows in stable (``arrive_s``,
    ``vehicle_id``) order."""
    names = [c for c in (*EV_COLUMNS, "temp_c", "duration_s") if c in arrivals.columns]
    cols = {c: arrivals[c].to_numpy() for c in names}
    if temp_c is not None:
        cols["temp_c"] = np.asarray(temp_c, dtype=float)
    # keys as sorted-category codes, as pandas' multi-key sort_values factorizes them
    # (missing values last, as sort_values' na_position; numbers sort as themselves)
    keys = []
    for c in ("vehicle_id", "arrive_s"):
        v = cols[c]
        if v.dtype.kind in "iufb":
            keys.append(v)
            continue
        codes = pd.factorize(v, sort=True)[0]
        keys.append(np.where(codes < 0, codes.max(initial=0) + 1, codes))
    order = np.lexsort(keys)  # last key primary; stable
    return {c: v[order] for c, v in cols.items()}


def _lower_kinds(purpose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(lower-cased str(purpose), return_inverse=True)``, lower-casing each distinct
    value once."""
    raw, raw_inv = np.unique(np.asarray(purpose).astype(str), return_inverse=True)
    kinds, k_inv = np.unique(np.array([k.lower() for k in raw.tolist()], dtype=str),
                             return_inverse=True)
    return kinds, k_inv[raw_inv]


class ChargingState:
    """Charging sessions of one run, advanced step by step on (B,) arrays.

    ``add(arrivals)`` turns new arrivals into sessions; ``step(t_s, dt_s, headroom_kw)``
    returns the charging power per building (kW, mean over the step).
    """

    def __init__(
        self,
        *,
        building_ids: np.ndarray,
        building_trafo: np.ndarray,
        policy: Policy,
        seed: int,
        start: pd.Timestamp,
        assumptions: EVAssumptions = EVAssumptions(),
        building_xy: np.ndarray | None = None,
        building_group: np.ndarray | None = None,
        max_spread: int = 20,
        building_weight: np.ndarray | None = None,
        stagger_h: float = 2.0,
    ) -> None:
        if policy not in ("uncontrolled", "delayed", "smart"):
            raise InputError([f"unknown EV charging policy {policy!r}; expected uncontrolled, "
                              "delayed or smart"])
        self.policy = policy
        self.a = assumptions
        self.start = pd.Timestamp(start)
        self.building_ids = np.asarray(building_ids)
        self._pos = pd.Index(self.building_ids)
        self.building_trafo = np.asarray(building_trafo, dtype=np.int64)  # code, −1 = none
        # with positions, a sampled car (weight w) is spread over its min(w, max_spread)
        # nearest buildings of the same group (use): the cars it stands for do not all park at
        # one building (that invented 110 kW per arrival at sample 0.1)
        self.building_xy = None if building_xy is None else np.asarray(building_xy, float)
        self.building_group = (np.zeros(self.building_ids.size, np.int64) if building_group
                               is None else np.asarray(building_group, np.int64))
        self.max_spread = int(max_spread)
        # ... nor at one moment: the m cars plug in at evenly spaced times over a window of
        # ``stagger_h`` centred on the sampled car's arrival (mean arrival kept), as the cars
        # of a full population arriving at a transformer area do (an assumption of the
        # spread, not data: 2 h (std 0.6 h) breaks the one-instant pile-up of m cars while
        # widening the aggregate arrival spread, 1.5 h for home arrivals, by only 7 %; wider
        # windows flatten the city's evening peak)
        self.stagger_s = float(stagger_h) * 3600.0
        bw = (np.ones(self.building_ids.size) if building_weight is None
              else np.asarray(building_weight, float))
        self.building_weight = np.where(np.isfinite(bw) & (bw > 0), bw, 1e-6)
        self._filled = np.zeros(self.building_ids.size)
        self._trees: dict[int, Any] = {}
        rng = stream(seed, "ev")
        self._key = int(rng.integers(0, 2**63 - 1))
        self._work_key = int(rng.integers(0, 2**63 - 1))
        self._soc: dict[object, float] = {}
        # vehicle → (first index, count) of its latest (open) session(s)
        self._last: dict[object, tuple[int, int]] = {}
        self.driven_kwh = 0.0  # energy the arrivals' trips used (× weight)
        cols = ("pos", "plug_in", "plug_out", "need", "remaining", "pmax", "home", "w", "soc0")
        self._s: dict[str, np.ndarray] = {c: np.zeros(0) for c in cols}
        self.arrivals_seen = 0
        self.sessions_table_parts: list[pd.DataFrame] = []

    # -- sessions ----------------------------------------------------------------------------
    def add(self, arrivals: pd.DataFrame, *, weight: float = 1.0,
            temp_c: np.ndarray | None = None) -> int:
        """Add sessions for ``arrivals`` (contract columns). Returns the number of sessions.

        ``weight``: vehicles each arrival stands for (1 / the traffic sample share): a session
        then charges that many identical cars (energy and power scaled). ``temp_c``: outdoor
        temperature per row (°C), as a ``temp_c`` column would give it."""
        if not weight > 0:
            raise InputError([f"EV arrival weight must be > 0, got {weight}"])
        if arrivals is None or len(arrivals) == 0:
            return 0
        problems = validate_arrivals(arrivals, building_ids=self.building_ids)
        if problems:
            raise InputError(problems, source="ev_arrivals")
        a = self.a
        # columns as arrays in (arrive_s, vehicle_id) order, ties in input order (what a stable
        # sort_values gives, without copying the frame: ~1 ms per call of a pandas sort)
        if temp_c is not None and np.shape(temp_c) != (len(arrivals),):
            raise InputError([f"temp_c: shape {np.shape(temp_c)}, expected ({len(arrivals)},)"])
        cols = _sorted_columns(arrivals, temp_c)
        self.arrivals_seen += len(arrivals)
        vid = cols["vehicle_id"]
        new = [v for v in pd.unique(vid).tolist() if v not in self._soc]
        if new:
            if a.soc_start_range is None:
                self._soc.update((v, a.target_soc) for v in new)
            else:
                lo, hi = a.soc_start_range
                u = _unit_hash(np.asarray(new, dtype=object), self._key)
                self._soc.update(zip(new, lo + (hi - lo) * u, strict=True))
        kinds, inv = _lower_kinds(cols["purpose"])
        is_home_k = np.array(["home" in k for k in kinds], bool)
        is_work_k = np.array([("work" in k) and ("home" not in k) for k in kinds], bool)
        home, work = is_home_k[inv], is_work_k[inv]
        if work.any():  # a charger at work: a keyed draw per (vehicle, arrival)
            w = np.flatnonzero(work)
            tag = np.char.add(vid[w].astype(str), cols["arrive_s"][w].astype(str))
            work[w] = _unit_hash(tag, self._work_key) < a.work_charger_share
        dist = cols["distance_km"].astype(float)
        arrive = cols["arrive_s"].astype(float)
        temp = cols["temp_c"].astype(float) if "temp_c" in cols else None
        speed = (dist / (cols["duration_s"].astype(float) / 3600.0)
                 if "duration_s" in cols else None)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_km = a.consumption_kwh_per_km * consumption_factor(temp, speed)
        use_soc = dist * per_km / a.battery_kwh
        # State of charge carried along each car's trip chain: a new arrival first closes the
        # car's previous session (it has left: the energy delivered so far is what it got),
        # then subtracts this trip's consumption.
        s = self._s
        n_old = s["pos"].size
        soc_arr = np.empty(len(vid))
        last = self._last
        for i, v in enumerate(vid.tolist()):
            jm = last.pop(v, None)
            if jm is not None and jm[0] < n_old:
                sl = slice(jm[0], jm[0] + jm[1])
                got = float((s["need"][sl] - s["remaining"][sl]).sum() / s["w"][sl].sum())
                dep = max(float(s["plug_in"][jm[0]]), arrive[i] - dist[i] / 30.0 * 3600.0)
                s["plug_out"][sl] = np.minimum(s["plug_out"][sl], dep)  # it left then
                self._soc[v] = float(s["soc0"][jm[0]]) + got / a.battery_kwh
            soc = self._soc[v] - use_soc[i]
            soc_arr[i] = soc
            self._soc[v] = soc
        self.driven_kwh += float((use_soc * a.battery_kwh).sum()) * weight
        if (soc_arr < 0).any():
            log.info("%d EV arrivals below 0 %% SoC (trip longer than the battery allows)",
                     int((soc_arr < 0).sum()))
        charge = home | work
        need = np.clip(a.target_soc - soc_arr, 0.0, None) * a.battery_kwh
        charge &= need > 1e-9
        idx = np.flatnonzero(charge)
        pos = self._pos.get_indexer(cols["building_id"][idx])
        m = self._spread_count(weight)
        for k, i in enumerate(idx.tolist()):  # each car's latest session(s) of this batch
            last[vid[i]] = (n_old + k * m, m)
        for i in np.flatnonzero(~charge).tolist():  # ... unless it drove on within the batch
            jm = last.get(vid[i])
            if jm is not None and jm[0] >= n_old and idx[(jm[0] - n_old) // m] < i:
                last.pop(vid[i])
        if idx.size == 0:
            return 0
        arr = arrive[idx]
        is_home = home[idx]
        day_s = 86400.0
        tod_h = ((self.start.hour * 3600 + self.start.minute * 60 + arr) % day_s) / 3600.0
        # next home departure (at least 1 h after arrival)
        wait_h = (a.home_depart_h - tod_h) % 24.0
        wait_h = np.where(wait_h < 1.0, wait_h + 24.0, wait_h)
        plug_out = np.where(is_home, arr + wait_h * 3600.0, arr + a.work_dwell_h * 3600.0)
        plug_in = arr.copy()
        if self.policy == "delayed":
            daytime = (tod_h >= a.offpeak_end_h) & (tod_h < a.offpeak_start_h)
            delay = (a.offpeak_start_h - tod_h) * 3600.0
            plug_in = np.where(is_home & daytime, arr + delay, arr)
            plug_in = np.minimum(plug_in, plug_out)
        add = {
            "pos": pos.astype(float), "plug_in": plug_in, "plug_out": plug_out,
            "need": need[idx] * weight, "remaining": need[idx] * weight,
            "pmax": np.where(is_home, a.home_kw, a.work_kw) * weight,
            "home": is_home.astype(float), "w": np.full(idx.size, float(weight)),
            "soc0": soc_arr[idx],
        }
        if m > 1:  # the m cars a sampled car stands for park at its m nearest like buildings
            add = {c: np.repeat(v, m) for c, v in add.items()}
            for c in ("need", "remaining", "pmax", "w"):
                add[c] = add[c] / m
            add["pos"] = self._neighbours(pos, m).ravel().astype(float)
            shift = np.tile(((np.arange(m) + 0.5) / m - 0.5) * self.stagger_s, idx.size)
            add["plug_in"] = np.clip(add["plug_in"] + shift, 0.0, add["plug_out"])
        for col, vals in add.items():
            self._s[col] = np.concatenate([self._s[col], vals])
        self.sessions_table_parts.append(pd.DataFrame({
            "vehicle_id": np.repeat(vid[idx], m),
            "building_id": self.building_ids[add["pos"].astype(np.int64)],
            "arrive_s": np.repeat(arr, m), "plug_in_s": add["plug_in"],
            "plug_out_s": add["plug_out"], "soc_arrival": add["soc0"], "vehicles": add["w"],
            "need_kwh": add["need"], "charger": np.repeat(np.where(is_home, "home", "work"), m),
        }))
        return int(idx.size)

    def _spread_count(self, weight: float) -> int:
        """Cars a session of ``weight`` is split into (1 without building positions)."""
        if self.building_xy is None or weight <= 1.0 + 1e-9:
            return 1
        return int(min(max(round(weight), 1), self.max_spread, self.building_ids.size))

    def _neighbours(self, pos: np.ndarray, m: int) -> np.ndarray:
        """(len(pos), m) building positions for the m cars each sampled session stands for:
        among the 4m nearest buildings of the same use (itself included), the m least filled
        so far relative to ``building_weight`` (its share of the full population's cars,
        ties by distance). A sample's cars are then spread like the population's, not piled
        where the sampled cars happen to live."""
        from scipy.spatial import cKDTree

        assert self.building_xy is not None
        out = np.empty((pos.size, m), np.int64)
        groups = self.building_group
        wt, filled = self.building_weight, self._filled
        for g in np.unique(groups[pos]):
            members = np.flatnonzero(groups == g)
            k = min(4 * m, members.size)
            if g not in self._trees:
                self._trees[g] = cKDTree(self.building_xy[members])
            rows = np.flatnonzero(groups[pos] == g)
            _, nn = self._trees[g].query(self.building_xy[pos[rows]], k=k)
            nn = members[np.asarray(nn).reshape(rows.size, k)]
            for r, cand in zip(rows.tolist(), nn, strict=True):
                ratio = filled[cand] / wt[cand]
                pick = cand[np.argsort(ratio, kind="stable")[:m]]
                if pick.size < m:  # fewer like buildings than cars: cycle through them
                    pick = np.resize(pick, m)
                np.add.at(filled, pick, 1.0)
                out[r] = pick
        return out

    # -- one step ----------------------------------------------------------------------------
    def step(self, t_s: float, dt_s: float, headroom_kw: np.ndarray | None = None, *,
             supplied: np.ndarray | None = None) -> np.ndarray:
        """Charging kW per building (mean over [t_s, t_s + dt_s)); ``headroom_kw`` per
        transformer code is used by the ``smart`` policy. ``supplied`` (B,) bool: a car at an
        unsupplied building charges nothing (its session keeps waiting; what is still missing
        when it unplugs is ``unmet_kwh``)."""
        n = self.building_ids.size
        s = self._s
        if s["pos"].size == 0:
            return np.zeros(n)
        dt_h = dt_s / 3600.0
        frac = np.clip((np.minimum(s["plug_out"], t_s + dt_s) - np.maximum(s["plug_in"], t_s))
                       / dt_s, 0.0, 1.0)
        want = np.minimum(s["pmax"] * frac, s["remaining"] / dt_h)
        want[frac <= 0] = 0.0
        pos = s["pos"].astype(np.int64)
        if supplied is not None:
            want[~np.asarray(supplied, bool)[pos]] = 0.0
        if self.policy == "smart" and headroom_kw is not None:
            tr = self.building_trafo[pos]
            has = tr >= 0
            ntr = headroom_kw.size
            total = np.bincount(tr[has], weights=want[has], minlength=ntr)
            cap = np.clip(headroom_kw, 0.0, None)
            scale = np.where(total > cap, cap / np.maximum(total, 1e-12), 1.0)
            want[has] *= scale[tr[has]]
        s["remaining"] = np.maximum(s["remaining"] - want * dt_h, 0.0)
        return np.bincount(pos, weights=want, minlength=n)

    # -- summaries ---------------------------------------------------------------------------
    @property
    def n_sessions(self) -> int:
        return int(self._s["pos"].size)

    def vehicle_sessions(self) -> float:
        """Sessions counted in vehicles (each sampled session stands for ``weight`` cars)."""
        return float(self._s["w"].sum())

    def requested_kwh(self) -> float:
        return float(self._s["need"].sum())

    def delivered_kwh(self) -> float:
        return float((self._s["need"] - self._s["remaining"]).sum())

    def unmet_kwh(self, until_s: float) -> float:
        """Energy still missing in sessions that unplugged before ``until_s``."""
        done = self._s["plug_out"] <= until_s
        return float(self._s["remaining"][done].sum())

    def sessions(self) -> pd.DataFrame:
        """One row per charging session with the energy delivered so far."""
        if not self.sessions_table_parts:
            return pd.DataFrame(columns=["vehicle_id", "building_id", "arrive_s", "plug_in_s",
                                         "plug_out_s", "soc_arrival", "vehicles", "need_kwh",
                                         "charger",
                                         "delivered_kwh"])
        df = pd.concat(self.sessions_table_parts, ignore_index=True)
        df["delivered_kwh"] = self._s["need"] - self._s["remaining"]
        return df


def synthetic_ev_arrivals(
    buildings: pd.DataFrame,
    *,
    ev_share: float,
    seed: int,
    days: int = 1,
    cars_per_person: float = 0.4,
    daily_km_mean: float = 30.0,
) -> pd.DataFrame:
    """EV home arrivals for a run without traffic: residents' cars coming home each evening.

    Cars per residential building = Poisson(population × ``cars_per_person``) (Helsinki has
    ~0.4 cars per inhabitant), a share ``ev_share`` of them electric; each drives a lognormal
    daily distance (mean ``daily_km_mean``) and arrives home at N(17:30, 1.5 h) every day.
    """
    if not 0.0 <= ev_share <= 1.0:
        raise InputError([f"ev_share must be within 0..1, got {ev_share}"])
    if "population" not in buildings.columns:
        raise InputError(["missing column 'population' (needed to place EVs)"], source="buildings")
    rng = stream(seed, "ev_synth")
    pop = pd.to_numeric(buildings["population"], errors="coerce").fillna(0.0).to_numpy(float)
    res = buildings["use"].astype(str).to_numpy() == "residential"
    lam = np.where(res, np.clip(pop, 0, None) * cars_per_person * ev_share, 0.0)
    n_ev = rng.poisson(lam)
    bld = np.repeat(buildings.index.to_numpy(), n_ev)
    n = bld.size
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in zip(
            EV_COLUMNS, ("int64", "int64", "float64", "float64", "object"), strict=True)})
    sigma = 0.6
    mu = np.log(daily_km_mean) - sigma**2 / 2
    parts = []
    for d in range(days):
        arrive = np.clip(rng.normal(17.5, 1.5, n), 12.0, 23.9) * 3600.0 + d * 86400.0
        parts.append(pd.DataFrame({
            "vehicle_id": np.arange(n, dtype=np.int64), "building_id": bld,
            "arrive_s": arrive, "distance_km": rng.lognormal(mu, sigma, n), "purpose": "home",
        }))
    return pd.concat(parts, ignore_index=True)
