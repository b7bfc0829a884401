"""The live twin: observations from an MQTT broker (QoS 1, persistent session) kept in step.

``LiveTwin(streams, out, start=..., modelled=...)`` validates each message
(:func:`citytwin.twin.sensorthings.decode`), quarantines bad ones with the reason (malformed,
unknown datastream, invalid value, duplicate, out of order), and applies the good ones:
closures to the closed-edge set (``network.edits.close_links`` on the city when one is given),
load observations to a recursive estimate of the load multiplier (Kalman,
:mod:`citytwin.twin.estimate`). Every applied observation is appended to
``out/journal/observations.jsonl`` (fsync per batch) *before* the broker is acknowledged, so a
kill -9 loses nothing and, on restart, the journal is replayed and redeliveries are dropped as
duplicates (key: datastream + phenomenon time). State snapshots are written as Parquet parts
(``out/state/part-NNNNN.parquet``, atomic rename).
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from citytwin.twin.estimate import LogMultiplierKalman
from citytwin.twin.sensorthings import Datastream, Observation, decode

__all__ = ["LiveTwin", "Broker", "run_live", "free_port"]

MOSQUITTO = "/usr/sbin/mosquitto"


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Lines of a journal; a torn last line (kill -9 mid-write) is cut off the file."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    good = raw[: raw.rfind(b"\n") + 1]
    if len(good) != len(raw):
        with path.open("r+b") as f:
            f.truncate(len(good))
    return [json.loads(line) for line in good.splitlines() if line.strip()]


class LiveTwin:
    def __init__(self, streams: dict[int, Datastream], out: str | Path, *,
                 start: pd.Timestamp | str, modelled: Callable[[Observation], float] | None = None,
                 city: Any = None, meter_r: float = 0.01) -> None:
        self.streams, self.start = streams, pd.Timestamp(start)
        self.modelled, self.city, self.meter_r = modelled, city, meter_r
        self.out = Path(out)
        (self.out / "journal").mkdir(parents=True, exist_ok=True)
        (self.out / "state").mkdir(parents=True, exist_ok=True)
        self._jpath = self.out / "journal" / "observations.jsonl"
        self._qpath = self.out / "journal" / "quarantine.jsonl"
        self.load = LogMultiplierKalman()
        self.closed: set[int] = set()
        self.seen: set[tuple[int, float]] = set()
        self.last_t: dict[int, float] = {}
        self.applied = 0
        self.quarantined: dict[str, int] = {}
        self._pending: list[str] = []
        self._qpending: list[str] = []
        for rec in _read_jsonl(self._jpath):  # resume: replay the journal
            self._apply(Observation(rec["ds"], rec["kind"], rec["key"], rec["t"], rec["result"]))
        for rec in _read_jsonl(self._qpath):
            k = rec["reason"].split(":")[0].split(" ")[0]
            self.quarantined[k] = self.quarantined.get(k, 0) + 1
        self.parts = len(list((self.out / "state").glob("part-*.parquet")))

    # ------------------------------------------------------------------ ingest
    def ingest(self, topic: str, payload: bytes) -> str | None:
        """Validate and apply one message; the quarantine reason, or None when applied.
        Call :meth:`commit` before acknowledging the messages to the broker."""
        obs = decode(topic, payload, self.streams, self.start)
        if isinstance(obs, Observation):
            key = (obs.datastream, obs.time_s)
            if key in self.seen:
                obs = f"duplicate: datastream {key[0]} at {key[1]:g} s already applied"
            elif obs.time_s < self.last_t.get(obs.datastream, -float("inf")):
                obs = (f"out of order: datastream {obs.datastream} at {obs.time_s:g} s after "
                       f"{self.last_t[obs.datastream]:g} s")
        if isinstance(obs, str):
            k = obs.split(":")[0].split(" ")[0]
            self.quarantined[k] = self.quarantined.get(k, 0) + 1
            self._qpending.append(json.dumps({"topic": topic, "reason": obs,
                                              "payload": payload.decode("utf-8", "replace")}))
            return obs
        self._apply(obs)
        self._pending.append(json.dumps({"ds": obs.datastream, "kind": obs.kind, "key": obs.key,
                                         "t": obs.time_s, "result": obs.result}))
        return None

    def _apply(self, obs: Observation) -> None:
        self.seen.add((obs.datastream, obs.time_s))
        self.last_t[obs.datastream] = obs.time_s
        self.applied += 1
        if obs.kind == "closure":
            e = int(obs.result["edge_id"])
            (self.closed.add if obs.result["state"] == "closed" else self.closed.discard)(e)
        elif obs.kind == "load" and self.modelled is not None:
            self.load.update(float(obs.result), self.modelled(obs), r=self.meter_r)

    def commit(self) -> None:
        """Append the pending journal lines and fsync (then the broker may be acknowledged)."""
        for path, lines in ((self._jpath, self._pending), (self._qpath, self._qpending)):
            if lines:
                with path.open("a", encoding="utf-8") as f:
                    f.write("\n".join(lines) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                lines.clear()

    def road_city(self) -> Any:
        """The city with the currently closed roads closed (``network.edits.close_links``)."""
        from citytwin.network import edits

        if self.city is None or not self.closed:
            return self.city
        return edits.close_links(self.city, edges=sorted(self.closed))

    def write_state(self) -> Path:
        lo, hi = self.load.band()
        row = pd.DataFrame([{"part": self.parts, "applied": self.applied,
                             "time_s": max(self.last_t.values(), default=0.0),
                             "load_multiplier": self.load.multiplier, "load_lo": lo, "load_hi": hi,
                             "closed_edges": ",".join(map(str, sorted(self.closed))),
                             "quarantined": sum(self.quarantined.values())}])
        path = self.out / "state" / f"part-{self.parts:05d}.parquet"
        tmp = path.with_suffix(".tmp")
        row.to_parquet(tmp)
        os.replace(tmp, path)
        self.parts += 1
        return path


# ---------------------------------------------------------------------- broker
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A Mosquitto broker on 127.0.0.1:``port`` with persistence in ``folder``; stopped by PID."""

    def __init__(self, folder: str | Path, port: int) -> None:
        self.folder, self.port = Path(folder), int(port)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.conf = self.folder / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.folder}/\nautosave_interval 1\n"
            f"max_queued_messages 0\nuser {getpass.getuser()}\n", encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
            self.proc = None


