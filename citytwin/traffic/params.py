"""Traffic parameters (frozen, validated)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TrafficParams"]


class TrafficParams(BaseModel):
    """Everything the traffic engine and its demand model can be told. Units in the names.

    Defaults follow MATSim's QSim where it has one: stuck time 10 s, jam spacing 7.5 m, holes
    travelling back at 15 km/h.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # --- network loading
    step_s: float = Field(default=1.0, gt=0, le=10, description="engine time step")
    sample: float = Field(default=1.0, gt=0, le=1, description="simulated share of the population; capacities scaled")
    jam_spacing_m: float = Field(default=7.5, gt=0, description="road length one stopped car occupies per lane")
    wave_speed_kph: float = Field(default=15.0, ge=0, description="backward speed of freed space; 0 = instant")
    stuck_s: float = Field(default=10.0, gt=0, description="a head vehicle blocked this long is "
                           "pushed through; in full-population time: a sampled run waits "
                           "stuck_s / sample, as its queues move 1/sample times slower")
    capacity_factor: float = Field(default=1.0, gt=0, description="multiplies every link capacity")
    # --- routing
    # 60 s, not 300 s: every departure of a refresh window takes the path one snapshot shows
    # free, so a long window herds (the full population of the 10k synthetic city had 2.2x the
    # delay of free-flow routes at 300 s, 1.1x at 60 s; see test_default_routing_does_not_herd;
    # route_spread splits each window over near-equal paths)
    route_refresh_s: float = Field(default=60.0, gt=0, description="routes searched on the current link times this often")
    route_spread: float = Field(default=0.2, ge=0, description="each refresh also searches "
                                "alternatives with the links of its best paths this much dearer; "
                                "a trip takes its alternative with probability 1/2 where that "
                                "costs at most half as much more than its best path on the "
                                "current link times (0: all-or-nothing per refresh)")
    reroute_share: float = Field(default=0.0, ge=0, le=1, description="share of en-route vehicles re-routed per refresh")
    # --- demand
    demand_scale: float = Field(default=1.0, ge=0, description="multiplies the number of trips")
    od_factors: str | None = Field(default=None, description="parquet of calibrated zone OD "
                                   "factors (origin, dest, depart_bin, od_factor) from "
                                   "citytwin calibrate; car tours are reweighted by them")
    zone_m: float = Field(default=1000.0, gt=0, description="square zone size of od_factors, m")
    od_cell_s: float = Field(default=3600.0, gt=0, description="departure bin of od_factors, s")
    car_share: float = Field(default=0.45, ge=0, le=1, description="share of persons making their trips by car")
    employment_rate: float = Field(default=0.55, ge=0, le=1, description="share of persons with a work place")
    other_trips_per_person: float = Field(default=0.6, ge=0, description="home-other-home tours per car user and day")
    gravity_beta_per_min: float = Field(default=0.08, ge=0, description="destination choice decay exp(-beta*t)")
    am_peak_h: float = Field(default=7.75, ge=0, lt=24)
    pm_peak_h: float = Field(default=16.5, ge=0, lt=24)
    peak_sd_h: float = Field(default=1.0, gt=0)
    other_mean_h: float = Field(default=13.0, ge=0, lt=24)
    other_sd_h: float = Field(default=3.0, gt=0)
    min_activity_s: float = Field(default=1800.0, ge=0, description="shortest stay between two trips of a chain")
    # --- vehicles and emissions
    # (the EV share is the scenario's [fleet], read by traffic and energy alike)
    co2_ice_g_per_km: float = Field(
        default=170.0, ge=0,
        description="real-world fleet-average passenger car, tailpipe (EEA/ICCT real-world gap studies)",
    )
    co2_ev_g_per_km: float = Field(
        default=14.0, ge=0,
        description="0.18 kWh/km x ~80 gCO2/kWh (Finnish grid 2023, Statistics Finland); 0 tailpipe",
    )
    # --- outputs
    record_interval_s: float = Field(default=900.0, gt=0, description="per-link time series resolution")
