"""CLI: ``publish`` (stream a recorded feed to an MQTT broker) and ``live`` (keep a twin in
step with it). See docs/live.md."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--broker {text!r}: expected host:port")
    return host, int(port)


def register(sub: Any) -> None:
    p = sub.add_parser("publish", help="stream a recorded feed (JSON lines: datastream, time_s, "
                       "result) as SensorThings observations at a speed-up")
    p.add_argument("feed", type=Path)
    p.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883))
    p.add_argument("--start", default="2024-06-03", help="calendar date of t = 0")
    p.add_argument("--speed", type=float, default=60.0, help="city seconds per wall second; "
                   "0: as fast as possible")
    p.set_defaults(func=_publish)
    p = sub.add_parser("live", help="subscribe to a broker and keep the twin in step")
    p.add_argument("scenario", type=Path, help="scenario TOML (its start date)")
    p.add_argument("--streams", type=Path, required=True,
                   help="datastreams JSON: [{id, kind, key}, ...]")
    p.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883))
    p.add_argument("--out", type=Path, required=True, help="live results folder")
    p.add_argument("--idle-exit", type=float, default=30.0,
                   help="stop after this many seconds without a message")
    p.set_defaults(func=_live)


def _publish(args: argparse.Namespace) -> int:
    import paho.mqtt.client as mqtt
    import pandas as pd

    from citytwin.twin.sensorthings import encode, topic

    recs = [json.loads(x) for x in args.feed.read_text(encoding="utf-8").splitlines() if x.strip()]
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="citytwin-publish",
                    clean_session=False)
    c.connect(*args.broker)
    c.loop_start()
    t0, w0, infos = (recs[0]["time_s"] if recs else 0.0), time.monotonic(), []
    for r in recs:
        if args.speed > 0:
            time.sleep(max(0.0, (r["time_s"] - t0) / args.speed - (time.monotonic() - w0)))
        infos.append(c.publish(topic(r["datastream"]), encode(pd.Timestamp(args.start),
                                                            r["time_s"], r["result"]), qos=1))
    for i in infos:
        i.wait_for_publish(timeout=30)
    c.loop_stop()
    c.disconnect()
    print(f"published {len(infos)} observations")
    return 0


def _live(args: argparse.Namespace) -> int:
    from citytwin.scenario import load_scenario
    from citytwin.twin.live import LiveTwin, run_live
    from citytwin.twin.sensorthings import Datastream

    spec = load_scenario(args.scenario)
    streams = {int(d["id"]): Datastream(int(d["id"]), str(d["kind"]), str(d["key"]))
               for d in json.loads(args.streams.read_text(encoding="utf-8"))}
    twin = LiveTwin(streams, args.out, start=str(spec.start))
    run_live(twin, *args.broker, idle_exit_s=args.idle_exit)
    print(f"applied {twin.applied}, quarantined {twin.quarantined}, closed {sorted(twin.closed)}")
    return 0
