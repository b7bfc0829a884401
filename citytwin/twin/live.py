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

With an energy ``setup`` (:class:`citytwin.twin.forecast.EnergySetup`) the twin runs its own
model of the day (the nominal run) and keeps, online: the demand multiplier of the buildings'
electricity (a linear Kalman filter on each meter reading against the nominal run's base load
and EV charging), a kVA factor per transformer (its loading readings against the model), the
thermal state and effective-rating factor of each transformer (an EKF on its top-oil readings,
:mod:`citytwin.twin.thermal`) and the ambient. When an observation arrives past the end of the
current update window (``window_s`` of city time), the window is closed *before* that
observation is applied: the next ``horizon_h`` hours are re-forecast from the state
(:func:`citytwin.twin.forecast.forecast`), and the forecast, the state, the alerts and the
maintenance ranking (:mod:`citytwin.twin.maintenance`) are written as Parquet parts named by the
window (``forecast/``, ``state/``, ``alerts/``, ``maintenance/`` ``issue-<s>.parquet``, atomic
rename). After a kill -9 the journal replay restores the state and the window counter, and a
window issued again (its closing observation was not yet journaled) is rewritten with the same
content, so the folder is append-safe and resumable.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from citytwin.twin.estimate import LinearMultiplierKalman, LogMultiplierKalman
from citytwin.twin.sensorthings import Datastream, Observation, decode

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["LiveTwin", "Broker", "run_live", "free_port", "read_parts"]

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


