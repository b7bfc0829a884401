"""The vehicle fleet of a scenario: one source of truth for the EV share and charging policy.

Traffic reads ``ev_share`` (which simulated cars are electric: their km, their CO2); energy
reads the same share and ``charging`` (when those cars draw from the grid, or, with traffic off,
how many synthetic home arrivals there are). The scenario says it once, in ``[fleet]`` or with
an ``ev_share`` intervention; no domain section carries its own copy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ChargingPolicy", "Fleet"]

ChargingPolicy = Literal["uncontrolled", "delayed", "smart"]


class Fleet(BaseModel):
    """Share of cars that are battery electric, and how they charge."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    ev_share: float = Field(default=0.15, ge=0, le=1,
                            description="share of cars that are battery electric")
    charging: ChargingPolicy = Field(default="uncontrolled",
                                     description="uncontrolled: on arrival; delayed: from 22:00; "
                                                 "smart: spread within transformer headroom")
