"""Vehicle agents: one Mesa ``Agent`` per vehicle (one person's chain of car trips).

Positions and queues live in the engine's arrays; a ``Vehicle`` is called only at its decisions
(arrival at the end of a trip, after which the next trip of its plan becomes due) and keeps its plan
and what it experienced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mesa

if TYPE_CHECKING:
    from citytwin.traffic.engine import TrafficEngine

__all__ = ["Vehicle"]


class Vehicle(mesa.Agent):
    """One car and the plan of the person driving it."""

    def __init__(self, model: mesa.Model, *, vehicle_id: Any, trip_ids: range,
                 engine: TrafficEngine, vehicle_type: str) -> None:
        super().__init__(model)
        self.vehicle_id = vehicle_id
        self.trip_ids = trip_ids  # rows of the engine's trips table, in plan order
        self.vehicle_type = vehicle_type
        self._engine = engine
        self.completed: list[int] = []
        self.current_trip: int | None = None
        self.departed_at: float | None = None
        self.experienced_s: list[float] = []

    @property
    def state(self) -> str:
        """``planned``, ``driving`` or ``done``."""
        if len(self.completed) == len(self.trip_ids):
            return "done"
        k = self.trip_ids[len(self.completed)]
        return "driving" if self._engine.state[k] > 0 else "planned"

    def route(self, trip_id: int) -> list[int]:
        """Edge ids of the route currently assigned to one of this vehicle's trips."""
        e = self._engine
        o = int(e.route_off[trip_id])
        return e.route_edges[o: o + int(e.route_len[trip_id])].tolist()

    def on_departure(self, trip_id: int, time_s: float) -> None:
        """Decision point: a trip started (its route was chosen on the shared trees)."""
        self.current_trip = trip_id
        self.departed_at = time_s

    def on_arrival(self, trip_id: int, time_s: float) -> None:
        """Decision point: a trip ended; remember the experienced time."""
        self.completed.append(trip_id)
        self.current_trip = None
        self.experienced_s.append(time_s - float(self._engine.depart_t[trip_id]))