def _atomic_parquet(df: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def read_parts(out: str | Path, name: str) -> pd.DataFrame:
    """All ``issue-*.parquet`` parts of ``out/name`` (forecast, state, alerts, maintenance)
    concatenated in window order (an empty frame when there are none)."""
    parts = sorted((Path(out) / name).glob("issue-*.parquet"))
    frames = [pd.read_parquet(p) for p in parts]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class LiveTwin:
    def __init__(self, streams: dict[int, Datastream], out: str | Path, *,
                 start: pd.Timestamp | str, modelled: Callable[[Observation], float] | None = None,
                 city: City | None = None, meter_r: float = 0.01, setup: Any = None,
                 window_s: float = 3600.0, horizon_h: float = 6.0, replications: int = 5,
                 meter_rel: float = 0.1, loading_r: float = 0.01,
                 traffic_replications: int = 3) -> None:
        self.streams, self.start = streams, pd.Timestamp(start)
        self.modelled, self.city, self.meter_r = modelled, city, meter_r
        self.out = Path(out)
        (self.out / "journal").mkdir(parents=True, exist_ok=True)
        (self.out / "state").mkdir(parents=True, exist_ok=True)
        self.setup, self.window_s, self.horizon_h = setup, float(window_s), float(horizon_h)
        self.replications, self.meter_rel, self.loading_r = replications, meter_rel, loading_r
        self.traffic_replications = int(traffic_replications)
        self.issued: list[float] = []
        self.skipped_windows = 0
        self.forecast_s: list[float] = []  # compute time of each forecast (wall s)
        self._replaying = True
        if setup is not None:
            from citytwin.twin.forecast import simulate
            from citytwin.twin.thermal import ThermalState

            self.nominal = simulate(setup)
            self.trafos = self.nominal.trafo_ids
            self._tidx = {t: i for i, t in enumerate(self.trafos)}
            self.demand = LinearMultiplierKalman()
            self.kva = [LogMultiplierKalman(var=0.04, q=1e-4) for _ in self.trafos]
            self.thermal = ThermalState(self.trafos, q_per_h=0.1)
            self.last_loading: dict[str, float] = {}
            self.ambient_c: float | None = None
            self.ambient_bias_c = 0.0
            self.traffic: LinearMultiplierKalman | None = None
            if setup.traffic is not None and any(d.kind == "count" for d in streams.values()):
                from citytwin.twin.forecast import hourly_counts

                c = hourly_counts(setup)
                self._counts = {(int(e), float(t)): float(v) for e, t, v in
                                c[["edge_id", "time_s", "count"]].itertuples(index=False)}
                self.traffic = LinearMultiplierKalman()
                self.loop_edges = sorted(int(d.key) for d in streams.values()
                                         if d.kind == "count")
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
        wm = max(self.last_t.values(), default=0.0)
        self.next_issue = max(self.window_s, math.ceil(wm / self.window_s) * self.window_s)
        self._replaying = False

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
        if (self.setup is not None and obs.time_s > self.next_issue + 1e-9
                and not self._replaying):
            self._close_windows(obs.time_s)
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
        if self.setup is not None:
            self._assimilate(obs)

    # ------------------------------------------------------------------ model state
    def _step(self, t_s: float) -> int:
        """Row of the nominal run whose step ends at ``t_s`` (readings are step means)."""
        k = int(round(t_s / self.setup.dt_s)) - 1
        return min(max(k, 0), len(self.nominal.time_s) - 1)

    def _modelled_loading(self, k: int, j: int) -> float:
        n = self.nominal
        tot = n.base_kw[k, j] + n.ev_kw[k, j]
        if tot <= 0:
            return 0.0
        m = max(self.demand.mean, 0.05)
        return float(n.loading_pct[k, j] * (m * n.base_kw[k, j] + n.ev_kw[k, j]) / tot)

    def _assimilate(self, obs: Observation) -> None:
        j = self._tidx.get(obs.key, -1)
        k = self._step(obs.time_s)
        n = self.nominal
        if obs.kind == "temperature":
            self.ambient_c = float(obs.result)
            self.ambient_bias_c = self.ambient_c - float(n.temp_c[k])
        elif obs.kind == "count" and self.traffic is not None:
            mod = self._counts.get((int(obs.key), float(obs.time_s)), 0.0)
            if mod > 0:  # Poisson of the truth and of the model's sample, plus 5 % model error
                var = 2.0 * mod / float(self.setup.traffic.sample) + (0.05 * mod) ** 2
                self.traffic.update(float(obs.result), mod, r=var)
        elif j < 0:
            return
        elif obs.kind == "load":
            self.demand.update(float(obs.result), float(n.base_kw[k, j]), float(n.ev_kw[k, j]),
                               rel=self.meter_rel)
        elif obs.kind == "loading":
            self.last_loading[obs.key] = float(obs.result) / 100.0
            mod = self._modelled_loading(k, j)
            if mod > 2.0:  # a near-empty transformer's ratio says nothing
                self.kva[j].update(float(obs.result), mod, r=self.loading_r)
        elif obs.kind == "top_oil":
            amb = self.ambient_c if self.ambient_c is not None else float(n.temp_c[k])
            pu = self.last_loading.get(obs.key)
            if pu is None:
                pu = self._modelled_loading(k, j) * self.kva[j].multiplier / 100.0
            self.thermal.observe(obs.key, obs.time_s, float(obs.result), loading_pu=pu,
                                 ambient_c=amb)

    def _close_windows(self, t_s: float) -> None:
        """Issue the forecast of the latest window that ``t_s`` closes (older ones skipped)."""
        w = self.window_s
        issue = math.floor((t_s - 1e-9) / w) * w
        if issue < self.next_issue - 1e-9:
            return
        self.skipped_windows += int(round((issue - self.next_issue) / w))
        self.issue_forecast(issue)
        self.next_issue = issue + w

    def issue_forecast(self, issue_s: float) -> dict[str, pd.DataFrame]:
        """Forecast the next ``horizon_h`` hours from the current state and write the parts."""
        from citytwin.rng import stream
        from citytwin.twin import maintenance
        from citytwin.twin.forecast import forecast

        t0, c0 = time.perf_counter(), time.thread_time()
        th = self.thermal
        r = self.replications
        # each replication draws the transformers' factors from their posteriors
        z = stream(int(issue_s), "live_forecast").standard_normal((r, len(self.trafos)))
        g = np.maximum(th.g[None, :] + th.g_sd()[None, :] * z, 0.2)
        c = np.array([f.multiplier for f in self.kva])
        fc_df, fc = forecast(self.setup, issue_s=issue_s, multiplier=self.demand.mean,
                             multiplier_sd=self.demand.sd, loading_factor=g * c[None, :],
                             thermal=(th.rise, th.gradient), ambient_bias_c=self.ambient_bias_c,
                             horizon_h=self.horizon_h, replications=r,
                             thermal_params=th.params)
        tag = f"issue-{int(issue_s):08d}.parquet"
        out: dict[str, pd.DataFrame] = {"forecast": fc_df}
        lo, hi = self.demand.band()
        state = pd.DataFrame({
            "issue_s": float(issue_s), "asset_id": self.trafos, "applied": self.applied,
            "demand_multiplier": self.demand.mean, "demand_multiplier_lo": lo,
            "demand_multiplier_hi": hi, "kva_factor": c, "rating_factor_g": th.g,
            "rating_factor_g_sd": th.g_sd(), "top_oil_rise_c": th.rise,
            "hot_spot_gradient_c": th.gradient, "loss_of_life_h": th.aged_h,
            "ambient_bias_c": self.ambient_bias_c,
            "closed_edges": ",".join(map(str, sorted(self.closed)))})
        if self.traffic is not None:
            tlo, thi = self.traffic.band()
            state["traffic_multiplier"] = self.traffic.mean
            state["traffic_multiplier_lo"], state["traffic_multiplier_hi"] = tlo, thi
            if self.traffic_replications > 0:
                from citytwin.network import edits
                from citytwin.twin.forecast import traffic_forecast

                city = (edits.close_links(self.setup.city, edges=sorted(self.closed))
                        if self.closed else self.setup.city)
                out["traffic"] = traffic_forecast(
                    self.setup, issue_s=issue_s, multiplier=self.traffic.mean,
                    multiplier_sd=self.traffic.sd, edges=self.loop_edges, city=city,
                    horizon_h=self.horizon_h, replications=self.traffic_replications)
        out["state"] = state
        if fc:
            amb = fc_df.groupby("time_s").size().index.to_numpy()  # forecast step ends
            amb_c = np.interp(amb, self.nominal.time_s, self.nominal.temp_c) + self.ambient_bias_c
            rank = maintenance.ranking(self.trafos, thermal=th, fc=fc, issue_s=issue_s,
                                       step_s=self.setup.dt_s)
            G = self.setup.city.power  # where each transformer is (city CRS), for the map
            rank["x"] = [float(G.nodes[a].get("x", np.nan)) for a in rank["asset_id"]]
            rank["y"] = [float(G.nodes[a].get("y", np.nan)) for a in rank["asset_id"]]
            out["maintenance"] = rank
            out["alerts"] = maintenance.alerts(self.trafos, setup=self.setup, thermal=th, fc=fc,
                                               issue_s=issue_s, ambient_c=amb_c)
        wall = time.perf_counter() - t0
        state["forecast_wall_s"], state["forecast_cpu_s"] = wall, time.thread_time() - c0
        for name, df in out.items():
            _atomic_parquet(df, self.out / name / tag)
        self.issued.append(float(issue_s))
        self.forecast_s.append(wall)
        return out

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
        mult = self.load.multiplier
        if self.setup is not None:  # the energy model's demand multiplier
            (lo, hi), mult = self.demand.band(), self.demand.mean
        row = pd.DataFrame([{"part": self.parts, "applied": self.applied,
                             "time_s": max(self.last_t.values(), default=0.0),
                             "load_multiplier": mult, "load_lo": lo, "load_hi": hi,
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