def run_live(twin: LiveTwin, host: str, port: int, *, client_id: str = "citytwin-live",
             idle_exit_s: float = 3.0, batch: int = 500) -> None:
    """Subscribe (QoS 1, clean_session false, fixed client id) and ingest until no message has
    arrived for ``idle_exit_s`` (counted from the first message); acknowledge each message only after its journal line is
    fsynced."""
    import queue

    import paho.mqtt.client as mqtt

    q: queue.Queue[Any] = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                    manual_ack=True)
    c.on_connect = lambda cl, *_: cl.subscribe("v1.1/#", qos=1)
    c.on_message = lambda cl, ud, msg: q.put(msg)
    ready = twin.out / "journal" / "subscribed"
    ready.unlink(missing_ok=True)
    c.on_subscribe = lambda *_: ready.touch()
    c.connect(host, port)
    c.loop_start()
    last, got = time.monotonic(), False
    try:
        while not got or time.monotonic() - last < idle_exit_s:
            try:
                msgs = [q.get(timeout=0.1)]
            except queue.Empty:
                continue
            while len(msgs) < batch and not q.empty():
                msgs.append(q.get_nowait())
            for m in msgs:
                twin.ingest(m.topic, m.payload)
            twin.commit()
            for m in msgs:
                c.ack(m.mid, m.qos)
            last, got = time.monotonic(), True
        twin.write_state()
    finally:
        c.loop_stop()
        c.disconnect()
