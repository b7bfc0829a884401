"""SensorThings-style datastreams and MQTT observation messages (OGC SensorThings API v1.1).

Topic: ``v1.1/Datastreams(<id>)/Observations``; payload: a JSON Observation
``{"phenomenonTime": <ISO 8601 instant or "start/end">, "result": <number or object>}``.
A :class:`Datastream` maps an id to what the twin reads from it (``kind``, ``key``, unit); see
docs/live.md for the mapping. :func:`decode` validates one message and returns either an
:class:`Observation` or a quarantine reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

__all__ = ["KINDS", "Datastream", "Observation", "topic", "decode", "encode"]

#: kind -> (unit, valid range of a numeric result; None for object results)
KINDS: dict[str, tuple[str, tuple[float, float] | None]] = {
    "count": ("veh/h", (0.0, 20_000.0)),
    "speed": ("km/h", (0.0, 200.0)),
    "load": ("kW", (-1e5, 1e5)),
    "loading": ("%", (0.0, 500.0)),
    "top_oil": ("degC", (-60.0, 200.0)),
    "temperature": ("degC", (-60.0, 60.0)),
    "incident": ("call", None),
    "closure": ("state", None),
}
_TOPIC = re.compile(r"^v1\.1/Datastreams\((\d+)\)/Observations$")


@dataclass(frozen=True)
class Datastream:
    id: int
    kind: str
    key: str  # edge id, transformer id, "city", ...

    @property
    def unit(self) -> str:
        return KINDS[self.kind][0]


@dataclass(frozen=True)
class Observation:
    datastream: int
    kind: str
    key: str
    time_s: float  # phenomenon (end) time, s since the period start
    result: Any


def topic(datastream_id: int) -> str:
    return f"v1.1/Datastreams({int(datastream_id)})/Observations"


def encode(start: pd.Timestamp, time_s: float, result: Any) -> bytes:
    t = (pd.Timestamp(start) + pd.Timedelta(seconds=float(time_s))).isoformat()
    return json.dumps({"phenomenonTime": t, "result": result}).encode()


def decode(topic_: str, payload: bytes, streams: dict[int, Datastream], start: pd.Timestamp
           ) -> Observation | str:
    """An :class:`Observation`, or the reason (``malformed: ...``, ``unknown datastream ...``,
    ``invalid value: ...``) the message is quarantined."""
    m = _TOPIC.match(topic_)
    if m is None:
        return f"malformed: topic {topic_!r} is not v1.1/Datastreams(<id>)/Observations"
    ds = streams.get(int(m.group(1)))
    if ds is None:
        return f"unknown datastream {m.group(1)}"
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        return f"malformed: payload is not JSON ({exc.__class__.__name__})"
    if not isinstance(doc, dict) or "phenomenonTime" not in doc or "result" not in doc:
        return "malformed: expected an object with phenomenonTime and result"
    ptime = str(doc["phenomenonTime"]).split("/")[-1]
    try:
        t = datetime.fromisoformat(ptime)
    except ValueError:
        return f"malformed: phenomenonTime {ptime!r} is not ISO 8601"
    time_s = (pd.Timestamp(t) - pd.Timestamp(start)).total_seconds()
    res = doc["result"]
    rng = KINDS[ds.kind][1]
    if rng is not None:
        if isinstance(res, bool) or not isinstance(res, int | float) or not math.isfinite(res):
            return f"invalid value: result {res!r} of a {ds.kind} datastream is not a number"
        if not rng[0] <= res <= rng[1]:
            return f"invalid value: {ds.kind} {res} outside {rng[0]:g}..{rng[1]:g} {ds.unit}"
    elif ds.kind == "closure" and (not isinstance(res, dict) or res.get("state") not in
                                   ("closed", "open") or not isinstance(res.get("edge_id"), int)):
        return "malformed: closure result must be {edge_id: int, state: closed|open}"
    return Observation(ds.id, ds.kind, ds.key, float(time_s), res)
