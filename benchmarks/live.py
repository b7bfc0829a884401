"""Live twin: ingest rate (observations/s through LiveTwin.ingest+commit alone, and end to end
through a real Mosquitto: publish QoS 1 -> twin journal fsync -> ack), and the observation ->
updated forecast latency on the default city (scenarios/baseline.toml, Helsinki): a truth feed
with a hidden demand multiplier and a transformer fault is published window by window to a
`citytwin live` process; the latency is from publishing the observation that closes a window
to the window's forecast Parquet part on disk (6-h horizon, 5 replications).

Then the sustained rate: the feed's first hours published by `citytwin publish --speed X`
(x60, x600) to a twin forecasting after every 15-min meter interval.

Run: .venv/bin/python benchmarks/live.py [--windows 6] [--power-flow scenario|on|off]
     [--skip-ingest] [--sustained 60 600] [--sustained-hours 3]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.twin.live import Broker, LiveTwin, free_port, run_live
from citytwin.twin.sensorthings import Datastream, encode, topic

START = pd.Timestamp("2024-06-03")
N_TR, N_STEPS = 50, 200  # 10,000 meter readings


def _streams() -> dict[int, Datastream]:
    return {10 + i: Datastream(10 + i, "load", f"t{i}") for i in range(N_TR)}


def _msgs() -> list[tuple[str, bytes]]:
    return [(topic(10 + i), encode(START, 900.0 * (k + 1), 100.0 + i))
            for k in range(N_STEPS) for i in range(N_TR)]


ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "baseline.toml"


def _publisher(port: int):  # type: ignore[no-untyped-def]
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-latency",
                    clean_session=False)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def latency(windows: int, power_flow: str) -> None:
    """Observation -> updated forecast on the default city (see module docstring)."""
    from citytwin.twin.forecast import EnergySetup, simulate
    from citytwin.twin.truth import Hidden, truth_feed, write_feed

    t = time.perf_counter()
    pf = {"scenario": None, "on": True, "off": False}[power_flow]
    setup = EnergySetup.from_scenario(SCENARIO, power_flow=pf)
    nominal = simulate(setup)
    fault = nominal.trafo_ids[int(np.argmax(nominal.loading_pct.mean(axis=0)))]
    recs, streams, _ = truth_feed(setup, Hidden(1.15, fault, 0.6))
    print(f"default city: {len(nominal.trafo_ids)} transformers, {len(streams)} datastreams, "
          f"{len(recs):,} observations a day; power flow {setup.params.power_flow}; "
          f"truth built in {time.perf_counter() - t:.1f} s")
    with tempfile.TemporaryDirectory() as d:
        write_feed(d, recs, streams)
        port = free_port()
        broker = Broker(Path(d) / "broker", port).start()
        out = Path(d) / "live"
        twin = subprocess.Popen(
            [str(Path(sys.executable).with_name("citytwin")), "live", str(SCENARIO), "--streams",
             str(Path(d) / "streams.json"), "--broker", f"127.0.0.1:{port}", "--out", str(out),
             "--power-flow", power_flow, "--idle-exit", "600"],
            stdout=subprocess.DEVNULL)
        try:
            while not (out / "journal" / "subscribed").exists():
                time.sleep(0.05)
            c = _publisher(port)
            jpath = out / "journal" / "observations.jsonl"
            sent, lat = 0, []
            by_window: dict[int, list[dict]] = {}
            for r in recs:
                by_window.setdefault(int((r["time_s"] - 1e-9) // 3600), []).append(r)
            for w in range(windows + 1):
                batch = by_window[w]
                trigger, rest = (batch[0], batch[1:]) if w else (None, batch)
                if trigger is not None:  # the first observation past window w-1 closes it
                    part = out / "forecast" / f"issue-{w * 3600:08d}.parquet"
                    t0 = time.perf_counter()
                    c.publish(topic(trigger["datastream"]), encode(setup.start,
                              trigger["time_s"], trigger["result"]), qos=1)
                    while not part.exists():
                        time.sleep(0.005)
                    lat.append(time.perf_counter() - t0)
                    sent += 1
                infos = [c.publish(topic(r["datastream"]), encode(setup.start, r["time_s"],
                                   r["result"]), qos=1) for r in rest]
                for i in infos:
                    i.wait_for_publish(timeout=120)
                sent += len(rest)
                while not jpath.exists() or sum(1 for _ in jpath.open()) < sent:
                    time.sleep(0.05)
            c.loop_stop()
            c.disconnect()
        finally:
            twin.kill()
            twin.wait()
            broker.stop()
        a = np.array(lat)
        print(f"observation -> updated forecast over {len(a)} windows: median {np.median(a):.2f} s,"
              f" p95 {np.quantile(a, 0.95):.2f} s, max {a.max():.2f} s")
        st = pd.concat([pd.read_parquet(p) for p in sorted((out / "state").glob("issue-*"))])
        st = st.groupby("issue_s")[["forecast_wall_s", "forecast_cpu_s"]].first()
        print(f"  of which the forecast itself: median {st['forecast_wall_s'].median():.2f} s "
              f"wall, {st['forecast_cpu_s'].median():.2f} s CPU")
        fc = pd.read_parquet(out / "forecast" / f"issue-{windows * 3600:08d}.parquet")
        print(f"last forecast: {len(fc):,} rows ({fc['time_s'].nunique()} steps x "
              f"{fc['asset_id'].nunique()} transformers); "
              f"{json.dumps({'alerts': len(pd.read_parquet(out / 'alerts' / part.name))})}")


def sustained(speeds: list[float], hours: float, power_flow: str) -> None:
    """The truth feed's first ``hours`` published by `citytwin publish --speed X` to a
    `citytwin live` with a window per meter interval (900 s): does the twin keep up, how many
    windows get a forecast."""
    from citytwin.twin.forecast import EnergySetup
    from citytwin.twin.truth import Hidden, truth_feed, write_feed

    pf = {"scenario": None, "on": True, "off": False}[power_flow]
    setup = EnergySetup.from_scenario(SCENARIO, power_flow=pf)
    recs, streams, _ = truth_feed(setup, Hidden(1.15))
    part = [r for r in recs if r["time_s"] <= hours * 3600.0]
    exe = str(Path(sys.executable).with_name("citytwin"))
    for speed in speeds:
        with tempfile.TemporaryDirectory() as d:
            write_feed(d, part, streams)
            port = free_port()
            broker = Broker(Path(d) / "broker", port).start()
            out = Path(d) / "live"
            twin = subprocess.Popen([exe, "live", str(SCENARIO), "--streams",
                                     str(Path(d) / "streams.json"), "--broker",
                                     f"127.0.0.1:{port}", "--out", str(out), "--window", "900",
                                     "--power-flow", power_flow, "--idle-exit", "600"],
                                    stdout=subprocess.DEVNULL)
            try:
                while not (out / "journal" / "subscribed").exists():
                    time.sleep(0.05)
                t0 = time.perf_counter()
                subprocess.run([exe, "publish", str(Path(d) / "feed.jsonl"), "--broker",
                                f"127.0.0.1:{port}", "--speed", str(speed)], check=True,
                               stdout=subprocess.DEVNULL)
                t_pub = time.perf_counter() - t0
                jpath = out / "journal" / "observations.jsonl"
                while sum(1 for _ in jpath.open()) < len(part):
                    time.sleep(0.05)
                t_all = time.perf_counter() - t0
            finally:
                twin.kill()
                twin.wait()
                broker.stop()
            n_fc = len(list((out / "forecast").glob("issue-*.parquet")))
            windows = int(hours * 3600 / 900) - 1  # the last window is closed by nothing
            print(f"x{speed:g}: {hours:g} h of city time ({len(part):,} obs) published in "
                  f"{t_pub:.1f} s; all applied {t_all - t_pub:.1f} s after the publisher ended "
                  f"({len(part) / t_all:,.0f} obs/s sustained); forecasts for {n_fc} of "
                  f"{windows} windows")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--sustained", type=float, nargs="*", default=[60.0, 600.0],
                    help="publish speeds for the sustained-rate run (none: skip it)")
    ap.add_argument("--sustained-hours", type=float, default=3.0)
    ap.add_argument("--power-flow", choices=("scenario", "on", "off"), default="scenario")
    ap.add_argument("--skip-ingest", action="store_true")
    args = ap.parse_args()
    if not args.skip_ingest:
        ingest()
    latency(args.windows, args.power_flow)
    if args.sustained:
        sustained(args.sustained, args.sustained_hours, args.power_flow)


def ingest() -> None:
    msgs = _msgs()
    with tempfile.TemporaryDirectory() as d:
        twin = LiveTwin(_streams(), Path(d) / "a", start=START, modelled=lambda o: 100.0)
        t = time.perf_counter()
        for i, (tp, p) in enumerate(msgs):
            twin.ingest(tp, p)
            if i % 500 == 499:
                twin.commit()
        twin.commit()
        dt = time.perf_counter() - t
        print(f"ingest alone: {len(msgs)} obs in {dt:.2f} s = {len(msgs) / dt:,.0f} obs/s")
        port = free_port()
        broker = Broker(Path(d) / "broker", port).start()
        try:
            twin = LiveTwin(_streams(), Path(d) / "b", start=START, modelled=lambda o: 100.0)
            th = threading.Thread(target=run_live, args=(twin, "127.0.0.1", port),
                                  kwargs={"idle_exit_s": 1.0})
            th.start()
            time.sleep(1.0)
            import paho.mqtt.client as mqtt

            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub",
                            clean_session=False)
            c.max_inflight_messages_set(1000)
            c.connect("127.0.0.1", port)
            c.loop_start()
            t = time.perf_counter()
            infos = [c.publish(tp, p, qos=1) for tp, p in msgs]
            for i in infos:
                i.wait_for_publish(timeout=60)
            while twin.applied < len(msgs) and time.perf_counter() - t < 120:
                time.sleep(0.01)
            dt = time.perf_counter() - t
            c.loop_stop()
            c.disconnect()
            th.join()
            print(f"through Mosquitto: {twin.applied} of {len(msgs)} obs in {dt:.2f} s = "
                  f"{twin.applied / dt:,.0f} obs/s")
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
