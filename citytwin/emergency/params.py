"""Emergency parameters: unit types, response plans, incident rates, service-time assumptions.

Every number here is an assumption a scenario can change; the defaults and their sources:

* **EMS call rate** 0.12 calls per resident per year. Literature and agency reports put EMS demand
  at roughly 100-150 calls per 1,000 residents per year (e.g. Helsinki-Uusimaa EMS ~ 150 / 1,000;
  US NEMSIS ~ 130 / 1,000); we take the middle. Workers add 0.03 per job-year (day-time presence).
* **Fire** (building fires, all alarms) 0.0015 per resident-year plus 0.0005 per job-year: Finland
  reports about 5,000-6,000 building fires a year for 5.5 M people (~1 / 1,000), to which we add
  automatic alarms that still send an engine.
* **Traffic collisions** needing a response 0.002 per resident- or job-year (Finland: ~4,000
  injury collisions a year plus rescue-only calls; we place them at the buildings where activity is).
* **Time of day**: one hourly multiplier profile (mean 1), trough at 04-05 h and plateau 10-17 h,
  the shape reported for EMS call volumes (e.g. Cantwell et al. 2015); traffic collisions use a
  commuter-peak profile.
* **Turnout**: gamma with mean = the NFPA 1710 limit x 0.8 (48 s EMS, 64 s fire) and CV 0.3, so
  most but not all turnouts meet the standard.
* **On scene**: gamma, means medical 20 min, fire 40 min, collision 30 min, CV 0.5; medical
  transport probability 0.7 (P1) / 0.5 (P2), hospital handover 15 min.
* **Priority passing**: an emergency vehicle experiences free-flow time plus ``congestion_share``
  (default 0.3) of the congestion delay the traffic engine reports on each link.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "UNIT_TYPES",
    "INCIDENT_TYPES",
    "StationSpec",
    "EmergencyParams",
    "EMS_PROFILE",
    "COMMUTE_PROFILE",
]

#: unit type -> (turnout class "ems" or "fire", NFPA travel target in s)
UNIT_TYPES: dict[str, tuple[str, float]] = {
    "engine": ("fire", 240.0),
    "ladder": ("fire", 480.0),
    "bls": ("ems", 240.0),
    "als": ("ems", 480.0),
}
INCIDENT_TYPES: tuple[str, ...] = ("medical", "fire", "traffic")

_EMS_RAW = [0.70, 0.60, 0.55, 0.50, 0.45, 0.50, 0.60, 0.80, 1.00, 1.15, 1.25, 1.30,
            1.30, 1.30, 1.25, 1.25, 1.20, 1.20, 1.15, 1.10, 1.05, 1.00, 0.90, 0.80]
_COMMUTE_RAW = [0.40, 0.30, 0.25, 0.20, 0.25, 0.50, 1.00, 1.70, 1.60, 1.10, 1.00, 1.10,
                1.20, 1.10, 1.20, 1.50, 1.90, 1.80, 1.30, 1.00, 0.80, 0.70, 0.60, 0.50]
EMS_PROFILE: tuple[float, ...] = tuple(v * 24 / sum(_EMS_RAW) for v in _EMS_RAW)
COMMUTE_PROFILE: tuple[float, ...] = tuple(v * 24 / sum(_COMMUTE_RAW) for v in _COMMUTE_RAW)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StationSpec(_Frozen):
    """A station a scenario adds (e.g. one proposed by :func:`site_stations`)."""

    kind: Literal["fire_station", "ambulance_station"]
    road_node: int
    name: str = ""
    units: dict[str, int] | None = None  # None: the default complement of ``kind``


class EmergencyParams(_Frozen):
    """Parameters of the emergency engine (frozen; unknown keys are errors)."""

    # --- stations and units -------------------------------------------------------------
    units_per_station: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            # Helsinki City Rescue Department runs ambulances from its fire stations
            "fire_station": {"engine": 1, "ladder": 1, "bls": 1},
            "ambulance_station": {"als": 1, "bls": 1},
        }
    )
    station_units: dict[int, dict[str, int]] = Field(default_factory=dict)  # facility_id -> units
    extra_stations: tuple[StationSpec, ...] = ()
    closed_stations: tuple[int, ...] = ()  # facility ids
    # --- incidents ----------------------------------------------------------------------
    generate_incidents: bool = True
    incident_log: str | None = None  # .csv/.parquet to replay instead (see read_incidents)
    medical_per_resident_year: float = Field(default=0.12, ge=0)
    medical_per_job_year: float = Field(default=0.03, ge=0)
    fire_per_resident_year: float = Field(default=0.0015, ge=0)
    fire_per_job_year: float = Field(default=0.0005, ge=0)
    traffic_per_person_year: float = Field(default=0.002, ge=0)
    rate_multiplier: float = Field(default=1.0, ge=0)  # scales every rate (stress tests)
    medical_use_factor: dict[str, float] = Field(
        default_factory=lambda: {"health": 3.0, "hospitality": 1.5}  # care homes, hotels
    )
    fire_use_factor: dict[str, float] = Field(default_factory=lambda: {"industrial": 2.0})
    medical_p1_share: float = Field(default=0.4, ge=0, le=1)  # life-threatening -> ALS
    outage_rate_multiplier: float = Field(default=1.5, ge=0)  # incident rates in unsupplied buildings
    # --- service times ------------------------------------------------------------------
    turnout_mean_s: dict[str, float] = Field(default_factory=lambda: {"ems": 48.0, "fire": 64.0})
    turnout_cv: float = Field(default=0.3, ge=0)
    on_scene_mean_s: dict[str, float] = Field(
        default_factory=lambda: {"medical": 1200.0, "fire": 2400.0, "traffic": 1800.0}
    )
    on_scene_cv: float = Field(default=0.5, ge=0)  # gamma CV; 1.0 = exponential
    transport_prob: dict[str, float] = Field(default_factory=lambda: {"p1": 0.7, "p2": 0.5})
    handover_s: float = Field(default=900.0, ge=0)
    ladder_min_levels: int = Field(default=4, ge=1)  # fires in buildings this tall also get a ladder
    # --- dispatch -----------------------------------------------------------------------
    dispatch: Literal["closest", "zones"] = "closest"
    move_up: bool = False
    queue_calls: bool = True  # False: a call finding no free unit is lost (Erlang-B setting)
    congestion_share: float = Field(default=0.3, ge=0, le=1)  # alpha of the priority-passing assumption
    closed_edges: tuple[int, ...] = ()  # edge ids closed to emergency vehicles
    stationary_units: bool = False  # validation mode: no travel, busy time = on-scene time only
    # --- KPI thresholds (NFPA 1710) -----------------------------------------------------
    ems_target_s: float = 539.0  # 8:59 call-to-arrival for EMS
    coverage_target_s: float = 240.0

    @model_validator(mode="after")
    def _complete_tables(self) -> EmergencyParams:
        problems = []
        for name, table, keys in (
            ("turnout_mean_s", self.turnout_mean_s, ("ems", "fire")),
            ("on_scene_mean_s", self.on_scene_mean_s, INCIDENT_TYPES),
            ("transport_prob", self.transport_prob, ("p1", "p2")),
        ):
            missing = [k for k in keys if k not in table]
            unknown = [k for k in table if k not in keys]
            if missing or unknown:
                problems.append(f"{name}: expected exactly the keys {list(keys)} "
                                f"(missing {missing}, unknown {unknown})")
            negative = [k for k, v in table.items() if v < 0]
            if negative:
                problems.append(f"{name}: negative value(s) for {negative}")
        if any(not 0 <= v <= 1 for v in self.transport_prob.values()):
            problems.append("transport_prob: probabilities must lie in [0, 1]")
        if problems:
            raise ValueError("; ".join(problems))
        return self
